public import AllotCore
public import AllotStore
import Foundation
public import Logging
import Synchronization

/// The books of an agent whose Placement is a separate service (upstream OpenStack Placement, or another
/// `allot serve` used as a plain Placement): the compute ledger stays in a local database (with a local copy of
/// this host's providers, so claims are checked before Placement sees them), and every change is reported to
/// Placement through its API.
///
/// A claim commits locally first, then writes the consumers' allocations to Placement in one
/// `POST /allocations` with their consumer generations; when Placement refuses (no room because someone else
/// allocated there, a generation it will not take) or cannot be reached, the local part is undone and the claim
/// fails with ``ComputeError/placementRefused(reason:nodes:)``. The ledger is the truth for what this host's
/// instances hold: the audit rewrites Placement's allocations of known consumers that differ from it (e.g. after a
/// crash between the local commit and the report), and keeps the providers' inventories and traits right.
///
/// Claims and repairs are serialised (one at a time per agent), so an undo never races another change.
public final class PlacementLedger: LedgerBackend {
    public let local: SQLComputeLedger
    public let placement: PlacementClient
    let logger: Logger
    private let serial = SerialLock()
    /// Provider generations of this agent's nodes at the start of recent audit passes, by pass sequence.
    private let snapshots = Mutex<[Int: [String: Int]]>([:])

    public init(local: SQLComputeLedger, placement: PlacementClient, logger: Logger) {
        self.local = local
        self.placement = placement
        self.logger = logger
    }

    // MARK: Reads (local)

    public func node(uuid: String) async throws -> (node: ComputeNode, generation: Int)? {
        try await local.node(uuid: uuid)
    }
    public func nodes(host: String?) async throws -> [ComputeNode] { try await local.nodes(host: host) }
    public func nodeLedgers(uuids: [String]) async throws -> [String: (ledger: NodeLedger, generation: Int)] {
        try await local.nodeLedgers(uuids: uuids)
    }
    public func generations(nodes: [String]) async throws -> [String: Int] { try await local.generations(nodes: nodes) }
    public func instance(uuid: String) async throws -> Instance? { try await local.instance(uuid: uuid) }
    public func hostClaims(node: String) async throws -> [String: HostClaim] { try await local.hostClaims(node: node) }
    public func migration(uuid: String) async throws -> Migration? { try await local.migration(uuid: uuid) }
    public func instances(node: String?, includeDeleted: Bool) async throws -> [Instance] {
        try await local.instances(node: node, includeDeleted: includeDeleted)
    }
    public func migrations(node: String?, inProgressOnly: Bool) async throws -> [Migration] {
        try await local.migrations(node: node, inProgressOnly: inProgressOnly)
    }

    // MARK: Claims

    public func commit(_ operation: ComputeOperation) async throws -> CommitResult {
        try await serial.run {
            let result = try await self.local.commit(operation)
            let consumers = result.change.allocations
            guard !consumers.isEmpty else { return result }
            do {
                try await self.report(consumers, change: result.change)
            } catch let error as PlacementClientError {
                let undone = try await self.local.undo(result.change)
                self.logger.warning("Placement refused a claim; undone", metadata: [
                    "allot.operation": .string(operation.name), "allot.error": .string(error.description),
                ])
                throw ComputeError.placementRefused(
                    reason: error.status == 0 ? "Placement unreachable: \(error.detail)" : error.detail,
                    nodes: Set(result.generations.keys).union(undone.keys).sorted())
            }
            return result
        }
    }

    /// Writes what each consumer holds now on the nodes the change touched, keeping what it holds elsewhere
    /// (e.g. shared storage), with fresh consumer generations (retried on a generation conflict).
    private func report(_ consumers: [String: NodeAmounts], change: ComputeChange) async throws {
        let owner = change.after.instance ?? change.before.instance
        var nodesOf: [String: Set<String>] = [:]
        for records in [change.before, change.after] {
            for (consumer, amounts) in records.allocations where consumers[consumer] != nil {
                nodesOf[consumer, default: []].formUnion(amounts.keys)
            }
        }
        try await write(consumers, replacing: nodesOf, owner: owner)
    }

