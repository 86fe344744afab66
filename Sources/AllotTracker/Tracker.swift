public import AllotCore
import AllotStore
import Foundation
public import Logging
import Metrics
import Synchronization

/// What one audit pass found and did.
public struct AuditReport: Sendable, Equatable {
    public var nodes = 0
    public var added: [String] = []
    public var removed: [String] = []
    /// Nodes the driver no longer reports but that still hold allocations: node → reason.
    public var removalRefused: [String: String] = [:]
    /// Nodes the driver reported nonsense for: hostname → reason.
    public var invalid: [String: String] = [:]
    /// Nodes whose record or Placement provider was written.
    public var saved: [String] = []
    /// Instances running on a node but unknown to the ledger: node → uuids.
    public var orphans: [String: [String]] = [:]
    /// The memory (MiB) of those orphans, held back from the node's `MEMORY_MB` (added to its `reserved`) until they
    /// go away: node → MiB (0 when the driver does not know their memory).
    public var orphanMemoryMB: [String: Int] = [:]
    /// Instances the ledger has on a node, in a state where their guest should exist there, that the driver does
    /// not report running: node → uuids (never changed or deleted; reported at every pass while missing).
    public var missing: [String: [String]] = [:]
    /// Allocations deleted because their consumer no longer holds anything there: (consumer, node).
    public var deletedAllocations: [String] = []
    /// Ledger consumers whose Placement allocations were rewritten.
    public var repaired: [String] = []
    /// Consumers with allocations on a node that the ledger does not know (left alone).
    public var unknownConsumers: [String] = []
    /// Ledger consumers whose allocations an external Placement refused to take back (reported, retried next pass).
    public var refusedRepairs: [String] = []
    /// Nodes whose live usage had drifted from the ledger and was rebuilt.
    public var drift: [String] = []
    /// Evacuations completed at their source.
    public var cleanedEvacuations: [String] = []
    /// PCI devices the driver reports that it did not before, and those it no longer reports: `address@node`.
    public var devicesAppeared: [String] = []
    public var devicesVanished: [String] = []
    /// Consumers whose allocations moved onto or off PCI child providers (the node changed shape).
    public var reshaped: [String] = []
    /// Vanished devices still held by an instance or migration (`address@node` → consumer): kept in the ledger
    /// until the consumer lets go, and reported at every pass until then.
    public var devicesHeldButGone: [String: String] = [:]
    /// Nodes whose audit failed (node → reason); the other nodes were audited all the same.
    public var failed: [String: String] = [:]

    public init() {}
}

/// The resource tracker for one host: its nodes (each owned by a ``NodeTracker`` actor), claims, audits and events.
public final class Tracker: Sendable {
    public let configuration: TrackerConfiguration
    public let driver: any HostDriver
    public let ledger: any LedgerBackend
    public let events: EventBus
    let logger: Logger

    private struct State {
        var nodes: [String: NodeTracker] = [:]
        var byHostname: [String: String] = [:]
        var lastSequence: Int?
        var started = false
        /// Whether a loop is reading the driver's `changes` (one stream, one reader).
        var watchingChanges = false
    }

    private let state = Mutex(State())
    private let auditLock = SerialLock()

    public init(
        configuration: TrackerConfiguration, driver: any HostDriver, ledger: any LedgerBackend, events: EventBus,
        logger: Logger
    ) {
        self.configuration = configuration
        self.driver = driver
        self.ledger = ledger
        self.events = events
        self.logger = logger
    }

    /// Restores this host's nodes from the ledger, then runs the first audit (which registers new nodes).
    /// Claims are accepted once it returns.
    @discardableResult
    public func start() async throws -> AuditReport {
        let known = try await ledger.nodes(host: configuration.host)
        let views = try await ledger.nodeLedgers(uuids: known.map(\.uuid))
        state.withLock { state in
            for node in known {
                let view = views[node.uuid] ?? (NodeLedger(node: node.uuid, instances: [], migrations: []), 0)
                state.nodes[node.uuid] = NodeTracker(node: node, ledger: view.ledger, generation: view.generation)
                state.byHostname[node.hostname] = node.uuid
            }
        }
        events.publish("agent.start", ["host": .string(configuration.host), "nodes": .int(known.count),
                                       "driver": .string(driver.name)])
        let report = try await audit(trigger: .start)
        state.withLock { $0.started = true }
        return report
    }

