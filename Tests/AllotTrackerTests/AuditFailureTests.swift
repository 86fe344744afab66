import AllotCore
import AllotStore
import AllotTracker
import Foundation
import Testing

/// One node the audit cannot handle does not stop the audit of the others.
@Suite(.serialized) struct AuditFailureTests {
    /// n-a's hostname already names another provider, so saving n-a fails at every pass; n-b, reported after it,
    /// is still registered, and the failure is reported with the node.
    @Test(arguments: TrackerBackend.all) func aNodeThatFailsDoesNotStopTheOthers(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        let squatter = "cccccccc-0000-4000-8000-000000000003"
        _ = try await fixture.store.createProvider(uuid: squatter, name: "n-a", parentUUID: nil)
        let report = try await fixture.tracker.start()
        #expect(report.failed.keys.sorted() == [TrackerFixture.nodeA])
        #expect(report.failed[TrackerFixture.nodeA]?.contains("n-a") == true)
        #expect(try await fixture.ledger.node(uuid: TrackerFixture.nodeB) != nil)
        #expect(try await fixture.store.provider(uuid: TrackerFixture.nodeB) != nil)
        #expect(try await fixture.ledger.node(uuid: TrackerFixture.nodeA) == nil)
        // And again at the next pass: n-b keeps being audited (a claim there is taken).
        try await fixture.tracker.perform(.build(Instance(
            uuid: "00000000-0000-4000-8000-000000000001", projectID: "p", userID: "u",
            flavor: Flavor(name: "small", vcpus: 2, memoryMB: 1024, rootGB: 10), node: TrackerFixture.nodeB)))
        let second = try await fixture.tracker.audit()
        #expect(second.failed.keys.sorted() == [TrackerFixture.nodeA])
        #expect(second.nodes == 2)
        #expect(try await fixture.usage(TrackerFixture.nodeB) == ["VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10])
    }
}
