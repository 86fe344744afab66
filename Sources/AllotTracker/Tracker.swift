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
        let report = try await audit()
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

    /// Runs the periodic audit, and an audit at each change the driver signals (a guest started or stopped:
    /// libvirt's lifecycle events), until the task is cancelled.
    public func runPeriodicAudits() async {
        await withTaskGroup(of: Void.self) { group in
            if let changes = driver.changes {
                group.addTask {
                    // Signals that arrive during a pass are coalesced by the stream (it keeps the newest one): one
                    // more pass after the current one sees them all.
                    for await _ in changes {
                        if Task.isCancelled { return }
                        await self.auditReportingFailure()
                    }
                }
            }
            guard configuration.auditInterval > 0 else { return }
            group.addTask {
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: .milliseconds(Int(self.configuration.auditInterval * 1000)))
                    } catch { return }
                    await self.auditReportingFailure()
                }
            }
        }
    }

    private func auditReportingFailure() async {
        do {
            try await audit()
        } catch {
            events.publish("audit.failed", ["reason": .string(String(describing: error))], problem: true)
        }
    }

    /// One audit pass over every node the driver reports (Nova's `update_available_resource`): registers new
    /// nodes, removes vanished ones (only when nothing is allocated there), rebuilds each node's view when
    /// another writer changed its ledger, verifies usage, heals Placement allocations that disagree with the
    /// ledger, reports orphans, completes evacuations at their source, saves nodes and providers that changed,
    /// and publishes host metrics.
    @discardableResult
    public func audit() async throws -> AuditReport {
        // On the audit thread (lower priority), so claims on other threads get the CPU first; its SQLite reads on
        // the background read connection, at the same priority.
        try await BackgroundWork.$active.withValue(true) {
            try await withTaskExecutorPreference(AuditExecutor.shared) {
                try await auditLock.run {
                    let started = ContinuousClock.now
                    let report = try await self.auditPass()
                    // Charted by the console; the pass alone, not the wait for a pass already running.
                    let elapsed = ContinuousClock.now - started
                    Timer(label: "allot_audit_duration_seconds", dimensions: [("host", configuration.host)])
                        .recordNanoseconds(elapsed.components.seconds * 1_000_000_000
                            + elapsed.components.attoseconds / 1_000_000_000)
                    return report
                }
            }
        }
    }

    private func auditPass() async throws -> AuditReport {
        var report = AuditReport()
        let reported: [DriverNode]
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
        events.publish("audit.pass", [
            "nodes": .int(report.nodes), "added": .int(report.added.count), "removed": .int(report.removed.count),
            "saved": .int(report.saved.count), "invalid": .int(report.invalid.count),
            "orphans": .int(report.orphans.values.map(\.count).reduce(0, +)),
            "repaired": .int(report.repaired.count), "deleted_allocations": .int(report.deletedAllocations.count),
            "failed": .int(report.failed.count),
        ])
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
        current: NodeTracker?, fresh: (ledger: NodeLedger, generation: Int)?, checkPlacement: Bool,
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
        // Orphans: running here but unknown to the ledger.
        if let running = item.driverNode.running {
            let tracked = Set(snapshot.ledger.instances.values.filter { $0.node == uuid }.map(\.uuid))
            let orphans = running.subtracting(tracked).sorted()
            if !orphans.isEmpty {
                report.orphans[uuid] = orphans
                events.publish("instance.orphan", node: uuid, ["instances": .string(orphans.joined(separator: ","))],
                               problem: true)
            }
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