    /// Whether ``start()`` has finished.
    public var isStarted: Bool { state.withLock { $0.started } }

    /// The uuids of the nodes this tracker manages.
    public var nodeUUIDs: [String] { state.withLock { Array($0.nodes.keys) } }

    /// A node's live record (usage and stats up to the last change) and ledger view, if managed here.
    public func live(node uuid: String) async -> (node: ComputeNode, ledger: NodeLedger, generation: Int)? {
        guard let tracker = state.withLock({ $0.nodes[uuid] }) else { return nil }
        let snapshot = await tracker.snapshot()
        var node = snapshot.node
        node.usage = snapshot.ledger.usage
        node.stats = snapshot.ledger.stats
        return (node, snapshot.ledger, snapshot.generation)
    }

    /// The live records of these nodes (those managed here), each view first brought up to the ledger's
    /// generation: commits made through another replica or process on the same database are read in.
    /// - Throws: database errors; the views stay as they were then.
    public func current(nodes uuids: [String]) async throws -> [String: (node: ComputeNode, ledger: NodeLedger, generation: Int)] {
        let trackers = state.withLock { state in uuids.compactMap { state.nodes[$0] } }
        guard !trackers.isEmpty else { return [:] }
        let generations = try await ledger.generations(nodes: trackers.map(\.uuid))
        var stale: [NodeTracker] = []
        for tracker in trackers {
            if let generation = generations[tracker.uuid], generation > (await tracker.generation) { stale.append(tracker) }
        }
        if !stale.isEmpty {
            let views = try await ledger.nodeLedgers(uuids: stale.map(\.uuid))
            for tracker in stale {
                if let view = views[tracker.uuid] { await tracker.reload(view.ledger, generation: view.generation) }
            }
        }
        var result: [String: (node: ComputeNode, ledger: NodeLedger, generation: Int)] = [:]
        for tracker in trackers { result[tracker.uuid] = await live(node: tracker.uuid) }
        return result
    }

    // MARK: Claims

    /// Performs one claim, move or state operation: one transaction in the ledger and Placement, then the live
    /// views of the nodes it touched, then an event.
    /// - Throws: ``ComputeError`` refusals (nothing changed).
    @discardableResult
    public func perform(_ operation: ComputeOperation) async throws -> ComputeChange {
        let result: CommitResult
        do {
            result = try await ledger.commit(operation)
        } catch let error as ComputeError {
            if case .placementRefused(_, let nodes) = error {
                do {
                    try await reload(nodes)
                } catch {
                    // The views stay behind the ledger's generation; the next audit reloads them.
                    logger.warning("Reloading views after an undone claim failed", metadata: [
                        "allot.error": .string("\(error)"),
                    ])
                }
            }
            events.publish("claim.refused", node: Self.targetNode(operation), [
                "operation": .string(operation.name), "reason": .string(error.description),
                "code": .string(error.code),
            ], problem: true)
            throw error
        }
        await absorb(result)
        if !result.change.isNoOp {
            var fields: [String: EventValue] = ["operation": .string(operation.name)]
            if let instance = result.change.after.instance {
                fields["instance"] = .string(instance.uuid)
                fields["vm_state"] = .string(instance.vmState.rawValue)
            }
            if let migration = result.change.after.migration {
                fields["migration"] = .string(migration.uuid)
                fields["status"] = .string(migration.status.rawValue)
                fields["source"] = .string(migration.sourceNode)
                fields["dest"] = .string(migration.destNode)
            }
            let type = operation.migrationUUID == nil ? "claim.\(operation.name)" : "move.\(operation.name)"
            events.publish(type, node: Self.targetNode(operation) ?? result.change.after.instance?.node, fields)
        }
        return result.change
    }