    private func write(_ consumers: [String: NodeAmounts], replacing: [String: Set<String>], owner: Instance?) async throws {
        try await Self.conflictRetry.run(isRetryable: Self.isGenerationConflict) {
            var writes: [PlacementClient.ConsumerWrite] = []
            for (consumer, amounts) in consumers.sorted(by: { $0.key < $1.key }) {
                let current = try await placement.consumerAllocations(consumer)
                var allocations = current.allocations.filter { !(replacing[consumer] ?? []).contains($0.key) }
                for (node, classes) in amounts where !classes.isEmpty { allocations[node] = classes }
                if allocations == current.allocations { continue }
                writes.append(PlacementClient.ConsumerWrite(
                    consumer: consumer, allocations: allocations, projectID: owner?.projectID ?? IncompleteConsumer.projectID,
                    userID: owner?.userID ?? IncompleteConsumer.userID, generation: current.generation,
                    consumerType: consumer == owner?.uuid
                        ? SQLComputeLedger.instanceConsumerType : SQLComputeLedger.migrationConsumerType))
            }
            guard !writes.isEmpty else { return }
            try await placement.writeAllocations(writes)
        }
    }

    /// Placement generation conflicts are retried: 4 attempts in all, short jittered pauses (10 ms, 20 ms, 40 ms).
    static let conflictRetry = Retry(
        backoff: Backoff(initial: .milliseconds(10), multiplier: 2, cap: .milliseconds(40), jitter: 0.5), maxAttempts: 4)

    static func isGenerationConflict(_ error: any Error) -> Bool {
        (error as? PlacementClientError)?.isGenerationConflict ?? false
    }

    // MARK: Audit

    public func reconcile(consumer: String) async throws -> (outcome: SQLComputeLedger.Reconciled, generations: [String: Int]) {
        try await serial.run {
            // The local copy first (it is what claims are checked against), then Placement.
            let (localOutcome, generations) = try await self.local.reconcile(consumer: consumer)
            guard let expected = try await self.local.expectedAllocations(consumer: consumer) else {
                return (.unknown, generations)
            }
            let ours = try await self.ownedProviders()
            let current = try await self.placement.consumerAllocations(consumer).allocations.filter { ours.contains($0.key) }
            if current == expected.amounts { return (localOutcome, generations) }
            do {
                try await self.write([consumer: expected.amounts], replacing: [consumer: ours], owner: expected.owner)
            } catch let error as PlacementClientError where error.isRefusal {
                self.logger.warning("Placement refused a repair", metadata: [
                    "allot.consumer": .string(consumer), "allot.error": .string(error.description),
                ])
                return (.refused, generations)
            }
            return (expected.amounts.isEmpty ? .cleared : .repaired, generations)
        }
    }

    public func placementConsumers(nodes: [String]) async throws -> [String: [String: [String: Int]]] {
        var result: [String: [String: [String: Int]]] = [:]
        for node in nodes { result[node] = try await placement.providerAllocations(node) }
        return result
    }

    /// Placement keeps no change log an agent can read, but every write to a provider (inventories, traits,
    /// allocations) moves its generation on: the nodes whose providers' generations differ from the snapshot
    /// taken at the start of the pass `since` (or that have no provider) are the ones to check. Without that
    /// snapshot (first pass, or a pass that failed) every node is checked.
    public func changedProviders(since: Int?) async throws -> (sequence: Int, providers: Set<String>?) {
        let ours = Set(try await local.nodes(host: nil).map(\.uuid))
        let current = try await placement.providerGenerations().filter { ours.contains($0.key) }
        let base: [String: Int]?
        let sequence: Int
        (sequence, base) = snapshots.withLock { state in
            let sequence = (state.keys.max() ?? 0) + 1
            let base = since.flatMap { state[$0] }
            state[sequence] = current
            // The previous snapshot stays for a pass that fails and is tried again.
            for old in state.keys where old < sequence - 1 { state[old] = nil }
            return (sequence, base)
        }
        guard let base else { return (sequence, nil) }
        return (sequence, Set(ours.filter { current[$0] == nil || current[$0] != base[$0] }))
    }

