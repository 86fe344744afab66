import AllotCore
import AllotStore
import AllotTracker
import Foundation
import Logging
import SQLKit
import Testing

/// The database a tracker test runs on: an SQLite file, or (when `ALLOT_TEST_POSTGRES_URL` is set) a database of
/// its own on that PostgreSQL server, named after the fixture's directory so that a restarted fixture finds it.
enum TrackerBackend: Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres(serverURL: String)

    static let all: [TrackerBackend] = [.sqlite] + (ProcessInfo.processInfo.environment["ALLOT_TEST_POSTGRES_URL"]
        .flatMap { $0.isEmpty ? nil : [.postgres(serverURL: $0)] } ?? [])

    var testDescription: String {
        switch self {
        case .sqlite: "SQLite"
        case .postgres: "PostgreSQL"
        }
    }

    private static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    private static func name(for directory: URL) -> String {
        "allot_tracker_" + directory.lastPathComponent.lowercased().filter { $0.isLetter || $0.isNumber }
    }

    /// The fixture's database, created on first use.
    func location(for directory: URL) async throws -> DatabaseLocation {
        switch self {
        case .sqlite:
            return .sqliteFile(directory.appendingPathComponent("allot.sqlite").path)
        case .postgres(let serverURL):
            let name = Self.name(for: directory)
            let admin = try await Database.open(.postgres(url: serverURL), logger: Self.logger, migrate: false)
            let created = await outcomeOf {
                try await admin.withConnection { db in
                    let exists = try await db.raw("SELECT 1 FROM pg_database WHERE datname = \(bind: name)").first()
                    if exists == nil { try await db.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
                }
            }
            await admin.close()
            try created.get()
            return .postgres(url: Self.replacingDatabase(in: serverURL, with: name))
        }
    }

    /// Drops the fixture's PostgreSQL database (nothing to do for SQLite: the directory goes).
    func drop(for directory: URL) async {
        guard case .postgres(let serverURL) = self,
            let admin = try? await Database.open(.postgres(url: serverURL), logger: Self.logger, migrate: false)
        else { return }
        _ = try? await admin.withConnection { db in
            try await db.raw("DROP DATABASE IF EXISTS \(unsafeRaw: Self.name(for: directory)) WITH (FORCE)").run()
        }
        await admin.close()
    }

    /// `url` with its path (the database name) replaced, its query kept.
    static func replacingDatabase(in url: String, with name: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/" + name
        return components.string ?? url
    }
}

private func outcomeOf(_ body: () async throws -> Void) async -> Result<Void, any Error> {
    do {
        try await body()
        return .success(())
    } catch {
        return .failure(error)
    }
}

/// A tracker over a real ledger (SQLite or PostgreSQL) and a fake driver whose node file the test rewrites.
final class TrackerFixture: Sendable {
    let backend: TrackerBackend
    let directory: URL
    let nodesFile: String
    let database: Database
    let ledger: SQLComputeLedger
    let store: SQLPlacementStore
    let tracker: Tracker

    static let nodeA = "aaaaaaaa-0000-4000-8000-000000000001"
    static let nodeB = "bbbbbbbb-0000-4000-8000-000000000002"

