import AllotCore
import AllotStore
import AllotTracker
import Foundation
import Logging
import Testing

/// What the audit does with the guests the driver reports: orphans hold their memory back, instances that should run
/// but do not are reported, and a driver that signals changes gets an audit soon after.
@Suite(.serialized) struct GuestAuditTests {
    static let nodeA = TrackerFixture.nodeA
    static let nodeB = TrackerFixture.nodeB
    static let large = Flavor(name: "large", vcpus: 4, memoryMB: 8192, rootGB: 40)
    static let small = Flavor(name: "small", vcpus: 1, memoryMB: 1024, rootGB: 10)
    static let orphan = "0bad0bad-0000-4000-8000-000000000001"

    static func vm(_ n: Int) -> String { String(format: "00000000-0000-4000-8000-%012d", n) }
    static func mig(_ n: Int) -> String { String(format: "11111111-0000-4000-8000-%012d", n) }

    /// The fixture's two nodes; n-a runs `running` and `guests` (uuid → MiB).
    static func nodes(running: [String] = [], guests: [String: Int] = [:]) -> [[String: Any]] {
        var nodes = TrackerFixture.twoNodes(running: ["n-a": running])
        if !guests.isEmpty {
            nodes[0]["guests"] = guests.sorted { $0.key < $1.key }.map { ["uuid": $0.key, "memory_mb": $0.value] as [String: Any] }
        }
        return nodes
    }

    static func active(_ fixture: TrackerFixture, _ uuid: String, _ flavor: Flavor = large, on node: String = nodeA) async throws {
        try await fixture.tracker.perform(.build(Instance(uuid: uuid, projectID: "p", userID: "u", flavor: flavor, node: node)))
        try await fixture.tracker.perform(.update(instance: uuid, vmState: .active, taskState: .some(nil), osType: "linux"))
    }

    static func memory(_ fixture: TrackerFixture, _ node: String = nodeA) async throws -> (ledger: Inventory?, placement: Inventory?, generation: Int) {
        let record = try await fixture.ledger.node(uuid: node)
        let placement = try await fixture.store.inventories(providerUUID: node)
        return (record?.node.inventories["MEMORY_MB"], placement.inventories["MEMORY_MB"], placement.provider.generation)
    }