    /// Takes a change another process committed through this tracker's ledger (an agent's claim on `allot serve`)
    /// into the live views of the nodes it touched that this tracker manages.
    public func absorb(_ result: CommitResult) async {
        let trackers = state.withLock { state in result.generations.compactMap { uuid, generation in
            state.nodes[uuid].map { ($0, generation) } } }
        for (tracker, generation) in trackers { await tracker.apply(result.change, generation: generation) }
    }

    /// Reads these nodes' views from the ledger again (a claim was undone behind the live views' back).
    private func reload(_ nodes: [String]) async throws {
        let trackers = state.withLock { state in nodes.compactMap { state.nodes[$0] } }
        guard !trackers.isEmpty else { return }
        let views = try await ledger.nodeLedgers(uuids: trackers.map(\.uuid))
        for tracker in trackers {
            if let view = views[tracker.uuid] { await tracker.reload(view.ledger, generation: view.generation) }
        }
    }

    static func targetNode(_ operation: ComputeOperation) -> String? {
        switch operation {
        case .build(let instance): instance.node
        case .move(let migration): migration.destNode
        default: nil
        }
    }

    // MARK: Audit

    /// Why an audit pass runs (the `trigger` of its `audit.pass` event).
    enum AuditTrigger {
        /// The first pass of ``start()``.
        case start
        /// Every `auditInterval` seconds.
        case periodic
        /// ``audit()``: `POST /compute/v1/audit`, `allot audit`, a test.
        case request
        /// The driver signalled changes (this many since the previous such pass).
        case change(signals: Int)

        var name: String {
            switch self {
            case .start: "start"
            case .periodic: "periodic"
            case .request: "request"
            case .change: "change"
            }
        }
    }

    /// Whether ``runAudits()`` has anything to do: periodic audits, or a driver that signals changes.
    public var runsAudits: Bool { configuration.auditInterval > 0 || driver.changes != nil }

