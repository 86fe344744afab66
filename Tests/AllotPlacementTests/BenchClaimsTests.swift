import Foundation
import HTTPTypes
import HummingbirdTesting
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
}
