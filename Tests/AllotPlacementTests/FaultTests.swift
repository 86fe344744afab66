import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// Faults around a real `allot serve`: its database stopped or its disk full, and clients that send slowly.
@Suite(.serialized) struct FaultTests {
    static let postgresInstalled = PrivatePostgres.binDirectory != nil
    static let isRoot = getuid() == 0

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("allot-fault-\(newUUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A provider with plenty of VCPU to claim from, one unit per consumer.
    private func makeProvider(_ server: ServerProcess) async throws -> String {
        let rp = newUUID()
        #expect(try await server.request("/resource_providers", method: .post,
                                         body: "{\"name\": \"rp-\(rp)\", \"uuid\": \"\(rp)\"}").status == .ok)
        #expect(try await server.request("/resource_providers/\(rp)/inventories", method: .put, body:
            "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": 100000}}}").status == .ok)
        return rp
    }

    /// Claims one VCPU for a new consumer; returns the consumer and the answer.
    private func claim(_ server: ServerProcess, provider: String) async throws -> (String, TestClient.Response) {
        let consumer = newUUID()
        let body = "{\"allocations\": {\"\(provider)\": {\"resources\": {\"VCPU\": 1}}}, \"project_id\": \"p\", "
            + "\"user_id\": \"u\", \"consumer_generation\": null, \"consumer_type\": \"INSTANCE\"}"
        return (consumer, try await server.request("/allocations/\(consumer)", method: .put, body: body))
    }

    /// A database failure's answer: 503, `Retry-After` (`retryAfter` seconds when given), and a body that names no
    /// internals.
    private func expectUnavailable(
        _ response: TestClient.Response, retryAfter: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(response.status == .serviceUnavailable, sourceLocation: sourceLocation)
        #expect(response.headers[.retryAfter].flatMap(Int.init).map { $0 > 0 } == true,
                "Retry-After: \(response.headers[.retryAfter] ?? "none")", sourceLocation: sourceLocation)
        if let retryAfter {
            #expect(response.headers[.retryAfter] == retryAfter, sourceLocation: sourceLocation)
        }
        let detail = (response.body?.errorDetail ?? "").lowercased()
        #expect(detail.contains("database"), "detail: \(detail)", sourceLocation: sourceLocation)
        for secret in ["psql", "postgres", "sqlite", "127.0.0.1", "/tmp", "errno", "sqlstate"] {
            #expect(!detail.contains(secret), "the detail leaks '\(secret)': \(detail)", sourceLocation: sourceLocation)
        }
    }

    /// Every consumer answered 2xx holds its VCPU, and the provider's usage counts at least them all.
    private func expectInBooks(
        _ server: ServerProcess, provider: String, acknowledged: [String], exact: Bool,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        for consumer in acknowledged {
            let answer = try await server.request("/allocations/\(consumer)", method: .get)
            let allocations = answer.body?.jsonObject["allocations"] as? [String: Any]
            #expect(allocations?[provider] != nil, "claim \(consumer) was acknowledged but is lost",
                    sourceLocation: sourceLocation)
        }
        let usages = try await server.request("/resource_providers/\(provider)/usages", method: .get)
        let used = (usages.body?.jsonObject["usages"] as? [String: Int])?["VCPU"] ?? -1
        if exact {
            #expect(used == acknowledged.count, sourceLocation: sourceLocation)
        } else {
            #expect(used >= acknowledged.count, sourceLocation: sourceLocation)
        }
    }

    @Test(.enabled(if: postgresInstalled, "PostgreSQL is not installed"))
    func postgresStoppedAndRestartedDuringClaims() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let postgres = try await PrivatePostgres(
            directory: dir.appendingPathComponent("pg"), log: dir.appendingPathComponent("pg-commands.log"))
        let server: ServerProcess
        do {
            server = try await ServerProcess(database: postgres.url, logDirectory: dir)
        } catch {
            await postgres.destroy()
            throw error
        }
        defer { server.stop() }
        do {
            let rp = try await makeProvider(server)
            var acknowledged: [String] = []
            for _ in 0..<5 {
                let (consumer, answer) = try await claim(server, provider: rp)
                #expect(answer.status == .noContent)
                if answer.status == .noContent { acknowledged.append(consumer) }
            }
            try await postgres.stop()
            // Claims keep coming while it is down: every one is either refused with 503 or (in flight when it
            // stopped) acknowledged.
            var refusals = 0
            for _ in 0..<5 {
                let (consumer, answer) = try await claim(server, provider: rp)
                if answer.status == .noContent {
                    acknowledged.append(consumer)
                } else {
                    expectUnavailable(answer)
                    refusals += 1
                }
            }
            #expect(refusals > 0)
            // Reads need it too.
            expectUnavailable(try await server.request("/resource_providers/\(rp)/usages", method: .get))
            try await postgres.start()
            // Service resumes by itself (a few dead pooled connections may still answer 503 once each).
            var resumed = false
            for _ in 0..<200 where !resumed {
                let (consumer, answer) = try await claim(server, provider: rp)
                if answer.status == .noContent {
                    acknowledged.append(consumer)
                    resumed = true
                } else {
                    expectUnavailable(answer)
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(resumed)
            for _ in 0..<5 {
                let (consumer, answer) = try await claim(server, provider: rp)
                #expect(answer.status == .noContent)
                if answer.status == .noContent { acknowledged.append(consumer) }
            }
            // A claim refused while the connection dropped under its COMMIT may still have committed.
            try await expectInBooks(server, provider: rp, acknowledged: acknowledged, exact: false)
        } catch {
            await postgres.destroy()
            throw error
        }
        await postgres.destroy()
    }

    @Test(.enabled(if: isRoot, "needs root to mount a small tmpfs"))
    func sqliteOnAFullDisk() async throws {
        let dir = try temporaryDirectory()
        let log = dir.appendingPathComponent("commands.log")
        let mount = dir.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        try await PrivatePostgres.shell("mount -t tmpfs -o size=3m tmpfs '\(mount.path)'", log: log)
        defer {
            _ = system("umount '\(mount.path)'")
            try? FileManager.default.removeItem(at: dir)
        }
        let database = mount.appendingPathComponent("allot.sqlite").path
        var server = try await ServerProcess(database: database, logDirectory: dir)
        defer { server.stop() }
        let rp = try await makeProvider(server)
        let acknowledged = try await fillTheDiskUnderClaims(server, mount: mount, log: log, provider: rp, attempts: 3000)
        // And after a restart: what was acknowledged is on disk.
        server.stop()
        server = try await ServerProcess(database: database, logDirectory: dir)
        try await expectInBooks(server, provider: rp, acknowledged: acknowledged, exact: true)
    }

    /// PostgreSQL's tables on a small tmpfs (its WAL elsewhere: PostgreSQL stops when it cannot write its WAL, and
    /// that is the stopped-server case above): a full disk refuses writes with SQLSTATE 53100.
    @Test(.enabled(if: postgresInstalled && isRoot, "needs PostgreSQL, and root to mount a small tmpfs"))
    func postgresOnAFullDisk() async throws {
        let dir = try temporaryDirectory()
        let log = dir.appendingPathComponent("commands.log")
        let mount = dir.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        try await PrivatePostgres.shell("mount -t tmpfs -o size=64m tmpfs '\(mount.path)'", log: log)
        try await PrivatePostgres.shell("chown postgres:postgres '\(mount.path)'", log: log)
        defer {
            _ = system("umount '\(mount.path)'")
            try? FileManager.default.removeItem(at: dir)
        }
        let postgres = try await PrivatePostgres(
            directory: mount.appendingPathComponent("data"), log: log, walDirectory: dir.appendingPathComponent("wal"))
        let server: ServerProcess
        do {
            server = try await ServerProcess(database: postgres.url, logDirectory: dir)
        } catch {
            await postgres.destroy()
            throw error
        }
        defer { server.stop() }
        do {
            let rp = try await makeProvider(server)
            _ = try await fillTheDiskUnderClaims(server, mount: mount, log: log, provider: rp, attempts: 5000)
        } catch {
            server.stop()
            await postgres.destroy()
            throw error
        }
        server.stop()
        await postgres.destroy()
    }

    /// Claims on `server`, whose database is on the small tmpfs at `mount`: five claims; the disk filled; claims
    /// (at most `attempts`) until a table or the WAL needs a block it cannot have: `503`, `Retry-After: 30` (a full
    /// disk, not a server down); reads still answer, with every acknowledged claim; space freed; claims until one
    /// succeeds again; every acknowledged claim exactly in the books.
    /// - Returns: the acknowledged consumers.
    private func fillTheDiskUnderClaims(
        _ server: ServerProcess, mount: URL, log: URL, provider rp: String, attempts: Int
    ) async throws -> [String] {
        var acknowledged: [String] = []
        for _ in 0..<5 {
            let (consumer, answer) = try await claim(server, provider: rp)
            #expect(answer.status == .noContent)
            if answer.status == .noContent { acknowledged.append(consumer) }
        }
        let filler = mount.appendingPathComponent("filler").path
        // dd stops at ENOSPC: the file system is then full.
        _ = await ShellScript.run("dd if=/dev/zero of='\(filler)' bs=4k", log: log)
        var refused = false
        for _ in 0..<attempts where !refused {
            let (consumer, answer) = try await claim(server, provider: rp)
            if answer.status == .noContent {
                acknowledged.append(consumer)
            } else {
                expectUnavailable(answer, retryAfter: "30")
                refused = true
            }
        }
        #expect(refused)
        // Reads go on.
        let usages = try await server.request("/resource_providers/\(rp)/usages", method: .get)
        #expect(usages.status == .ok)
        #expect((usages.body?.jsonObject["usages"] as? [String: Int])?["VCPU"] == acknowledged.count)
        try FileManager.default.removeItem(atPath: filler)
        var resumed = false
        for _ in 0..<100 where !resumed {
            let (consumer, answer) = try await claim(server, provider: rp)
            if answer.status == .noContent {
                acknowledged.append(consumer)
                resumed = true
            } else {
                expectUnavailable(answer)
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(resumed)
        try await expectInBooks(server, provider: rp, acknowledged: acknowledged, exact: true)
        return acknowledged
    }

    @Test func aBodySentAByteAtATimeIsCutOff() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try await ServerProcess(
            database: dir.appendingPathComponent("allot.sqlite").path, logDirectory: dir,
            arguments: ["--no-agent", "--request-timeout", "1"])
        defer { server.stop() }
        let upload = try await RawConnection(port: server.port)
        // Every piece comes well within the timeout, but the body as a whole never does.
        let trickle = await upload.startTricklingUpload()
        defer { trickle.cancel() }
        #expect(await upload.waitForClose(safety: .seconds(20)))
        #expect(try await server.request("/resource_classes/CUSTOM_SLOW", method: .get).status == .notFound)
        await upload.close()
    }

    @Test func slowClientsCannotTieUpTheServer() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try await ServerProcess(
            database: dir.appendingPathComponent("allot.sqlite").path, logDirectory: dir,
            arguments: ["--no-agent", "--request-timeout", "1"])
        defer { server.stop() }
        // Many connections at once: some send their headers a byte at a time, some send nothing at all.
        var slow: [RawConnection] = []
        for _ in 0..<40 { slow.append(try await RawConnection(port: server.port)) }
        let trickling = Array(slow[..<20])
        let request = "GET /resource_providers HTTP/1.1\r\nHost: x\r\nx-auth-token: admin\r\n\r\n"
        let trickle = Task {
            for byte in request.prefix(20) {
                for connection in trickling { await connection.send(String(byte)) }
                try await Task.sleep(for: .milliseconds(300))
            }
        }
        // A normal request still answers meanwhile.
        #expect(try await server.request("/resource_providers", method: .get).status == .ok)
        // The server closes the slow and the idle ones (the safety net is far above the 1 s timeout).
        for connection in slow {
            #expect(await connection.waitForClose(safety: .seconds(30)))
        }
        trickle.cancel()
        #expect(try await server.request("/resource_providers", method: .get).status == .ok)
        for connection in slow { await connection.close() }
    }
}