    /// Two 8-CPU, 16 GiB, 100 GiB nodes (`n-a`, `n-b`); ratios 1, nothing reserved, so sums are easy to read.
    init(
        backend: TrackerBackend = .sqlite, nodes: [[String: Any]]? = nil, directory: URL? = nil,
        hostConfig: HostConfig = HostConfig()
    ) async throws {
        self.directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("allot-tracker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        nodesFile = self.directory.appendingPathComponent("nodes.json").path
        if directory == nil || !FileManager.default.fileExists(atPath: nodesFile) {
            try Self.writeNodes(nodes ?? Self.twoNodes(), to: nodesFile)
        }
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        self.backend = backend
        database = try await Database.open(try await backend.location(for: self.directory), logger: logger)
        ledger = SQLComputeLedger(database: database, logger: logger, now: { Date().timeIntervalSince1970 })
        store = SQLPlacementStore(database: database, logger: logger, now: { Date().timeIntervalSince1970 })
        tracker = Self.makeTracker(nodesFile: nodesFile, ledger: ledger, hostConfig: hostConfig, logger: logger)
    }

    /// A tracker over the fixture's node file and ledger: ratios 1, nothing reserved, no periodic audits.
    static func makeTracker(nodesFile: String, ledger: SQLComputeLedger, hostConfig: HostConfig, logger: Logger) -> Tracker {
        Tracker(
            configuration: TrackerConfiguration(
                host: "test-host", cpuAllocationRatio: 1, ramAllocationRatio: 1, reservedHostMemoryMB: 0, auditInterval: 0,
                hostConfig: hostConfig),
            driver: FileHostDriver(kind: .fake, path: nodesFile), ledger: ledger, events: EventBus(logger: logger),
            logger: logger)
    }

    /// Another tracker over the same ledger and node file, as after a restart with another configuration.
    func restartedTracker(hostConfig: HostConfig) -> Tracker {
        Self.makeTracker(nodesFile: nodesFile, ledger: ledger, hostConfig: hostConfig,
                         logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static func twoNodes(running: [String: [String]] = [:]) -> [[String: Any]] {
        [
            ["hostname": "n-a", "uuid": nodeA, "vcpus": 8, "memory_mb": 16384, "disk_gb": 100, "traits": ["CUSTOM_FAST"],
             "running": running["n-a"] ?? []],
            ["hostname": "n-b", "uuid": nodeB, "vcpus": 8, "memory_mb": 16384, "disk_gb": 100, "running": running["n-b"] ?? []],
        ]
    }

    static func writeNodes(_ nodes: [[String: Any]], to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: ["nodes": nodes])
        try data.write(to: URL(fileURLWithPath: path))
    }

    func writeNodes(_ nodes: [[String: Any]]) throws { try Self.writeNodes(nodes, to: nodesFile) }

    func close() async {
        await database.close()
    }

    func remove() async {
        await close()
        await backend.drop(for: directory)
        try? FileManager.default.removeItem(at: directory)
    }

    /// For every node: the tracker's live usage, Placement's usage and the usage rebuilt from the ledger's rows
    /// are the same; and Placement holds no allocation the ledger does not explain.
    func expectAgreement(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for node in [Self.nodeA, Self.nodeB] {
            let live = try #require(await tracker.live(node: node), sourceLocation: sourceLocation)
            let (_, placement) = try await store.usages(providerUUID: node)
            let (rebuilt, _) = try await ledger.nodeLedger(uuid: node)
            #expect(live.node.usage == placement.filter { $0.value != 0 }, "live vs Placement on \(node)", sourceLocation: sourceLocation)
            #expect(rebuilt.recomputedUsage() == live.node.usage, "ledger vs live on \(node)", sourceLocation: sourceLocation)
            let consumers = try await ledger.placementConsumers(node: node)
            #expect(consumers == rebuilt.consumers, "consumers on \(node)", sourceLocation: sourceLocation)
        }
    }

    func usage(_ node: String) async throws -> [String: Int] {
        try #require(await tracker.live(node: node)).node.usage
    }
}

@Suite(.serialized) struct TrackerScenarioTests {
    static let small = Flavor(name: "small", vcpus: 2, memoryMB: 4096, rootGB: 20)
    static let large = Flavor(name: "large", vcpus: 4, memoryMB: 8192, rootGB: 40)
    static let nodeA = TrackerFixture.nodeA
    static let nodeB = TrackerFixture.nodeB

    static func instance(_ uuid: String, _ flavor: Flavor = small, on node: String = nodeA) -> Instance {
        Instance(uuid: uuid, projectID: "proj", userID: "user", flavor: flavor, node: node)
    }

    static func move(_ uuid: String, of instance: String, _ kind: MigrationKind, to node: String, flavor: Flavor = large)
        -> ComputeOperation
    {
        .move(Migration(uuid: uuid, instanceUUID: instance, kind: kind, status: .accepted, sourceNode: "", destNode: node,
                        oldFlavor: flavor, newFlavor: flavor))
    }

    static func vm(_ n: Int) -> String { String(format: "00000000-0000-4000-8000-%012d", n) }
    static func mig(_ n: Int) -> String { String(format: "11111111-0000-4000-8000-%012d", n) }

    /// Builds and activates an instance.
    static func active(_ fixture: TrackerFixture, _ uuid: String, _ flavor: Flavor = small, on node: String = nodeA) async throws {
        try await fixture.tracker.perform(.build(instance(uuid, flavor, on: node)))
        try await fixture.tracker.perform(.update(instance: uuid, vmState: .active, taskState: .some(nil), osType: "linux"))
    }

    @Test(arguments: TrackerBackend.all) func startRegistersNodesWithInventoriesAndTraits(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        let report = try await fixture.tracker.start()
        #expect(Set(report.added) == [Self.nodeA, Self.nodeB])
        let inventories = try await fixture.store.inventories(providerUUID: Self.nodeA).inventories
        #expect(inventories["VCPU"]?.total == 8)
        #expect(inventories["MEMORY_MB"]?.total == 16384)
        #expect(inventories["DISK_GB"]?.total == 100)
        let (_, traits) = try await fixture.store.providerTraits(providerUUID: Self.nodeA)
        #expect(Set(traits) == ["COMPUTE_NODE", "CUSTOM_FAST"])
        // A second audit changes nothing.
        let again = try await fixture.tracker.audit()
        #expect(again.saved.isEmpty && again.added.isEmpty)
    }

    @Test(arguments: TrackerBackend.all) func buildThatDoesNotFitChangesNothing(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1), Self.large)
        try await Self.active(fixture, Self.vm(2), Self.large)
        #expect(try await fixture.usage(Self.nodeA) == ["VCPU": 8, "MEMORY_MB": 16384, "DISK_GB": 80])
        await #expect(throws: ComputeError.doesNotFit(node: Self.nodeA, resourceClass: "DISK_GB", requested: 40, free: 20)) {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(3), Self.large)))
        }
        #expect(try await fixture.ledger.instance(uuid: Self.vm(3)) == nil)
        try await fixture.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func failedBuildIsAbortedAndReleased(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await fixture.tracker.perform(.build(Self.instance(Self.vm(1))))
        #expect(try await fixture.usage(Self.nodeA) == ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20])
        try await fixture.tracker.perform(.abortBuild(instance: Self.vm(1)))
        #expect(try await fixture.usage(Self.nodeA) == [:])
        // Aborting again is a no-op; building the same uuid again is refused.
        #expect(try await fixture.tracker.perform(.abortBuild(instance: Self.vm(1))).isNoOp)
        await #expect(throws: ComputeError.self) { try await fixture.tracker.perform(.build(Self.instance(Self.vm(1)))) }
        try await fixture.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func claimsSeeChangesOtherWritersMadeToTheProvider(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await fixture.tracker.perform(.build(Self.instance(Self.vm(1))))
        // An operator shrinks the node through the Placement API and allocates a little there directly.
        let current = try await fixture.store.inventories(providerUUID: Self.nodeA)
        var inventories = current.inventories
        inventories["VCPU"] = Inventory(total: 3, maxUnit: 3)
        _ = try await fixture.store.replaceInventories(
            providerUUID: Self.nodeA, generation: current.provider.generation, inventories: inventories)
        await #expect(throws: ComputeError.doesNotFit(node: Self.nodeA, resourceClass: "VCPU", requested: 2, free: 1)) {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(2))))
        }
        try await fixture.store.replaceAllocations([ConsumerAllocationRequest(
            consumerUUID: "99999999-0000-4000-8000-000000000001",
            items: [AllocationItem(providerUUID: Self.nodeA, resourceClass: .memoryMB, used: 12000)],
            owner: ConsumerOwner(projectID: "p", userID: "u"), expectedGeneration: .unchecked)])
        await #expect(throws: ComputeError.doesNotFit(node: Self.nodeA, resourceClass: "MEMORY_MB", requested: 4096, free: 288)) {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(3), Flavor(name: "one", vcpus: 1, memoryMB: 4096))))
        }
        try await fixture.tracker.perform(.build(Self.instance(Self.vm(4), Flavor(name: "one", vcpus: 1, memoryMB: 256))))
    }

    @Test(arguments: TrackerBackend.all) func traitsInTheFlavorAreHonoured(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        var fast = Self.small
        fast.extraSpecs = ["trait:CUSTOM_FAST": "required"]
        try await fixture.tracker.perform(.build(Self.instance(Self.vm(1), fast, on: Self.nodeA)))
        await #expect(throws: ComputeError.missingTrait(node: Self.nodeB, trait: "CUSTOM_FAST")) {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(2), fast, on: Self.nodeB)))
        }
        var slow = Self.small
        slow.extraSpecs = ["trait:CUSTOM_FAST": "forbidden"]
        await #expect(throws: ComputeError.forbiddenTrait(node: Self.nodeA, trait: "CUSTOM_FAST")) {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(3), slow, on: Self.nodeA)))
        }
        try await fixture.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func resizeAcrossHostsRevertAndConfirm(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1))
        try await Self.active(fixture, Self.vm(2))
        // Revert: back to the old flavor at the source.
        try await fixture.tracker.perform(Self.move(Self.mig(1), of: Self.vm(1), .resize, to: Self.nodeB))
        #expect(try await fixture.usage(Self.nodeB) == ["VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 40])
        #expect(try await fixture.usage(Self.nodeA) == ["VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 40])
        try await fixture.expectAgreement()
        try await fixture.tracker.perform(.progress(migration: Self.mig(1), status: .migrating))
        try await fixture.tracker.perform(.finish(migration: Self.mig(1)))
        try await fixture.expectAgreement()
        try await fixture.tracker.perform(.revert(migration: Self.mig(1)))
        #expect(try await fixture.usage(Self.nodeB) == [:])
        #expect(try await fixture.usage(Self.nodeA) == ["VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 40])
        try await fixture.expectAgreement()
        // Confirm: the source is released.
        try await fixture.tracker.perform(Self.move(Self.mig(2), of: Self.vm(2), .resize, to: Self.nodeB))
        try await fixture.tracker.perform(.finish(migration: Self.mig(2)))
        try await fixture.tracker.perform(.confirm(migration: Self.mig(2)))
        #expect(try await fixture.usage(Self.nodeA) == ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20])
        #expect(try await fixture.usage(Self.nodeB) == ["VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 40])
        #expect(try await fixture.ledger.instance(uuid: Self.vm(2))?.node == Self.nodeB)
        try await fixture.expectAgreement()
    }

    /// `undo` (what an agent does when an external Placement refuses a claim) puts back the records and the
    /// allocations exactly as they were, for every kind of change.
    @Test(arguments: TrackerBackend.all) func undoTakesBackEveryKindOfChange(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        let ledger = fixture.ledger
        struct Books: Equatable {
            var instance: Instance?
            var migrations: [Migration]
            var consumers: [[String: [String: Int]]]
            var usage: [[String: Int]]
        }
        func books(_ vm: String) async throws -> Books {
            var consumers: [[String: [String: Int]]] = []
            var usage: [[String: Int]] = []
            for node in [Self.nodeA, Self.nodeB] {
                consumers.append(try await ledger.placementConsumers(node: node))
                usage.append(try await ledger.nodeLedger(uuid: node).ledger.recomputedUsage())
            }
            let migrations = try await ledger.migrations(node: nil, inProgressOnly: false).filter { $0.instanceUUID == vm }
            return Books(instance: try await ledger.instance(uuid: vm), migrations: migrations.sorted { $0.uuid < $1.uuid },
                         consumers: consumers, usage: usage)
        }
        /// Commits `operation`, undoes it (the books are as before), then commits it for good.
        func roundTrip(_ vm: String, _ operation: ComputeOperation) async throws {
            let before = try await books(vm)
            let result = try await ledger.commit(operation)
            #expect(!result.change.isNoOp, "\(operation.name) changed nothing")
            #expect(try await books(vm) != before)
            let moved = try await ledger.undo(result.change)
            #expect(!moved.isEmpty)
            #expect(try await books(vm) == before, "undo of \(operation.name)")
            _ = try await ledger.commit(operation)
        }
        try await roundTrip(Self.vm(1), .build(Self.instance(Self.vm(1))))
        try await roundTrip(Self.vm(1), .update(instance: Self.vm(1), vmState: .active, taskState: .some(nil), osType: "linux"))
        try await roundTrip(Self.vm(1), Self.move(Self.mig(1), of: Self.vm(1), .resize, to: Self.nodeB))
        try await roundTrip(Self.vm(1), .finish(migration: Self.mig(1)))
        try await roundTrip(Self.vm(1), .revert(migration: Self.mig(1)))
        try await roundTrip(Self.vm(1), Self.move(Self.mig(2), of: Self.vm(1), .liveMigration, to: Self.nodeB))
        try await roundTrip(Self.vm(1), .rollback(migration: Self.mig(2)))
        try await roundTrip(Self.vm(1), Self.move(Self.mig(3), of: Self.vm(1), .resize, to: Self.nodeA))
        try await roundTrip(Self.vm(1), .delete(instance: Self.vm(1)))
        // An undo of a change that no longer holds is refused and changes nothing.
        let build = try await ledger.commit(.build(Self.instance(Self.vm(2), on: Self.nodeB)))
        _ = try await ledger.commit(.delete(instance: Self.vm(2)))
        let after = try await books(Self.vm(2))
        await #expect(throws: ComputeError.self) { try await ledger.undo(build.change) }
        #expect(try await books(Self.vm(2)) == after)
    }

    @Test(arguments: TrackerBackend.all) func sameHostResizeHoldsBothFlavorsUntilConfirmed(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1))
        try await fixture.tracker.perform(Self.move(Self.mig(1), of: Self.vm(1), .resize, to: Self.nodeA))
        #expect(try await fixture.usage(Self.nodeA) == ["VCPU": 6, "MEMORY_MB": 12288, "DISK_GB": 60])
        try await fixture.tracker.perform(.finish(migration: Self.mig(1)))
        try await fixture.expectAgreement()
        try await fixture.tracker.perform(.confirm(migration: Self.mig(1)))
        #expect(try await fixture.usage(Self.nodeA) == ["VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 40])
        try await fixture.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func moveThatDoesNotFitAtTheDestinationChangesNothing(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1), Self.large, on: Self.nodeB)
        try await Self.active(fixture, Self.vm(2), Self.large, on: Self.nodeB)
        try await Self.active(fixture, Self.vm(3))
        let before = try await fixture.ledger.instance(uuid: Self.vm(3))
        await #expect(throws: ComputeError.self) {
            try await fixture.tracker.perform(Self.move(Self.mig(1), of: Self.vm(3), .liveMigration, to: Self.nodeB))
        }
        #expect(try await fixture.ledger.migration(uuid: Self.mig(1)) == nil)
        #expect(try await fixture.ledger.instance(uuid: Self.vm(3)) == before)
        try await fixture.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func liveMigrationCompletesOrRollsBack(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1))
        try await Self.active(fixture, Self.vm(2))
        try await fixture.tracker.perform(Self.move(Self.mig(1), of: Self.vm(1), .liveMigration, to: Self.nodeB))
        try await fixture.tracker.perform(.progress(migration: Self.mig(1), status: .running))
        try await fixture.tracker.perform(.rollback(migration: Self.mig(1)))
        #expect(try await fixture.usage(Self.nodeB) == [:])
        #expect(try await fixture.ledger.migration(uuid: Self.mig(1))?.status == .failed)
        try await fixture.expectAgreement()
        try await fixture.tracker.perform(Self.move(Self.mig(2), of: Self.vm(2), .liveMigration, to: Self.nodeB))
        try await fixture.tracker.perform(.finish(migration: Self.mig(2)))
        #expect(try await fixture.usage(Self.nodeB) == ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20])
        #expect(try await fixture.usage(Self.nodeA) == ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20])
        try await fixture.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func evacuationFromADeadHostIsCleanedUpWhenTheSourceReturns(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1))
        try await fixture.tracker.perform(Self.move(Self.mig(1), of: Self.vm(1), .evacuation, to: Self.nodeB))
        try await fixture.tracker.perform(.finish(migration: Self.mig(1)))
        // The source still holds the instance's resources until it is known not to run it.
        #expect(try await fixture.usage(Self.nodeA) == ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20])
        try await fixture.expectAgreement()
        // The source is back and does not run it: the audit completes the evacuation there.
        try fixture.writeNodes(TrackerFixture.twoNodes(running: ["n-a": [], "n-b": [Self.vm(1)]]))
        let report = try await fixture.tracker.audit()
        #expect(report.cleanedEvacuations == [Self.mig(1)])
        #expect(try await fixture.usage(Self.nodeA) == [:])
        #expect(try await fixture.ledger.migration(uuid: Self.mig(1))?.status == .completed)
        try await fixture.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func deletingAnInstanceMidMoveReleasesBothEnds(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1))
        try await fixture.tracker.perform(Self.move(Self.mig(1), of: Self.vm(1), .resize, to: Self.nodeB))
        try await fixture.tracker.perform(.delete(instance: Self.vm(1)))
        #expect(try await fixture.usage(Self.nodeA) == [:])
        #expect(try await fixture.usage(Self.nodeB) == [:])
        #expect(try await fixture.ledger.migration(uuid: Self.mig(1))?.status == .cancelled)
        await #expect(throws: ComputeError.self) { try await fixture.tracker.perform(.finish(migration: Self.mig(1))) }
        try await fixture.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func auditHealsPlacementAndReportsWhatItCannotExplain(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1))
        try await Self.active(fixture, Self.vm(2))
        try await fixture.tracker.perform(.delete(instance: Self.vm(2)))
        // Someone deletes vm 1's allocations behind the ledger's back, re-creates the deleted vm 2's, and adds a
        // consumer the ledger never heard of.
        try await fixture.store.deleteAllocations(consumerUUID: Self.vm(1))
        let stranger = "99999999-0000-4000-8000-000000000000"
        for consumer in [Self.vm(2), stranger] {
            try await fixture.store.replaceAllocations([ConsumerAllocationRequest(
                consumerUUID: consumer, items: [AllocationItem(providerUUID: Self.nodeA, resourceClass: .vcpu, used: 1)],
                owner: ConsumerOwner(projectID: "p", userID: "u"), expectedGeneration: .unchecked)])
        }
        let report = try await fixture.tracker.audit()
        #expect(report.repaired == [Self.vm(1)])
        #expect(report.deletedAllocations == ["\(Self.vm(2))@\(Self.nodeA)"])
        #expect(report.unknownConsumers == [stranger])
        let (_, placement) = try await fixture.store.usages(providerUUID: Self.nodeA)
        #expect(placement == ["VCPU": 3, "MEMORY_MB": 4096, "DISK_GB": 20])
        try await fixture.store.deleteAllocations(consumerUUID: stranger)
        try await fixture.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func nodesComeAndGoButNotWithAllocations(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1), on: Self.nodeB)
        // n-b vanishes while it holds an instance: reported, kept. A nonsense node is refused; the rest go on.
        var nodes = [TrackerFixture.twoNodes()[0]]
        nodes.append(["hostname": "broken", "vcpus": -4, "memory_mb": 1])
        try fixture.writeNodes(nodes)
        let report = try await fixture.tracker.audit()
        #expect(report.removalRefused.keys.sorted() == [Self.nodeB])
        #expect(report.invalid["broken"]?.contains("vcpus") == true)
        #expect(try await fixture.ledger.node(uuid: Self.nodeB) != nil)
        // Once empty, it is removed with its provider.
        try await fixture.tracker.perform(.delete(instance: Self.vm(1)))
        let second = try await fixture.tracker.audit()
        #expect(second.removed == [Self.nodeB])
        #expect(try await fixture.ledger.node(uuid: Self.nodeB) == nil)
        #expect(try await fixture.store.provider(uuid: Self.nodeB) == nil)
    }

    @Test(arguments: TrackerBackend.all) func aRestartedTrackerRestoresItsNodesFromTheLedger(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        try await fixture.tracker.start()
        try await Self.active(fixture, Self.vm(1))
        try await fixture.tracker.perform(Self.move(Self.mig(1), of: Self.vm(1), .resize, to: Self.nodeB))
        let before = try await fixture.usage(Self.nodeA)
        await fixture.close()
        let restarted = try await TrackerFixture(backend: backend, directory: fixture.directory)
        defer { Task { await restarted.remove() } }
        try await restarted.tracker.start()
        #expect(try await restarted.usage(Self.nodeA) == before)
        #expect(try await restarted.usage(Self.nodeB) == ["VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 40])
        try await restarted.tracker.perform(.finish(migration: Self.mig(1)))
        try await restarted.tracker.perform(.confirm(migration: Self.mig(1)))
        try await restarted.expectAgreement()
    }

    @Test(arguments: TrackerBackend.all) func eventsDescribeClaimsAndAudits(backend: TrackerBackend) async throws {
        let fixture = try await TrackerFixture(backend: backend)
        defer { Task { await fixture.remove() } }
        try await fixture.tracker.start()
        try await fixture.tracker.perform(.build(Self.instance(Self.vm(1))))
        await #expect(throws: ComputeError.self) { try await fixture.tracker.perform(.build(Self.instance(Self.vm(2), Flavor(name: "huge", vcpus: 64, memoryMB: 1)))) }
        let types = fixture.tracker.events.recent().map(\.type)
        #expect(types.contains("agent.start"))
        #expect(types.contains("node.registered"))
        #expect(types.contains("audit.pass"))
        #expect(types.contains("claim.build"))
        #expect(types.contains("claim.refused"))
        let build = try #require(fixture.tracker.events.recent().first { $0.type == "claim.build" })
        #expect(build.fields["instance"] == .string(Self.vm(1)))
        #expect(build.json.contains("\"type\":\"claim.build\""))
    }
}