    public func placementTraits(node: String) async throws -> Set<String>? {
        try await placement.traits(node)?.traits
    }

    // MARK: Nodes

    /// Saves the node locally, then makes its provider in Placement match: created (named after the node's
    /// hostname) if missing, inventories and traits replaced where they differ (custom classes and traits are
    /// created first; generation conflicts are retried).
    public func saveNode(_ node: ComputeNode) async throws -> NodeSave {
        var save = try await local.saveNode(node)
        try await Self.conflictRetry.run(isRetryable: Self.isGenerationConflict) {
            let remote = try await syncProvider(node)
            save.createdProvider = save.createdProvider || remote.created
            save.changedInventories = save.changedInventories || remote.inventories
            save.changedTraits = save.changedTraits || remote.traits
            let children = try await serial.run { try await self.syncChildren(node) }
            save.changedPCIProviders = save.changedPCIProviders || children.changed
            save.reshapedConsumers = Array(Set(save.reshapedConsumers).union(children.reshaped)).sorted()
        }
        return save
    }

    private func syncProvider(_ node: ComputeNode) async throws -> (created: Bool, inventories: Bool, traits: Bool) {
        var created = false
        if let provider = try await placement.provider(node.uuid) {
            if provider.name != node.hostname { try await placement.renameProvider(uuid: node.uuid, name: node.hostname) }
        } else {
            try await placement.createProvider(uuid: node.uuid, name: node.hostname)
            created = true
        }
        var changedInventories = false
        let (generation, inventories) = try await placement.inventories(node.uuid)
        if inventories != node.inventories {
            for name in node.inventories.keys where ResourceClass.isCustomName(name) && inventories[name] == nil {
                try await placement.ensureResourceClass(name)
            }
            do {
                _ = try await placement.setInventories(node.uuid, generation: generation, node.inventories)
                changedInventories = true
            } catch let error as PlacementClientError where error.code == "placement.inventory.inuse" {
                // Classes moving to child providers (NUMA cells) while allocated: the reshape moves them.
                logger.info("Root inventories wait for the reshape", metadata: ["allot.node": .string(node.uuid)])
            }
        }
        var changedTraits = false
        if let (generation, traits) = try await placement.traits(node.uuid), traits != node.traits {
            for name in node.traits.subtracting(traits) where Trait.isCustomName(name) {
                try await placement.ensureTrait(name)
            }
            try await placement.setTraits(node.uuid, generation: generation, node.traits)
            changedTraits = true
        }
        return (created, changedInventories, changedTraits)
    }

    /// Our nodes' providers and their child providers (PCI devices), as the local copy has them.
    private func ownedProviders() async throws -> Set<String> {
        let nodes = Set(try await local.nodes(host: nil).map(\.uuid))
        return nodes.union(try await local.childProviders(of: nodes).keys)
    }