    /// Polls `condition` until it holds or a generous deadline passes.
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    @Test(arguments: TrackerBackend.all) func orphansHoldTheirMemoryBackUntilTheyGo(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try fixture.writeNodes(Self.nodes(running: [Self.vm(1)]))
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1))
        let before = try await Self.memory(fixture)
        #expect(before.ledger?.reserved == 0 && before.placement?.reserved == 0)

        // A 4 GiB guest the ledger does not know starts on n-a.
        try fixture.writeNodes(Self.nodes(running: [Self.vm(1)], guests: [Self.orphan: 4096]))
        let report = try await fixture.tracker.audit()
        #expect(report.orphans == [Self.nodeA: [Self.orphan]])
        #expect(report.orphanMemoryMB == [Self.nodeA: 4096])
        #expect(report.missing.isEmpty)
        let held = try await Self.memory(fixture)
        #expect(held.ledger?.reserved == 4096)
        #expect(held.placement?.reserved == 4096)
        #expect(held.placement?.total == 16384)
        #expect(held.generation == before.generation + 1)
        let event = try #require(fixture.tracker.events.recent().last { $0.type == "instance.orphan" })
        #expect(event.node == Self.nodeA)
        #expect(event.fields["instances"] == .string(Self.orphan))
        #expect(event.fields["memory_mb"] == .int(4096))
        // The same orphan at the next pass: reported again, nothing written.
        let again = try await fixture.tracker.audit()
        #expect(again.orphanMemoryMB == [Self.nodeA: 4096])
        #expect(!again.saved.contains(Self.nodeA))
        #expect(try await Self.memory(fixture).generation == held.generation)

        // 16 GiB less 4 GiB held back less 8 GiB used leaves 4 GiB: another large instance does not fit.
        await #expect(throws: ComputeError.doesNotFit(node: Self.nodeA, resourceClass: "MEMORY_MB", requested: 8192, free: 4096)) {
            try await fixture.tracker.perform(.build(Instance(
                uuid: Self.vm(2), projectID: "p", userID: "u", flavor: Self.large, node: Self.nodeA)))
        }
        #expect(try await fixture.ledger.instance(uuid: Self.vm(2)) == nil)

        // The guest goes away: the next pass gives its memory back, and the claim fits.
        try fixture.writeNodes(Self.nodes(running: [Self.vm(1)]))
        let gone = try await fixture.tracker.audit()
        #expect(gone.orphans.isEmpty && gone.orphanMemoryMB.isEmpty)
        let after = try await Self.memory(fixture)
        #expect(after.ledger?.reserved == 0 && after.placement?.reserved == 0)
        try await fixture.tracker.perform(.build(Instance(
            uuid: Self.vm(2), projectID: "p", userID: "u", flavor: Self.large, node: Self.nodeA)))
        try await fixture.expectAgreement()
    }

    /// Orphan memory comes on top of the host's reservation and never above the total; a guest whose memory the
    /// driver does not give holds nothing back.
    @Test func orphanMemoryAddsToTheHostReservation() async throws {
        let fixture = try await TrackerFixture(nodes: [
            ["hostname": "n-a", "uuid": Self.nodeA, "vcpus": 8, "memory_mb": 16384, "disk_gb": 10,
             "guests": [["uuid": Self.orphan, "memory_mb": 4096], ["uuid": Self.vm(9)]]],
            ["hostname": "n-b", "uuid": Self.nodeB, "vcpus": 8, "memory_mb": 2048, "disk_gb": 10,
             "guests": [["uuid": Self.orphan, "memory_mb": 4096]]],
        ])
        defer { Task { await fixture.remove() } }
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let tracker = Tracker(
            configuration: TrackerConfiguration(host: "test-host", reservedHostMemoryMB: 512, auditInterval: 0),
            driver: FileHostDriver(kind: .fake, path: fixture.nodesFile), ledger: fixture.ledger,
            events: EventBus(logger: logger), logger: logger)
        let report = try await tracker.start()
        #expect(report.orphans[Self.nodeA] == [Self.orphan, Self.vm(9)].sorted())
        #expect(report.orphanMemoryMB == [Self.nodeA: 4096, Self.nodeB: 4096])
        #expect(try await Self.memory(fixture).placement?.reserved == 512 + 4096)
        #expect(try await Self.memory(fixture).ledger?.reserved == 512 + 4096)
        // 4 GiB of orphans on a 2 GiB node: everything is held back, no more.
        #expect(try await Self.memory(fixture, Self.nodeB).placement?.reserved == 2048)
        #expect(try await Self.memory(fixture, Self.nodeB).ledger?.reserved == 2048)
    }

    /// With NUMA cells in Placement the orphans' memory is held back from the first cell.
    @Test func orphanMemoryIsHeldBackFromTheFirstCell() async throws {
        var nodes = TopologyClaimTests.nodes()
        nodes[0]["guests"] = [["uuid": Self.orphan, "memory_mb": 2048]]
        let fixture = try await TrackerFixture(
            nodes: nodes, hostConfig: TopologyClaimTests.config(pciInPlacement: false, numaInPlacement: true))
        defer { Task { await fixture.remove() } }
        let report = try await fixture.tracker.start()
        #expect(report.orphanMemoryMB == [Self.nodeA: 2048])
        let cell0 = HostConfig.stableUUID(Self.nodeA + "/numa/0"), cell1 = HostConfig.stableUUID(Self.nodeA + "/numa/1")
        #expect(try await fixture.store.inventories(providerUUID: cell0).inventories["MEMORY_MB"]?.reserved == 2048)
        #expect(try await fixture.store.inventories(providerUUID: cell1).inventories["MEMORY_MB"]?.reserved == 0)
        #expect(try await fixture.store.inventories(providerUUID: Self.nodeA).inventories["MEMORY_MB"] == nil)
        var plain = nodes
        plain[0]["guests"] = nil
        try fixture.writeNodes(plain)
        #expect(try await fixture.tracker.audit().orphanMemoryMB.isEmpty)
        #expect(try await fixture.store.inventories(providerUUID: cell0).inventories["MEMORY_MB"]?.reserved == 0)
    }

    @Test(arguments: TrackerBackend.all) func missingInstancesAreReportedAndLeftAlone(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1))
        // Not missing: still building; stopped; moving (the cold move has not arrived anywhere).
        try await fixture.tracker.perform(.build(Instance(uuid: Self.vm(2), projectID: "p", userID: "u", flavor: Self.small, node: Self.nodeA)))
        try await Self.active(fixture, Self.vm(3), on: Self.nodeB)
        try await fixture.tracker.perform(.update(instance: Self.vm(3), vmState: .stopped, taskState: .some(nil), osType: "linux"))
        try await Self.active(fixture, Self.vm(4), Self.small, on: Self.nodeB)
        try await fixture.tracker.perform(.move(Migration(
            uuid: Self.mig(1), instanceUUID: Self.vm(4), kind: .migration, status: .accepted, sourceNode: "",
            destNode: Self.nodeA, oldFlavor: Self.small, newFlavor: Self.small)))
        try fixture.writeNodes(Self.nodes(running: []))

        let report = try await fixture.tracker.audit()
        #expect(report.missing == [Self.nodeA: [Self.vm(1)]])
        let event = try #require(fixture.tracker.events.recent().last { $0.type == "instance.missing" })
        #expect(event.node == Self.nodeA)
        #expect(event.fields["instance"] == .string(Self.vm(1)))
        #expect(event.fields["vm_state"] == .string("active"))
        // Nothing changed: the instance and its allocations stay.
        #expect(try await fixture.ledger.instance(uuid: Self.vm(1))?.vmState == .active)
        #expect(try await fixture.ledger.placementConsumers(node: Self.nodeA)[Self.vm(1)] == ["VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 40])
        // Reported again at every pass while missing.
        #expect(try await fixture.tracker.audit().missing == [Self.nodeA: [Self.vm(1)]])

        // Running again: no longer reported. The move arrives at n-a (resized there) and its guest is not running.
        try fixture.writeNodes(Self.nodes(running: [Self.vm(1)]))
        #expect(try await fixture.tracker.audit().missing.isEmpty)
        try await fixture.tracker.perform(.finish(migration: Self.mig(1)))
        #expect(try await fixture.tracker.audit().missing == [Self.nodeA: [Self.vm(4)]])
        try fixture.writeNodes(Self.nodes(running: [Self.vm(1), Self.vm(4)]))
        let last = try await fixture.tracker.audit()
        #expect(last.missing.isEmpty && last.orphans.isEmpty)
        try await fixture.expectAgreement()
    }

    /// A driver whose change signals the test sends.
    struct SignallingDriver: HostDriver {
        let inner: FileHostDriver
        let changes: AsyncStream<Void>?
        var name: String { "fake" }
        func nodes() async throws -> [DriverNode] { try await inner.nodes() }
        func metrics() async -> [String: Double] { [:] }
    }

    @Test(arguments: TrackerBackend.all) func driverChangesStartAnAudit(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let (changes, signal) = AsyncStream<Void>.makeStream()
        // No periodic audits at all (as with `--audit-interval 0`): only the signals start passes.
        let tracker = Tracker(
            configuration: TrackerConfiguration(host: "test-host", ramAllocationRatio: 1, reservedHostMemoryMB: 0, auditInterval: 0),
            driver: SignallingDriver(inner: FileHostDriver(kind: .fake, path: fixture.nodesFile), changes: changes),
            ledger: fixture.ledger, events: EventBus(logger: logger), logger: logger)
        #expect(tracker.runsAudits)
        try await tracker.start()
        let loop = Task { await tracker.runAudits() }
        func changePasses() -> [TrackerEvent] {
            tracker.events.recent().filter { $0.type == "audit.pass" && $0.fields["trigger"] == .string("change") }
        }

        // A guest appears and the driver says so, five times in a row: one pass covers them all.
        try fixture.writeNodes(Self.nodes(guests: [Self.orphan: 1024]))
        for _ in 0..<5 { signal.yield() }
        #expect(try await Self.eventually { !changePasses().isEmpty })
        #expect(changePasses().first?.fields["signals"] == .int(5))
        #expect(tracker.events.recent().contains { $0.type == "instance.orphan" && $0.fields["memory_mb"] == .int(1024) })

        // One more signal: one more pass, for that signal alone (the burst left no pass behind).
        try fixture.writeNodes(Self.nodes())
        signal.yield()
        #expect(try await Self.eventually { changePasses().count >= 2 })
        #expect(changePasses().map(\.fields["signals"]) == [.int(5), .int(1)])
        #expect(try await fixture.store.inventories(providerUUID: Self.nodeA).inventories["MEMORY_MB"]?.reserved == 0)

        // The tracker stops: the loop ends.
        loop.cancel()
        await loop.value
        // A driver whose stream ends ends the loop too.
        signal.finish()
        await tracker.runAuditsOnChanges()
    }

    @Test func nodeFilesDescribeGuests() throws {
        func parse(_ guests: Any, running: [String]? = nil) throws -> DriverNode {
            var node: [String: Any] = ["hostname": "n", "vcpus": 1, "memory_mb": 1024, "guests": guests]
            if let running { node["running"] = running }
            let data = try JSONSerialization.data(withJSONObject: ["nodes": [node]])
            return try #require(try FileHostDriver.parse(data, kind: .fake, path: "nodes.json").first)
        }
        let node = try parse([["uuid": Self.orphan, "memory_mb": 512], ["uuid": Self.vm(2)]], running: [Self.vm(1)])
        #expect(node.running == [Self.orphan, Self.vm(1), Self.vm(2)])
        #expect(node.guestMemoryMB == [Self.orphan: 512, Self.vm(2): 0])
        #expect(throws: Never.self) { try node.resources.get() }
        #expect(try parse([]).running == [])
        for bad in [
            [["uuid": "not-a-uuid", "memory_mb": 1]], [["uuid": Self.orphan, "memory_mb": -1]],
            [["uuid": Self.orphan, "memory_mb": "lots"]], [["memory_mb": 1]], ["x"],
            [["uuid": Self.orphan], ["uuid": Self.orphan]],
        ] as [Any] {
            let parsed = try parse(bad)
            guard case .failure(.invalid(let field, _)) = parsed.resources else {
                Issue.record("\(bad) was accepted")
                continue
            }
            #expect(field == "guests")
        }
        guard case .failure(.invalid(let field, _)) = try parse("all").resources, field == "guests" else {
            Issue.record("a guests field that is not a list was accepted")
            return
        }
    }
}
