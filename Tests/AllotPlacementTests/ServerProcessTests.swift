import AllotStore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import SQLKit
import Synchronization
import Testing

/// Tests against the real `allot serve` binary: durability after SIGKILL, and replicas sharing PostgreSQL.
@Suite(.serialized) struct ServerProcessTests {
    static let postgresURL = ProcessInfo.processInfo.environment["ALLOT_TEST_POSTGRES_URL"]

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("allot-process-\(newUUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func everyAcknowledgedWriteSurvivesKill9() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let database = dir.appendingPathComponent("allot.sqlite").path
        var server = try await ServerProcess(database: database, logDirectory: dir)
        var acknowledged: [(provider: String, consumer: String)] = []
        for round in 0..<5 {
            let rp = newUUID()
            let consumer = newUUID()
            #expect(try await server.request("/resource_providers", method: .post,
                                             body: "{\"name\": \"rp-\(round)\", \"uuid\": \"\(rp)\"}").status == .ok)
            #expect(try await server.request("/resource_providers/\(rp)/inventories", method: .put, body:
                "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": 8}}}").status == .ok)
            let allocation = "{\"allocations\": {\"\(rp)\": {\"resources\": {\"VCPU\": 2}}}, \"project_id\": \"p\", "
                + "\"user_id\": \"u\", \"consumer_generation\": null, \"consumer_type\": \"INSTANCE\"}"
            #expect(try await server.request("/allocations/\(consumer)", method: .put, body: allocation).status
                == .noContent)
            acknowledged.append((rp, consumer))
            // Killed right after the acknowledgement: nothing may be lost.
            server.kill9()
            server = try await ServerProcess(database: database, logDirectory: dir)
            for (provider, owner) in acknowledged {
                let usages = try await server.request("/resource_providers/\(provider)/usages", method: .get)
                #expect(usages.status == .ok)
                #expect(usages.body?.jsonObject["usages"] as? [String: Int] == ["VCPU": 2])
                let allocations = try await server.request("/allocations/\(owner)", method: .get)
                #expect(allocations.body?.jsonObject["consumer_generation"] as? Int == 1)
            }
        }
        server.stop()
    }

    /// Group commit under SIGKILL: 8 clients claim at once (so claims share commits), the server is killed at a
    /// random moment, 50 times; every claim that was answered is still there after each restart, and the usage
    /// never falls below what was answered (a claim committed but not yet answered may be there too).
    @Test func killNineDuringBatchedClaimsLosesNoAnsweredClaim() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let database = dir.appendingPathComponent("allot.sqlite").path
        let rp = newUUID()
        final class Answered: Sendable { let consumers = Mutex<[String]>([]) }
        let answered = Answered()
        var server = try await ServerProcess(database: database, logDirectory: dir)
        #expect(try await server.request("/resource_providers", method: .post,
                                         body: "{\"name\": \"burst\", \"uuid\": \"\(rp)\"}").status == .ok)
        #expect(try await server.request("/resource_providers/\(rp)/inventories", method: .put, body:
            "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": 10000000}}}").status == .ok)
        for round in 0..<50 {
            let port = server.port
            try await withThrowingTaskGroup(of: Void.self) { clients in
                for _ in 0..<8 {
                    clients.addTask {
                        let client = TestClient(host: "127.0.0.1", port: port)
                        client.connect()
                        defer { Task { try? await client.shutdown() } }
                        while !Task.isCancelled {
                            let consumer = newUUID()
                            let body = "{\"allocations\": {\"\(rp)\": {\"resources\": {\"VCPU\": 1}}}, "
                                + "\"project_id\": \"p\", \"user_id\": \"u\", \"consumer_generation\": null, "
                                + "\"consumer_type\": \"INSTANCE\"}"
                            let headers: HTTPFields = [
                                HTTPField.Name("x-auth-token")!: "admin", .contentType: "application/json",
                                HTTPField.Name("openstack-api-version")!: "placement 1.39",
                            ]
                            guard let response = try? await client.execute(TestClient.Request(
                                "/allocations/\(consumer)", method: .put, headers: headers,
                                body: ByteBuffer(string: body)))
                            else { return }  // the server is gone: this claim was not answered
                            if response.status == .noContent { answered.consumers.withLock { $0.append(consumer) } }
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 50...300)))
                server.kill9()
                try await clients.waitForAll()
            }
            server = try await ServerProcess(database: database, logDirectory: dir)
            let usages = try await server.request("/resource_providers/\(rp)/usages", method: .get)
            let used = (usages.body?.jsonObject["usages"] as? [String: Int])?["VCPU"] ?? -1
            let count = answered.consumers.withLock { $0.count }
            #expect(used >= count, "round \(round): usage \(used) below \(count) answered claims")
        }
        let allocations = try await server.request("/resource_providers/\(rp)/allocations", method: .get)
        let held = Set((allocations.body?.jsonObject["allocations"] as? [String: Any] ?? [:]).keys)
        let lost = answered.consumers.withLock { $0.filter { !held.contains($0) } }
        #expect(lost.isEmpty, "\(lost.count) answered claims lost")
        #expect(answered.consumers.withLock { $0.count } > 50, "the clients hardly claimed anything")
        server.stop()
    }

    @Test(.enabled(if: postgresURL != nil, "needs ALLOT_TEST_POSTGRES_URL"))
    func twoReplicasOverOnePostgreSQLAgree() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try await freshPostgresDatabase()
        let first = try await ServerProcess(database: url, logDirectory: dir)
        let second = try await ServerProcess(database: url, logDirectory: dir)
        defer {
            first.stop()
            second.stop()
        }
        // A write through one is seen through the other.
        let rp = newUUID()
        #expect(try await first.request("/resource_providers", method: .post,
                                        body: "{\"name\": \"shared\", \"uuid\": \"\(rp)\"}").status == .ok)
        let seen = try await second.request("/resource_providers/\(rp)", method: .get)
        #expect(seen.status == .ok)
        #expect(seen.body?.jsonObject["name"] as? String == "shared")
        // Conflicting writes (same generation) through both: exactly one wins.
        let ports = (first.port, second.port)
        let inventory10 = "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": 10}}}"
        let inventory20 = "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": 20}}}"
        async let a = ServerProcess.request(port: ports.0, "/resource_providers/\(rp)/inventories", method: .put,
                                            body: inventory10)
        async let b = ServerProcess.request(port: ports.1, "/resource_providers/\(rp)/inventories", method: .put,
                                            body: inventory20)
        let statuses = try await [a.status, b.status].map(\.code).sorted()
        #expect(statuses == [200, 409])
        // Concurrent allocations through both replicas never exceed capacity and none is lost.
        let consumers = (0..<24).map { _ in newUUID() }
        let results = try await withThrowingTaskGroup(of: (String, Int).self) { group in
            for (index, consumer) in consumers.enumerated() {
                let port = index.isMultiple(of: 2) ? ports.0 : ports.1
                group.addTask {
                    let body = "{\"allocations\": {\"\(rp)\": {\"resources\": {\"VCPU\": 1}}}, \"project_id\": \"p\", "
                        + "\"user_id\": \"u\", \"consumer_generation\": null, \"consumer_type\": \"INSTANCE\"}"
                    let response = try await ServerProcess.request(
                        port: port, "/allocations/\(consumer)", method: .put, body: body)
                    return (consumer, Int(response.status.code))
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        let winners = results.filter { $0.value == 204 }.map(\.key)
        #expect(results.values.allSatisfy { $0 == 204 || $0 == 409 })
        let capacity = try await first.request("/resource_providers/\(rp)/inventories", method: .get)
        let total = ((capacity.body?.jsonObject["inventories"] as? [String: Any])?["VCPU"] as? [String: Any])?["total"]
            as? Int
        #expect(winners.count == total)
        let usages = try await second.request("/resource_providers/\(rp)/usages", method: .get)
        #expect(usages.body?.jsonObject["usages"] as? [String: Int] == ["VCPU": winners.count])
        for consumer in winners {
            let allocations = try await first.request("/allocations/\(consumer)", method: .get)
            #expect(allocations.body?.jsonObject["consumer_generation"] as? Int == 1)
        }
    }

    /// Creates an empty database on the test server and returns its URL.
    private func freshPostgresDatabase() async throws -> String {
        let base = try #require(Self.postgresURL)
        let name = "allot_replicas_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try await Database.open(.postgres(url: base), logger: Logger(label: "test"), migrate: false)
        try await admin.withConnection { try await $0.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
        await admin.close()
        guard let query = base.firstIndex(of: "?") else { return base.replacingDatabase(with: name) }
        return base[..<query].description.replacingDatabase(with: name) + base[query...]
    }
}

extension String {
    /// A PostgreSQL URL (without query) pointing at another database on the same server.
    func replacingDatabase(with name: String) -> String {
        guard let schemeEnd = range(of: "://"), let slash = self[schemeEnd.upperBound...].firstIndex(of: "/") else {
            return self + "/" + name
        }
        return String(self[..<slash]) + "/" + name
    }
}