    /// Makes the node's PCI child providers in Placement match the local copy: missing ones created under the
    /// node; then, when consumers holding devices there have allocations that do not match the ledger (devices
    /// just turned on or off in Placement), one `POST /reshaper` replaces the tree's inventories and those
    /// consumers' allocations together; otherwise inventories and traits are set one by one. Providers no longer
    /// wanted are deleted once empty.
    private func syncChildren(_ node: ComputeNode) async throws -> (changed: Bool, reshaped: [String]) {
        let config = node.hostConfig ?? HostConfig()
        let desired = config.childProviders(node: node.uuid, hostname: node.hostname, topology: node.topology)
        // The node's children this configuration manages; other services' children are left alone.
        var upstream = try await placement.children(of: node.uuid).filter {
            HostConfig.isOwnChild(uuid: $0.key, name: $0.value.name, node: node.uuid)
        }
        guard !desired.isEmpty || !upstream.isEmpty else { return (false, []) }
        var changed = false
        for provider in desired {
            for name in provider.inventories.keys where ResourceClass.isCustomName(name) { try await placement.ensureResourceClass(name) }
            for name in provider.traits where Trait.isCustomName(name) { try await placement.ensureTrait(name) }
            if upstream[provider.uuid] == nil {
                try await placement.createProvider(uuid: provider.uuid, name: provider.name, parent: node.uuid)
                upstream[provider.uuid] = (provider.name, 0)
                changed = true
            }
        }
        let children = Set(upstream.keys)
        let ours = try await ownedProviders().union(children)
        var writes: [PlacementClient.ConsumerWrite] = []
        for (consumer, claim) in try await local.hostClaims(node: node.uuid).sorted(by: { $0.key < $1.key }) {
            let current = try await placement.consumerAllocations(consumer)
            let held = current.allocations.filter { children.contains($0.key) }
            guard held != claim.childAllocations.filter({ !$0.value.isEmpty }),
                let expected = try await local.expectedAllocations(consumer: consumer)
            else { continue }
            var allocations = current.allocations.filter { !ours.contains($0.key) }
            for (provider, classes) in expected.amounts where !classes.isEmpty { allocations[provider] = classes }
            writes.append(PlacementClient.ConsumerWrite(
                consumer: consumer, allocations: allocations,
                projectID: expected.owner?.projectID ?? IncompleteConsumer.projectID,
                userID: expected.owner?.userID ?? IncompleteConsumer.userID, generation: current.generation,
                consumerType: consumer == expected.owner?.uuid
                    ? SQLComputeLedger.instanceConsumerType : SQLComputeLedger.migrationConsumerType))
        }
        let wanted = Dictionary(desired.map { ($0.uuid, $0.inventories) }) { a, _ in a }
        if writes.isEmpty {
            // The root first when it gains classes, the children after (a class moving between them is never
            // offered twice for long, and never missing where it is allocated).
            let (rootGeneration, rootInventories) = try await placement.inventories(node.uuid)
            if rootInventories != node.inventories {
                _ = try await placement.setInventories(node.uuid, generation: rootGeneration, node.inventories)
                changed = true
            }
            for provider in desired {
                let (generation, inventories) = try await placement.inventories(provider.uuid)
                if inventories != wanted[provider.uuid] {
                    _ = try await placement.setInventories(provider.uuid, generation: generation, wanted[provider.uuid] ?? [:])
                    changed = true
                }
            }
        } else {
            var tree: [String: (generation: Int, inventories: [String: Inventory])] = [:]
            for uuid in children.union([node.uuid]) {
                let generation = try await placement.inventories(uuid).generation
                tree[uuid] = (generation, uuid == node.uuid ? node.inventories : wanted[uuid] ?? [:])
            }
            try await placement.reshape(inventories: tree, allocations: writes)
            changed = true
        }
        for provider in desired {
            if let (generation, traits) = try await placement.traits(provider.uuid), traits != provider.traits {
                try await placement.setTraits(provider.uuid, generation: generation, provider.traits)
                changed = true
            }
        }
        for uuid in children where wanted[uuid] == nil {
            if try await placement.providerAllocations(uuid).isEmpty {
                try await placement.deleteProvider(uuid)
                changed = true
            }
        }
        return (changed, writes.map(\.consumer))
    }

    /// Removes the node from the ledger and its provider from Placement, unless anything is allocated there
    /// (locally or in Placement).
    public func removeNode(uuid: String) async throws {
        try await serial.run {
            let all = try await self.placement.children(of: uuid)
            let children = all.filter { HostConfig.isOwnChild(uuid: $0.key, name: $0.value.name, node: uuid) }.keys.sorted()
            if children.count < all.count {
                throw ComputeError.illegalTransition("node \(uuid) has child providers of another service in Placement")
            }
            var holders = Set(try await self.placement.providerAllocations(uuid).keys)
            for child in children { holders.formUnion(try await self.placement.providerAllocations(child).keys) }
            let sorted = holders.sorted()
            if !sorted.isEmpty {
                throw ComputeError.illegalTransition(
                    "node \(uuid) still holds allocations in Placement of \(sorted.prefix(5).joined(separator: ", "))")
            }
            try await self.local.removeNode(uuid: uuid)
            do {
                for child in children { try await self.placement.deleteProvider(child) }
                try await self.placement.deleteProvider(uuid)
            } catch let error as PlacementClientError where error.isRefusal {
                throw ComputeError.illegalTransition("Placement kept provider \(uuid): \(error.detail)")
            }
        }
    }
}