    /// Runs the periodic audits and the audits on driver changes (``runAuditsOnChanges(debounce:)``) until the task
    /// is cancelled (the tracker stops).
    public func runAudits() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.runPeriodicAudits() }
            group.addTask { await self.runAuditsOnChanges() }
            await group.waitForAll()
        }
    }

    /// Runs the periodic audit until the task is cancelled.
    public func runPeriodicAudits() async {
        guard configuration.auditInterval > 0 else { return }
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(Int(configuration.auditInterval * 1000)))
            } catch { return }
            do {
                try await audit(trigger: .periodic)
            } catch is CancellationError {
                return
            } catch {
                events.publish("audit.failed", ["reason": .string(String(describing: error))], problem: true)
            }
        }
    }

    /// Audits soon after each signal of the driver's ``HostDriver/changes`` (a guest started or stopped), besides
    /// the periodic audits and whatever the audit interval: a signal starts a pass `debounce` later, and the signals
    /// that arrive meanwhile are covered by that pass (a burst of lifecycle events is one pass); signals during a
    /// pass start one more. Passes take the audit lock like every other, so two never run at once. Returns at once
    /// when the driver has no such signal or another loop already reads it, and when the task is cancelled (the
    /// tracker stops) or the driver ends its stream.
    public func runAuditsOnChanges(debounce: Duration = .seconds(1)) async {
        guard let changes = driver.changes else { return }
        let claimed = state.withLock { state -> Bool in
            if state.watchingChanges { return false }
            state.watchingChanges = true
            return true
        }
        guard claimed else { return }
        defer { state.withLock { $0.watchingChanges = false } }
        let received = SignalCount()
        // At most one wake-up waits: every signal before the pass reads the count is covered by that pass.
        let (wakeUps, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in changes {
                    received.add()
                    wake.yield()
                }
                wake.finish()
            }
            group.addTask {
                var audited = 0
                for await _ in wakeUps {
                    do { try await Task.sleep(for: debounce) } catch { return }
                    let count = received.value
                    guard count > audited else { continue }
                    let signals = count - audited
                    audited = count
                    do {
                        try await self.audit(trigger: .change(signals: signals))
                    } catch is CancellationError {
                        return
                    } catch {
                        self.events.publish(
                            "audit.failed", ["reason": .string(String(describing: error))], problem: true)
                    }
                }
            }
            // Cancelling the task (the tracker stops) ends both; a stream the driver ends lets the last pass run.
            await group.waitForAll()
        }
    }

    /// One audit pass over every node the driver reports (Nova's `update_available_resource`): registers new
    /// nodes, removes vanished ones (only when nothing is allocated there), rebuilds each node's view when
    /// another writer changed its ledger, verifies usage, heals Placement allocations that disagree with the
    /// ledger, reports orphans, completes evacuations at their source, saves nodes and providers that changed,
    /// and publishes host metrics.
    @discardableResult
    public func audit() async throws -> AuditReport {
        try await audit(trigger: .request)
    }

    @discardableResult
    func audit(trigger: AuditTrigger) async throws -> AuditReport {
        // On the audit thread (lower priority), so claims on other threads get the CPU first; its SQLite reads on
        // the background read connection, at the same priority.
        try await BackgroundWork.$active.withValue(true) {
            try await withTaskExecutorPreference(AuditExecutor.shared) {
                try await auditLock.run {
                    let started = ContinuousClock.now
                    let report = try await self.auditPass(trigger: trigger)
                    // Charted by the console; the pass alone, not the wait for a pass already running.
                    Timer(label: "allot_audit_duration_seconds", dimensions: [("host", configuration.host)])
                        .recordNanoseconds((ContinuousClock.now - started).nanoseconds)
                    return report
                }
            }
        }
    }

    private func auditPass(trigger: AuditTrigger) async throws -> AuditReport {
        var report = AuditReport()
        let reported: [DriverNode]
        // Instances whose records change after this moment are not judged missing in this pass: the driver was
        // asked before (an instance set active once its guest has started must not be missed for a pass).
        let askedDriverAt = Date().timeIntervalSince1970
        do {
            reported = try await driver.nodes()
        } catch {
            events.publish("audit.failed", ["reason": .string(String(describing: error))], problem: true)
            throw error
        }
        let (byHostname, lastSequence) = state.withLock { ($0.byHostname, $0.lastSequence) }
        let changes = try await ledger.changedProviders(since: lastSequence)

        // Resolve each reported node to a uuid and its inventories.
        var wanted: [(uuid: String, driverNode: DriverNode, inventories: [String: Inventory])] = []
        var seen = Set<String>()
        for driverNode in reported {
            let uuid = (driverNode.uuid?.lowercased()) ?? byHostname[driverNode.hostname] ?? UUID().uuidString.lowercased()
            guard seen.insert(uuid).inserted else {
                report.invalid[driverNode.hostname] = "uuid \(uuid) reported twice"
                continue
            }
            do {
                let resources = try driverNode.resources.get()
                wanted.append((uuid, driverNode, try configuration.inventories(
                    for: resources, uuid: uuid, hostname: driverNode.hostname)))
            } catch {
                report.invalid[driverNode.hostname] = "\(error)"
                events.publish("node.invalid", node: uuid, ["hostname": .string(driverNode.hostname),
                                                            "reason": .string("\(error)")], problem: true)
            }
        }
        report.nodes = wanted.count

        // Bring every live view up to the ledger's generation (new nodes and views another writer changed).
        let current = state.withLock { $0.nodes }
        let generations = try await ledger.generations(nodes: wanted.map(\.uuid))
        var stale: [String] = []
        for item in wanted {
            guard let tracker = current[item.uuid] else { stale.append(item.uuid); continue }
            if let generation = generations[item.uuid], generation != (await tracker.generation) { stale.append(item.uuid) }
        }
        let fresh = stale.isEmpty ? [:] : try await ledger.nodeLedgers(uuids: stale)
        let consumers = try await ledger.placementConsumers(
            nodes: changes.providers.map { set in wanted.map(\.uuid).filter(set.contains) } ?? wanted.map(\.uuid))

        // One node that cannot be audited (its hostname names another provider, a database refusal) is
        // reported and skipped; the others are audited all the same.
        var failedPlacementCheck = false
        for item in wanted {
            do {
                try await auditNode(item, current: current[item.uuid], fresh: fresh[item.uuid],
                                    askedDriverAt: askedDriverAt,
                                    checkPlacement: changes.providers?.contains(item.uuid) ?? true,
                                    placement: consumers[item.uuid] ?? [:], report: &report)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                failedPlacementCheck = true
                if current[item.uuid] == nil {
                    // Not registered: no live view until a pass registers it (its uuid stays the same).
                    state.withLock { _ = $0.nodes.removeValue(forKey: item.uuid) }
                    report.added.removeAll { $0 == item.uuid }
                }
                recordFailure(of: item.uuid, hostname: item.driverNode.hostname, error: error, report: &report)
            }
        }

        // Nodes the driver no longer reports.
        let reportedUUIDs = Set(wanted.map(\.uuid)).union(report.invalid.keys.compactMap { byHostname[$0] })
        for (uuid, tracker) in state.withLock({ $0.nodes }) where !reportedUUIDs.contains(uuid) {
            let hostname = await tracker.node.hostname
            do {
                try await ledger.removeNode(uuid: uuid)
                state.withLock { state in
                    state.nodes[uuid] = nil
                    state.byHostname[hostname] = nil
                }
                report.removed.append(uuid)
                events.publish("node.removed", node: uuid, ["hostname": .string(hostname)])
            } catch let error as ComputeError {
                report.removalRefused[uuid] = error.description
                events.publish("node.remove_refused", node: uuid, ["reason": .string(error.description)], problem: true)
            }
        }
        let metrics = await driver.metrics()
        if !metrics.isEmpty {
            events.publish("compute.metrics.update", node: wanted.first?.uuid,
                           metrics.mapValues { .double($0) }.merging(["host": .string(configuration.host)]) { a, _ in a })
        }
        // Only now is everything up to `changes.sequence` checked (unless a node failed: it is checked again).
        if !failedPlacementCheck { state.withLock { $0.lastSequence = changes.sequence } }
        var fields: [String: EventValue] = [
            "nodes": .int(report.nodes), "added": .int(report.added.count), "removed": .int(report.removed.count),
            "saved": .int(report.saved.count), "invalid": .int(report.invalid.count),
            "orphans": .int(report.orphans.values.map(\.count).reduce(0, +)),
            "missing": .int(report.missing.values.map(\.count).reduce(0, +)),
            "repaired": .int(report.repaired.count), "deleted_allocations": .int(report.deletedAllocations.count),
            "failed": .int(report.failed.count), "trigger": .string(trigger.name),
        ]
        if case .change(let signals) = trigger { fields["signals"] = .int(signals) }
        events.publish("audit.pass", fields)
        return report
    }

    /// Reports a node whose audit failed: in the report, the log, the `allot_audit_node_failures_total` counter
    /// and an `audit.node_failed` event.
    private func recordFailure(of uuid: String, hostname: String, error: any Error, report: inout AuditReport) {
        let reason = (error as? ComputeError)?.description ?? String(describing: error)
        report.failed[uuid] = reason
        logger.error("Auditing a node failed; the other nodes are audited", metadata: [
            "allot.node.uuid": .string(uuid), "allot.node.hostname": .string(hostname), "allot.error": .string(reason),
        ])
        Counter(label: "allot_audit_node_failures_total", dimensions: [("host", configuration.host)]).increment()
        events.publish("audit.node_failed", node: uuid, ["hostname": .string(hostname), "reason": .string(reason)],
                       problem: true)
    }

    private func auditNode(
        _ item: (uuid: String, driverNode: DriverNode, inventories: [String: Inventory]),
        current: NodeTracker?, fresh: (ledger: NodeLedger, generation: Int)?, askedDriverAt: Double,
        checkPlacement: Bool,
        placement: [String: [String: Int]], report: inout AuditReport
    ) async throws {
        let uuid = item.uuid
        let tracker: NodeTracker
        if let current {
            tracker = current
            if let fresh { await tracker.reload(fresh.ledger, generation: fresh.generation) }
        } else {
            let view = fresh ?? (NodeLedger(node: uuid, instances: [], migrations: []), 0)
            let placeholder = ComputeNode(
                uuid: uuid, hostname: item.driverNode.hostname, host: configuration.host, driver: driver.name,
                inventories: [:])
            tracker = NodeTracker(node: placeholder, ledger: view.ledger, generation: view.generation)
            state.withLock { state in
                state.nodes[uuid] = tracker
                state.byHostname[item.driverNode.hostname] = uuid
            }
            report.added.append(uuid)
        }
        var snapshot = await tracker.snapshot()
        // The live usage must equal the usage rebuilt from the records.
        if snapshot.ledger.recomputedUsage() != snapshot.ledger.usage {
            report.drift.append(uuid)
            events.publish("usage.drift", node: uuid, [:], problem: true)
            let view = try await ledger.nodeLedgers(uuids: [uuid])[uuid]
            if let view {
                await tracker.reload(NodeLedger(node: uuid, instances: view.ledger.instances.values,
                                                migrations: view.ledger.migrations.values), generation: view.generation)
            }
            snapshot = await tracker.snapshot()
        }
        var placementChanged = false
        if checkPlacement {
            placementChanged = true
            try await reconcile(uuid: uuid, ledgerConsumers: snapshot.ledger.consumers, placement: placement, report: &report)
            if let traits = try await ledger.placementTraits(node: uuid) {
                await tracker.setExternalTraits(traits.subtracting(snapshot.node.traits))
                snapshot = await tracker.snapshot()
            }
        }
        var traits = item.driverNode.traits.union(configuration.traits).union([Trait.computeNode.name])
            .union(configuration.configuredTraits(uuid: uuid, hostname: item.driverNode.hostname))
        if configuration.disabled { traits.insert(Trait.computeStatusDisabled.name) }
        traits.formUnion(snapshot.externalTraits)
        // Orphans (running here, unknown to the ledger) hold their memory back; instances that should run here
        // but do not are reported.
        let orphanMemory = checkGuests(
            node: uuid, driverNode: item.driverNode, view: snapshot.ledger, askedDriverAt: askedDriverAt,
            report: &report)
        var desired = snapshot.node
        desired.hostname = item.driverNode.hostname
        desired.host = configuration.host
        desired.driver = driver.name
        desired.inventories = item.inventories
        desired.traits = traits
        desired.stats = snapshot.ledger.stats
        desired.usage = snapshot.ledger.usage
        desired.disabled = configuration.disabled
        if case .success(.host(let inventory)) = item.driverNode.resources {
            desired.topology = inventory.topology
            desired.hostConfig = configuration.hostConfig == HostConfig() ? nil : configuration.hostConfig
        } else {
            desired.topology = item.driverNode.topology
            desired.hostConfig = nil
        }
        if case .success(.host) = item.driverNode.resources {
            Self.holdBack(orphanMemoryMB: orphanMemory, in: &desired)
        }
        // PCI devices that came or went; held ones that went are reported (the ledger keeps their claims).
        let before = Set(snapshot.node.topology?.devices.map(\.address) ?? [])
        let now = Set(desired.topology?.devices.map(\.address) ?? [])
        if current != nil {
            for address in now.subtracting(before).sorted() {
                report.devicesAppeared.append("\(address)@\(uuid)")
                events.publish("pci.device_appeared", node: uuid, ["address": .string(address)])
            }
            for address in before.subtracting(now).sorted() {
                report.devicesVanished.append("\(address)@\(uuid)")
                events.publish("pci.device_vanished", node: uuid, ["address": .string(address)], problem: true)
            }
        }
        if !before.isEmpty || !now.isEmpty {
            for (consumer, claim) in try await ledger.hostClaims(node: uuid) {
                for address in claim.pciDevices where !now.contains(address) {
                    report.devicesHeldButGone["\(address)@\(uuid)"] = consumer
                    events.publish("pci.device_removed_while_held", node: uuid, [
                        "address": .string(address), "consumer": .string(consumer),
                    ], problem: true)
                }
            }
        }
        if desired.differs(from: snapshot.node) || placementChanged || current == nil {
            let record = desired
            let save = try await withConflictRetries { try await self.ledger.saveNode(record) }
            await tracker.setNode(desired)
            if !save.reshapedConsumers.isEmpty {
                report.reshaped.append(contentsOf: save.reshapedConsumers)
                events.publish("node.reshaped", node: uuid, ["consumers": .int(save.reshapedConsumers.count)])
                // Their records changed under the live view: read it again.
                try await reload([uuid])
            }
            if save.savedNode || save.changedInventories || save.changedTraits || save.createdProvider || save.changedPCIProviders {
                report.saved.append(uuid)
                events.publish(current == nil ? "node.registered" : "node.updated", node: uuid, [
                    "hostname": .string(desired.hostname), "inventories": .bool(save.changedInventories),
                    "traits": .bool(save.changedTraits), "provider_created": .bool(save.createdProvider),
                ])
            }
        }
        if let running = item.driverNode.running {
            // Evacuated instances that are gone from their source: drop the source's claim.
            for migration in snapshot.ledger.migrations.values
            where migration.kind == .evacuation && migration.status == .done && migration.sourceNode == uuid
                && !running.contains(migration.instanceUUID)
            {
                try await perform(.confirm(migration: migration.uuid))
                report.cleanedEvacuations.append(migration.uuid)
            }
        }
    }

    /// The vm states in which an instance's guest should exist on its node (so the driver should report it running):
    /// `active`, `paused` (the guest exists, its vCPUs stopped), `resized` (arrived at the destination, waiting for
    /// confirm or revert) and `rescued` (running the rescue image). Not `building` (not spawned yet), `stopped` and
    /// `suspended` (no running guest), `error` (anything goes), `deleted`.
    static let guestStates: Set<VMState> = [.active, .paused, .resized, .rescued]

    /// Whether the driver should report this instance (on the node audited) running: its vm state is one of
    /// ``guestStates``, no task is under way (a reboot, power-off or spawn may take the guest down for a while, as
    /// Nova's power-state sync skips those), and it is not moving (a cold move takes the guest off the source before
    /// it arrives; a live one hands it over at any moment) unless the move has arrived here.
    static func guestShouldRun(_ instance: Instance, migration: Migration?) -> Bool {
        guard guestStates.contains(instance.vmState), instance.taskState == nil else { return false }
        if let migration, !migration.status.hasArrived { return false }
        return true
    }

    /// Orphans and missing instances of one node, when the driver can tell what runs there: orphans (running but
    /// unknown to the ledger: neither on this node nor moving to or from it; a deleted instance's guest is one) are
    /// reported with the memory they hold (`instance.orphan`); instances the ledger has here that should run but do
    /// not are reported one by one (`instance.missing`) at every pass while missing, and never changed (those whose
    /// record changed after `askedDriverAt`, when the driver was asked, wait for the next pass).
    /// - Returns: the orphans' memory (MiB), 0 when the driver does not know it or cannot tell what runs.
    private func checkGuests(
        node uuid: String, driverNode: DriverNode, view: NodeLedger, askedDriverAt: Double, report: inout AuditReport
    ) -> Int {
        guard let running = driverNode.running else { return 0 }
        let runningNow = Set(running.map { $0.lowercased() })
        var memoryByUUID: [String: Int] = [:]
        for (guest, memory) in driverNode.guestMemoryMB { memoryByUUID[guest.lowercased()] = memory }
        let known = Set(view.instances.keys.map { $0.lowercased() })
        let orphans = running.filter { !known.contains($0.lowercased()) }.sorted()
        var memory = 0
        if !orphans.isEmpty {
            for orphan in orphans {
                memory = min(memory + max(0, memoryByUUID[orphan.lowercased()] ?? 0), Limits.maxInt)
            }
            report.orphans[uuid] = orphans
            report.orphanMemoryMB[uuid] = memory
            events.publish("instance.orphan", node: uuid, [
                "instances": .string(orphans.joined(separator: ",")), "memory_mb": .int(memory),
            ], problem: true)
        }
        let missing = view.instances.values.filter { instance in
            instance.node == uuid && !runningNow.contains(instance.uuid.lowercased())
                && instance.updatedAt < askedDriverAt && Self.guestShouldRun(instance, migration: view.records(instance: instance.uuid).migration)
        }.sorted { $0.uuid < $1.uuid }
        if !missing.isEmpty {
            report.missing[uuid] = missing.map(\.uuid)
            for instance in missing {
                events.publish("instance.missing", node: uuid, [
                    "instance": .string(instance.uuid), "vm_state": .string(instance.vmState.rawValue),
                ], problem: true)
            }
        }
        return memory
    }

    /// Holds orphans' memory back from a host node: added to its `MEMORY_MB` reservation (on top of the host's,
    /// never above the total), or to the first NUMA cell's when the cells are its providers.
    static func holdBack(orphanMemoryMB memory: Int, in node: inout ComputeNode) {
        if var inventory = node.inventories[ResourceClass.memoryMB.name] {
            guard memory > 0 else { return }
            inventory.reserved = min(inventory.total, inventory.reserved + memory)
            node.inventories[ResourceClass.memoryMB.name] = inventory
        } else if var config = node.hostConfig, var numa = config.numaInPlacement, config.reportsCells(node.topology) {
            numa.orphanMemoryMB = memory > 0 ? memory : nil
            config.numaInPlacement = numa
            node.hostConfig = config
        }
    }

    /// Compares what Placement says consumers hold on a node with what the node's view says, and has the ledger
    /// settle every difference in its own transaction (so a claim in flight is never mistaken for drift):
    /// allocations of consumers that hold nothing there any more are deleted; ledger consumers with wrong or
    /// missing allocations are rewritten; consumers unknown to the ledger are reported and left alone.
    private func reconcile(
        uuid: String, ledgerConsumers: [String: [String: Int]], placement: [String: [String: Int]],
        report: inout AuditReport
    ) async throws {
        var suspects = Set<String>()
        for (consumer, amounts) in placement where ledgerConsumers[consumer] != amounts { suspects.insert(consumer) }
        for consumer in ledgerConsumers.keys where placement[consumer] == nil { suspects.insert(consumer) }
        var moved: [String: Int] = [:]
        for consumer in suspects.sorted() {
            let (outcome, generations) = try await ledger.reconcile(consumer: consumer)
            moved.merge(generations) { a, b in max(a, b) }
            switch outcome {
            case .consistent: continue
            case .repaired:
                report.repaired.append(consumer)
                events.publish("allocation.repaired", node: uuid, ["consumer": .string(consumer)], problem: true)
            case .cleared:
                report.deletedAllocations.append("\(consumer)@\(uuid)")
                events.publish("allocation.deleted", node: uuid, ["consumer": .string(consumer)])
            case .refused:
                report.refusedRepairs.append(consumer)
                events.publish("allocation.repair_refused", node: uuid, ["consumer": .string(consumer)], problem: true)
            case .unknown:
                report.unknownConsumers.append(consumer)
                events.publish("allocation.unknown", node: uuid, ["consumer": .string(consumer)], problem: true)
            }
        }
        // The nodes whose books were rewritten read their views again.
        try await reload(Array(moved.keys))
    }

    /// Retries `body` on Placement generation conflicts, with a short growing pause (4 tries).
    private func withConflictRetries<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        // Another writer moved the provider's generation: read again after 10, 40, 160 ms (4 attempts in all).
        try await Self.conflictRetry.run(isRetryable: { error in
            (error as? PlacementError)?.code == .concurrentUpdate
        }) { try await body() }
    }

    private static let conflictRetry = Retry(
        backoff: Backoff(initial: .milliseconds(10), multiplier: 4, cap: .milliseconds(160), jitter: 0.2),
        maxAttempts: 4)
}

/// How many change signals a driver sent (read by the pass that covers them).
final class SignalCount: Sendable {
    private let count = Mutex(0)

    func add() { count.withLock { $0 += 1 } }

    var value: Int { count.withLock { $0 } }
}

/// Runs one body at a time, in arrival order (audits queue up; an upstream ledger's claims and repairs too).
actor SerialLock {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if busy { await withCheckedContinuation { waiters.append($0) } } else { busy = true }
        defer {
            if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
        }
        return try await body()
    }
}
