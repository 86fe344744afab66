import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// `allot bench-claims` against a real `allot serve --driver fake`: it sends the claims it was asked for, from
/// several clients, and checks Placement's and the ledger's books against the claims that were answered.
@Suite(.serialized) struct BenchClaimsTests {
    @Test func benchClaimsCountsTheAnswersAndChecksTheBooks() async throws {
        let compute = try await ComputeServer()
        defer { compute.remove() }
        let url = "http://127.0.0.1:\(compute.server.port)"
        let (status, output) = await TokenCLITests.allot(
            ["bench-claims", "--url", url, "--token", "admin", "--concurrency", "4", "--claims", "24", "--nodes", "2",
             "--server-pid", String(compute.server.process.processIdentifier), "--json"],
            in: compute.directory)
        #expect(status == 0, "\(output)")
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("{") }, "\(output)")
        let figures = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(figures["answered"] as? Int == 24)
        #expect(figures["books_balanced"] as? Bool == true)
        #expect(figures["nodes"] as? Int == 2)
        #expect((figures["server_cpu_ms_per_claim"] as? Double ?? 0) > 0)
        // The ledger holds the 24 instances, 12 per node (claim i goes to node i mod 2; 16 VCPU each).
        let nodes = try await compute.server.request("/compute/v1/nodes", method: .get)
        let listed = nodes.body?.jsonObject["nodes"] as? [[String: Any]] ?? []
        #expect(listed.map { ($0["usage"] as? [String: Int])?["VCPU"] ?? 0 }.sorted() == [12, 12])

        // Asked for more than the nodes hold: refusals are counted, the books still balance (exit 0); --delete
        // then takes the 4 answered claims back.
        let (fullStatus, fullOutput) = await TokenCLITests.allot(
            ["bench-claims", "--url", url, "--token", "admin", "--concurrency", "3", "--claims", "30", "--nodes", "1",
             "--vcpus", "1", "--delete"],
            in: compute.directory)
        #expect(fullStatus == 0, "\(fullOutput)")
        #expect(fullOutput.contains("claims 30: 4 answered 201, 26 HTTP 409"), "\(fullOutput)")
        #expect(fullOutput.contains("books: Placement = ledger = answered claims on all 1 nodes"), "\(fullOutput)")
        let afterDelete = try await compute.server.request("/compute/v1/nodes", method: .get)
        let usages = (afterDelete.body?.jsonObject["nodes"] as? [[String: Any]] ?? [])
            .map { ($0["usage"] as? [String: Int])?["VCPU"] ?? 0 }
        #expect(usages.sorted() == [12, 12], "after --delete")
    }

    /// Two `allot serve` over one PostgreSQL database (the first with the fake nodes' agent, the second
    /// `--no-agent`): with both `--url`s the clients alternate between them, and the books, read through the first,
    /// hold every claim answered by either.
    @Test(.enabled(if: NodeViewReplicaTests.postgresURL != nil, "needs ALLOT_TEST_POSTGRES_URL"))
    func benchClaimsSpreadsTheClientsOverTwoReplicas() async throws {
        let directory = try AgentTests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = try await NodeViewReplicaTests.freshPostgresDatabase()
        let nodesFile = directory.appendingPathComponent("nodes.json")
        try ComputeServer.nodesJSON().write(to: nodesFile, atomically: true, encoding: .utf8)
        let first = try await ServerProcess(
            database: database, logDirectory: directory,
            arguments: ComputeServer.fakeDriver(nodesFile: nodesFile.path))
        defer { first.stop() }
        let second = try await ServerProcess(database: database, logDirectory: directory)
        defer { second.stop() }

        let (status, output) = await TokenCLITests.allot(
            ["bench-claims", "--url", "http://127.0.0.1:\(first.port)", "--url", "http://127.0.0.1:\(second.port)",
             "--token", "admin", "--concurrency", "4", "--claims", "24", "--nodes", "2",
             "--server-pid", String(first.process.processIdentifier),
             "--server-pid", String(second.process.processIdentifier), "--json"],
            in: directory)
        #expect(status == 0, "\(output)")
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("{") }, "\(output)")
        let figures = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(figures["answered"] as? Int == 24)
        #expect(figures["books_balanced"] as? Bool == true)
        #expect((figures["server_cpu_ms_per_claim"] as? Double ?? 0) > 0)
        // Each replica answered its clients' builds (clients 0 and 2 on the first, 1 and 3 on the second), 24 in all.
        var built: [Int] = []
        for replica in [first, second] {
            let metrics = try await replica.request("/metrics", method: .get)
            let text = metrics.body.map { String(buffer: $0) } ?? ""
            built.append(text.split(separator: "\n")
                .filter { $0.hasPrefix("allot_http_requests_total{") && $0.contains("\"POST\"") && $0.contains("\"201\"") }
                .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
                .reduce(0, +))
        }
        #expect(built.reduce(0, +) == 24, "POST 201 per replica: \(built)")
        #expect(built.allSatisfy { $0 > 0 }, "POST 201 per replica: \(built)")
        // Both replicas see the 24 instances, 12 per node.
        for replica in [first, second] {
            let nodes = try await replica.request("/compute/v1/nodes", method: .get)
            let listed = nodes.body?.jsonObject["nodes"] as? [[String: Any]] ?? []
            #expect(listed.map { ($0["usage"] as? [String: Int])?["VCPU"] ?? 0 }.sorted() == [12, 12])
        }
    }
}
