public import AllotCore
public import Logging
import SQLKit
import Synchronization

/// Ids cached for the life of the process.
struct IDCache: Sendable {
    var classes: [String: Int] = [:]
    var projects: [String: Int] = [:]
    var users: [String: Int] = [:]
    var consumerTypes: [String: Int] = [:]

    subscript(kind: LearnedIDs.Kind, key: String) -> Int? {
        switch kind {
        case .resourceClass: classes[key]
        case .project: projects[key]
        case .user: users[key]
        case .consumerType: consumerTypes[key]
        }
    }

    mutating func merge(_ learned: [(LearnedIDs.Kind, String, Int)]) {
        for (kind, key, id) in learned {
            switch kind {
            case .resourceClass: classes[key] = id
            case .project: projects[key] = id
            case .user: users[key] = id
            case .consumerType: consumerTypes[key] = id
            }
        }
    }
}

/// Ids one transaction learned; merged into the cache only after it commits (a rolled-back insert must not be
/// remembered). Reset at the start of each attempt (PostgreSQL may retry the transaction).
final class LearnedIDs: Sendable {
    enum Kind: Sendable { case resourceClass, project, user, consumerType }
    private let state = Mutex<[(Kind, String, Int)]>([])

    func add(_ kind: Kind, _ key: String, _ id: Int) { state.withLock { $0.append((kind, key, id)) } }
    func reset() { state.withLock { $0.removeAll() } }
    var ids: [(Kind, String, Int)] { state.withLock { $0 } }
}

/// Whether a node keeps its NUMA cells in Placement, as of one generation of its provider.
struct CellKnowledge: Sendable, Equatable {
    var providerID: Int
    var generation: Int
    var cells: Bool
}

/// The compute ledger (nodes, instances, migrations) in the same database as Placement.
///
/// Every operation commits the ledger rows and the Placement allocations they imply in one transaction, so the
/// two never drift apart.
public final class SQLComputeLedger: Sendable {
    public let database: Database
    let now: @Sendable () -> Double
    let logger: Logger

    /// Ids that never change once committed (standard classes, projects, users, consumer types).
    let cache = Mutex(IDCache())
    /// Providers as the last commits left them, valid while their generation stays the same.
    let views = Mutex<[String: ProviderView]>([:])
    /// Nodes known to keep (or not) their NUMA cells in Placement, valid while their provider's generation stays
    /// the same (another replica may switch a node to cells).
    let cellNodes = Mutex<[String: CellKnowledge]>([:])

    public init(database: Database, logger: Logger, now: @escaping @Sendable () -> Double) {
        self.database = database
        self.logger = logger
        self.now = now
    }

    /// Consumer types in Placement for the two kinds of ledger consumer.
    public static let instanceConsumerType = "INSTANCE"
    public static let migrationConsumerType = "MIGRATION"

    // MARK: Reads

    /// A node and its ledger generation, or `nil`.
    public func node(uuid: String) async throws -> (node: ComputeNode, generation: Int)? {
        try await database.readTransaction { tx in
            try await tx.row("SELECT * FROM compute_nodes WHERE uuid = \(bind: uuid)").map {
                (try Self.node(from: $0), try $0.decode(column: "ledger_generation", as: Int.self))
            }
        }
    }

    /// Every node, or those managed by `host`, by hostname.
    public func nodes(host: String? = nil) async throws -> [ComputeNode] {
        try await database.readTransaction { tx in
            let rows = if let host {
                try await tx.rows("SELECT * FROM compute_nodes WHERE host = \(bind: host) ORDER BY hostname")
            } else {
                try await tx.rows("SELECT * FROM compute_nodes ORDER BY hostname")
            }
            return try rows.map(Self.node(from:))
        }
    }

    /// The ledger generations of these nodes (missing nodes are left out).
    public func generations(nodes: [String]) async throws -> [String: Int] {
        var result: [String: Int] = [:]
        // One short transaction per chunk, so claims are not kept waiting behind a long read.
        for chunk in Self.chunks(nodes) {
            let rows = try await database.readTransaction { tx in
                try await tx.rows("SELECT uuid, ledger_generation FROM compute_nodes WHERE uuid IN (\(binds: chunk))").map {
                    (try $0.decode(column: "uuid", as: String.self), try $0.decode(column: "ledger_generation", as: Int.self))
                }
            }
            for (uuid, generation) in rows { result[uuid] = generation }
        }
        return result
    }

    /// A node's view of the ledger (its instances and the in-progress moves touching it) and its generation.
    public func nodeLedger(uuid: String) async throws -> (ledger: NodeLedger, generation: Int) {
        try await database.readTransaction { tx in
            let generation = try await tx.row(
                "SELECT ledger_generation FROM compute_nodes WHERE uuid = \(bind: uuid)"
            )?.decode(column: "ledger_generation", as: Int.self) ?? 0
            let migrations = try await tx.rows(
                """
                SELECT * FROM migrations WHERE in_progress = 1 AND (source_node = \(bind: uuid) OR dest_node = \(bind: uuid))
                """
            ).map(Self.migration(from:))
            var instances = try await tx.rows(
                "SELECT * FROM instances WHERE node = \(bind: uuid) AND vm_state <> 'deleted'"
            ).map(Self.instance(from:))
            let known = Set(instances.map(\.uuid))
            let moving = Set(migrations.map(\.instanceUUID)).subtracting(known).sorted()
            if !moving.isEmpty {
                instances += try await tx.rows("SELECT * FROM instances WHERE uuid IN (\(binds: moving))")
                    .map(Self.instance(from:))
            }
            return (NodeLedger(node: uuid, instances: instances, migrations: migrations), generation)
        }
    }

    /// Instances, newest first: all, or those on one node; deleted ones only when asked.
    public func instances(node: String? = nil, includeDeleted: Bool = false) async throws -> [Instance] {
        try await database.readTransaction { tx in
            var query = SQLQueryString("SELECT * FROM instances WHERE 1 = 1")
            if let node { query.appendInterpolation(" AND node = \(bind: node)" as SQLQueryString) }
            if !includeDeleted { query.appendInterpolation(unsafeRaw: " AND vm_state <> 'deleted'") }
            query.appendInterpolation(unsafeRaw: " ORDER BY created_at DESC, uuid")
            return try await tx.rows(query).map(Self.instance(from:))
        }
    }

    public func instance(uuid: String) async throws -> Instance? {
        try await database.readTransaction { tx in
            try await tx.row("SELECT * FROM instances WHERE uuid = \(bind: uuid)").map(Self.instance(from:))
        }
    }

    /// Migrations, newest first: all, or those from or to one node; only in-progress ones when asked.
    public func migrations(node: String? = nil, inProgressOnly: Bool = false) async throws -> [Migration] {
        try await database.readTransaction { tx in
            var query = SQLQueryString("SELECT * FROM migrations WHERE 1 = 1")
            if let node {
                query.appendInterpolation(" AND (source_node = \(bind: node) OR dest_node = \(bind: node))" as SQLQueryString)
            }
            if inProgressOnly { query.appendInterpolation(unsafeRaw: " AND in_progress = 1") }
            query.appendInterpolation(unsafeRaw: " ORDER BY created_at DESC, uuid")
            return try await tx.rows(query).map(Self.migration(from:))
        }
    }

    public func migration(uuid: String) async throws -> Migration? {
        try await database.readTransaction { tx in
            try await tx.row("SELECT * FROM migrations WHERE uuid = \(bind: uuid)").map(Self.migration(from:))
        }
    }

    /// What Placement says each consumer holds on a node's provider (empty when the provider is missing).
    public func placementConsumers(node: String) async throws -> [String: [String: Int]] {
        try await database.readTransaction { tx in
            var result: [String: [String: Int]] = [:]
            for row in try await tx.rows(
                """
                SELECT a.consumer_id, rc.name, a.used FROM allocations a
                JOIN resource_providers rp ON rp.id = a.resource_provider_id
                JOIN resource_classes rc ON rc.id = a.resource_class_id WHERE rp.uuid = \(bind: node)
                """)
            {
                result[try row.decode(column: "consumer_id", as: String.self), default: [:]][
                    try row.decode(column: "name", as: String.self)] = try row.decode(column: "used", as: Int.self)
            }
            return result
        }
    }

    // MARK: Nodes

    /// Creates or adopts the node's provider (uuid = node uuid, name = hostname), brings its inventories and
    /// traits in line with the node, and writes the node row when it changed, in one transaction.
    /// - Throws: ``ComputeError`` when the hostname belongs to another provider, a class or trait is unknown, or
    ///   an inventory that is still allocated would be removed or shrunk below use... (Placement's rules).
    @discardableResult
    public func saveNode(_ node: ComputeNode) async throws -> NodeSave {
        let now = now()
        defer { cellNodes.withLock { $0[node.uuid] = nil } }
        return try await database.transaction { tx in
            var result = NodeSave(savedNode: false, createdProvider: false, changedInventories: false, changedTraits: false)
            var provider = try await tx.provider(uuid: node.uuid, lock: true)
            if provider == nil {
                if let other = try await tx.row("SELECT uuid FROM resource_providers WHERE name = \(bind: node.hostname)") {
                    throw ComputeError.conflictingRequest(
                        "provider name \(node.hostname) is taken by \(try other.decode(column: "uuid", as: String.self))")
                }
                let id = try await tx.insertReturningID(
                    """
                    INSERT INTO resource_providers (uuid, name, generation, root_provider_id, parent_provider_id,
                      created_at, updated_at) VALUES (\(bind: node.uuid), \(bind: node.hostname), 0, NULL, NULL, \(bind: now), NULL)
                    """)
                try await tx.run("UPDATE resource_providers SET root_provider_id = \(bind: id) WHERE id = \(bind: id)")
                try await tx.recordChange(.shape)
                provider = try await tx.provider(uuid: node.uuid)
                result.createdProvider = true
            }
            guard var provider else { throw StoreError.corrupt("provider vanished after insert") }
            try await tx.createCustomNames(classes: node.inventories.keys, traits: node.traits, now: now)
            let (current, _) = try await SQLPlacementStore.loadInventories(providerID: provider.id, tx: tx)
            // Classes leaving the root for child providers (NUMA cells) while allocated stay until the reshape
            // below has moved their allocations.
            var interim = node.inventories
            let leaving = Set(current.keys).subtracting(node.inventories.keys)
            if !leaving.isEmpty {
                let used = try await tx.providerUsage(providerID: provider.id).filter { leaving.contains($0.key) && $0.value > 0 }
                for rc in used.keys { interim[rc] = current[rc] }
            }
            if current != interim {
                try await SQLPlacementStore.writeInventories(
                    provider: provider, current: current, next: interim, inUse: .replace,
                    unknownClassPrefix: "", now: now, tx: tx)
                provider.generation = try await tx.bumpGeneration(
                    providerID: provider.id, expected: provider.generation, now: now)
                result.changedInventories = true
            }
            let traits = Set(try await SQLPlacementStore.traitNames(providerID: provider.id, tx: tx))
            if traits != node.traits {
                let found = try await tx.traitIDs(node.traits)
                if !found.missing.isEmpty {
                    throw ComputeError.invalidRequest("no such trait(s): \(found.missing.joined(separator: ", "))")
                }
                try await SQLPlacementStore.replaceTraits(providerID: provider.id, traitIDs: Array(found.ids.values), tx: tx)
                provider.generation = try await tx.bumpGeneration(
                    providerID: provider.id, expected: provider.generation, now: now)
                result.changedTraits = true
            }
            // PCI devices as child providers (or no longer), with the allocations of their holders moved.
            let pci = try await self.syncChildProviders(node, root: provider.id, now: now, tx: tx, learned: LearnedIDs())
            result.changedPCIProviders = pci.changed
            result.reshapedConsumers = pci.reshaped
            if !pci.reshaped.isEmpty { _ = try await Self.bumpLedger([node.uuid], tx: tx) }
            if interim != node.inventories, let row = try await tx.provider(uuid: node.uuid, lock: true) {
                try await SQLPlacementStore.writeInventories(
                    provider: row, current: interim, next: node.inventories, inUse: .replace, unknownClassPrefix: "", now: now, tx: tx)
                _ = try await tx.bumpGeneration(providerID: row.id, expected: row.generation, now: now)
            }
            let stored = try await tx.row("SELECT * FROM compute_nodes WHERE uuid = \(bind: node.uuid)").map(Self.node(from:))
            if let stored {
                if stored.differs(from: node) {
                    try await tx.run(
                        """
                        UPDATE compute_nodes SET hostname = \(bind: node.hostname), host = \(bind: node.host),
                          driver = \(bind: node.driver), inventories = \(bind: LedgerText.encode(node.inventories)),
                          traits = \(bind: node.traits.sorted().joined(separator: ";")),
                          stats = \(bind: LedgerText.encode(node.stats)), usage = \(bind: LedgerText.encode(node.usage)),
                          disabled = \(bind: node.disabled ? 1 : 0), topology = \(bind: try Self.json(node.topology)),
                          host_config = \(bind: try Self.json(node.hostConfig)), updated_at = \(bind: now)
                        WHERE uuid = \(bind: node.uuid)
                        """)
                    result.savedNode = true
                }
            } else {
                try await tx.run(
                    """
                    INSERT INTO compute_nodes (uuid, hostname, host, driver, inventories, traits, stats, usage, disabled,
                      ledger_generation, created_at, updated_at, topology, host_config)
                    VALUES (\(bind: node.uuid), \(bind: node.hostname), \(bind: node.host), \(bind: node.driver),
                      \(bind: LedgerText.encode(node.inventories)), \(bind: node.traits.sorted().joined(separator: ";")),
                      \(bind: LedgerText.encode(node.stats)), \(bind: LedgerText.encode(node.usage)),
                      \(bind: node.disabled ? 1 : 0), 0, \(bind: now), \(bind: now), \(bind: try Self.json(node.topology)),
                      \(bind: try Self.json(node.hostConfig)))
                    """)
                result.savedNode = true
            }
            return result
        }
    }

    /// Removes a node the driver no longer reports, with its provider, when nothing is allocated on it.
    /// - Throws: ``ComputeError/illegalTransition(_:)`` naming the consumers that still hold resources there.
    public func removeNode(uuid: String) async throws {
        try await database.transaction { tx in
            if let provider = try await tx.provider(uuid: uuid, lock: true) {
                let holders = try await tx.rows(
                    "SELECT DISTINCT consumer_id FROM allocations WHERE resource_provider_id = \(bind: provider.id) ORDER BY consumer_id"
                ).map { try $0.decode(column: "consumer_id", as: String.self) }
                if !holders.isEmpty {
                    throw ComputeError.illegalTransition(
                        "node \(uuid) still holds allocations of \(holders.prefix(5).joined(separator: ", "))"
                            + (holders.count > 5 ? " and \(holders.count - 5) more" : ""))
                }
                // Its own child providers (PCI devices, NUMA cells) go with it when nothing is allocated there;
                // another service's children keep it.
                for child in try await tx.rows("SELECT id, uuid, name FROM resource_providers WHERE parent_provider_id = \(bind: provider.id)") {
                    let id = try child.decode(column: "id", as: Int.self)
                    guard HostConfig.isOwnChild(
                        uuid: try child.decode(column: "uuid", as: String.self), name: try child.decode(column: "name", as: String.self),
                        node: uuid)
                    else { throw ComputeError.illegalTransition("node \(uuid) has child providers of another service") }
                    let grandchild = try await tx.row("SELECT id FROM resource_providers WHERE parent_provider_id = \(bind: id)")
                    let used = try await tx.row("SELECT id FROM allocations WHERE resource_provider_id = \(bind: id) LIMIT 1")
                    guard grandchild == nil, used == nil else {
                        throw ComputeError.illegalTransition("node \(uuid) has child providers in use")
                    }
                    try await tx.deleteProviderRows(id: id)
                }
                try await tx.deleteProviderRows(id: provider.id)
                try await tx.recordChange(.shape)
            }
            try await tx.run("DELETE FROM compute_nodes WHERE uuid = \(bind: uuid)")
        }
    }

    // MARK: Operations

    /// Applies one operation: reads the records it concerns, checks the transition, the destination's traits
    /// and free capacity, then writes the ledger rows and every affected consumer's allocations, all in one
    /// transaction.
    ///
    /// The ledger remembers each provider it has read (inventories, traits, usage) with its generation; while the
    /// generation stays the same, the next claim on it reads none of that again.
    /// - Returns: the change (a no-op when the result already held: operations are idempotent), the new ledger
    ///   generations and the views of the providers it read or kept up to date.
    /// - Throws: ``ComputeError`` for refusals; nothing is written then.
    public func commit(_ operation: ComputeOperation) async throws -> CommitResult {
        let now = now()
        let learned = LearnedIDs()
        // What `reportsCells` knew of the nodes this claim allocates on, carried to their new generations.
        let carriedCells = Mutex<[String: CellKnowledge]>([:])
        let result = try await database.transaction { tx in
            learned.reset()
            carriedCells.withLock { $0 = [:] }
            let records = try await Self.records(for: operation, tx: tx)
            var change = try operation.apply(to: records, now: now)
            if change.isNoOp { return CommitResult(change: change, generations: [:]) }
            // NUMA cells, pinned CPUs, pages and PCI devices for a build or a move's destination.
            change = try await self.placeTopology(change, operation: operation, tx: tx)
            var target: (node: String, flavor: Flavor)?
            switch operation {
            case .build(let instance): target = (instance.node, instance.flavor)
            case .move: target = change.after.migration.map { ($0.destNode, $0.newFlavor) }
            default: break
            }
            // Every provider whose allocations change, locked in id order.
            let consumers = change.allocations
            var nodes = Set<String>()
            for records in [change.before, change.after] {
                for (consumer, amounts) in records.allocations where consumers[consumer] != nil { nodes.formUnion(amounts.keys) }
            }
            if let target { nodes.insert(target.node) }
            let providers = try await tx.lockedProviderGenerations(nodes)
            // Remembered views at the generations locked now: committed ones, or those of the claims before this
            // one in the same transaction.
            let earlier = tx.shared?.views.withLock { $0 } ?? [:]
            var views = self.views.withLock { cached in
                var matching: [String: ProviderView] = [:]
                for (node, provider) in providers {
                    for view in [cached[node], earlier[node]].compactMap(\.self)
                    where view.providerID == provider.id && view.generation == provider.generation {
                        matching[node] = view
                    }
                }
                return matching
            }
            var fresh = Set<String>()
            func view(_ node: String, requireNode: Bool = false) async throws -> ProviderView {
                if let view = views[node] {
                    guard view.isNode || !requireNode else { throw ComputeError.nodeNotFound(node) }
                    return view
                }
                guard let provider = providers[node],
                    let loaded = try await Self.loadView(
                        providerID: provider.id, uuid: node, generation: provider.generation, requireNode: requireNode, tx: tx)
                else { throw ComputeError.nodeNotFound(node) }
                views[node] = loaded
                fresh.insert(node)
                return loaded
            }
            // The destination must be a known, enabled node offering the traits asked for.
            if let target {
                let node = try await view(target.node, requireNode: true)
                if node.disabled { throw ComputeError.nodeDisabled(target.node) }
                if let missing = target.flavor.requiredTraits.subtracting(node.traits).sorted().first {
                    throw ComputeError.missingTrait(node: target.node, trait: missing)
                }
                if let forbidden = target.flavor.forbiddenTraits.intersection(node.traits).sorted().first {
                    throw ComputeError.forbiddenTrait(node: target.node, trait: forbidden)
                }
            }
            // Where usage grows, it must fit (a refusal on a remembered view is checked again on a fresh one).
            for (node, more) in change.increases.sorted(by: { $0.key < $1.key }) {
                let amounts = consumers.values.compactMap { $0[node] }
                var current = try await view(node)
                var problem = Fit.problem(node: node, increases: more, amounts: amounts, inventories: current.inventories, usage: current.usage)
                if problem != nil, !fresh.contains(node) {
                    views[node] = nil
                    current = try await view(node)
                    problem = Fit.problem(node: node, increases: more, amounts: amounts, inventories: current.inventories, usage: current.usage)
                }
                if let problem { throw problem }
            }
            let generations = try await self.writeAllocations(change, providers: providers, now: now, tx: tx, learned: learned)
            // Allocations alone do not turn a node's cells on or off: what was known at the generation this claim
            // locked still holds at the one it wrote (remembered once committed).
            let known = self.cellNodes.withLock { $0 }
            for (node, generation) in generations {
                if let provider = providers[node], var cells = known[node], cells.providerID == provider.id,
                    cells.generation == provider.generation
                {
                    cells.generation = generation
                    carriedCells.withLock { $0[node] = cells }
                }
            }
            for (node, generation) in generations {
                guard var current = views[node] else { continue }
                current.generation = generation
                for (rc, delta) in Self.delta(change, node: node) {
                    let used = (current.usage[rc] ?? 0) + delta
                    current.usage[rc] = used == 0 ? nil : used
                }
                views[node] = current
            }
            try await Self.writeRecords(change, now: now, tx: tx)
            try await Self.writeHostClaims(change, tx: tx)
            let result = CommitResult(
                change: change, generations: try await Self.bumpLedger(change.touchedNodes, tx: tx),
                providers: views.filter { generations[$0.key] != nil || fresh.contains($0.key) })
            // The claims after this one in the same transaction start from these views.
            tx.shared?.views.withLock { shared in
                for (node, view) in result.providers { shared[node] = view }
            }
            return result
        }
        cache.withLock { $0.merge(learned.ids) }
        cellNodes.withLock { known in
            for (node, cells) in carriedCells.withLock({ $0 }) {
                if let current = known[node], current.providerID == cells.providerID, current.generation >= cells.generation {
                    continue
                }
                known[node] = cells
            }
        }
        // Only committed views are remembered; providers that moved on without one are forgotten.
        views.withLock { cached in
            for node in result.generations.keys where result.providers[node] == nil { cached[node] = nil }
            for (node, view) in result.providers {
                if let current = cached[node], current.providerID == view.providerID, current.generation > view.generation {
                    continue
                }
                cached[node] = view
            }
        }
        return result
    }

    /// How much each class's usage on `node` changes.
    static func delta(_ change: ComputeChange, node: String) -> [String: Int] {
        var delta: [String: Int] = [:]
        for amounts in change.after.allocations.values { for (rc, n) in amounts[node] ?? [:] { delta[rc, default: 0] += n } }
        for amounts in change.before.allocations.values { for (rc, n) in amounts[node] ?? [:] { delta[rc, default: 0] -= n } }
        return delta.filter { $0.value != 0 }
    }

    /// A provider as a claim sees it, read from the database; `nil` when it is no compute node and `requireNode`
    /// (a node's PCI child providers are read with `requireNode` false: never disabled).
    static func loadView(
        providerID: Int, uuid: String, generation: Int, requireNode: Bool = true, tx: Transaction
    ) async throws -> ProviderView? {
        let row = try await tx.row("SELECT disabled FROM compute_nodes WHERE uuid = \(bind: uuid)")
        if row == nil, requireNode { return nil }
        let (inventories, _) = try await SQLPlacementStore.loadInventories(providerID: providerID, tx: tx)
        let traits = try await SQLPlacementStore.traitNames(providerID: providerID, tx: tx)
        let usage = try await tx.providerUsage(providerID: providerID).filter { $0.value != 0 }
        return ProviderView(
            providerID: providerID, generation: generation, usage: usage, inventories: inventories, traits: Set(traits),
            disabled: try row.map { try $0.decode(column: "disabled", as: Int.self) != 0 } ?? false, isNode: row != nil)
    }

    /// What reconciling a consumer found (``AllotCore/Reconciled``).
    public typealias Reconciled = AllotCore.Reconciled

    /// Compares what Placement holds for a consumer with what the ledger says it should hold, in one transaction,
    /// and makes Placement agree (capacity is not checked: the ledger already holds these resources).
    /// - Returns: the outcome and the nodes whose ledger generation moved.
    public func reconcile(consumer: String) async throws -> (outcome: Reconciled, generations: [String: Int]) {
        let now = now()
        return try await database.transaction { tx in
            guard let (expected, instance) = try await Self.expectedAllocations(consumer: consumer, tx: tx) else {
                return (.unknown, [:])
            }
            var current: NodeAmounts = [:]
            for row in try await tx.rows(
                """
                SELECT rp.uuid, rc.name, a.used FROM allocations a JOIN resource_providers rp ON rp.id = a.resource_provider_id
                JOIN resource_classes rc ON rc.id = a.resource_class_id WHERE a.consumer_id = \(bind: consumer)
                """)
            {
                current[try row.decode(column: "uuid", as: String.self), default: [:]][
                    try row.decode(column: "name", as: String.self)] = try row.decode(column: "used", as: Int.self)
            }
            if current == expected { return (.consistent, [:]) }
            let touched = Set(current.keys).union(expected.keys)
            let providers = try await tx.lockedProviderGenerations(touched)
            _ = try await self.writeConsumers(
                [consumer: expected], owner: instance, touched: touched, providers: providers, now: now, tx: tx,
                learned: LearnedIDs())
            return (expected.isEmpty ? .cleared : .repaired, try await Self.bumpLedger(touched, tx: tx))
        }
    }

    /// What the ledger says a consumer (an instance or a migration) should hold, with the instance that owns it.
    /// - Returns: `nil` when the ledger knows no such consumer.
    public func expectedAllocations(consumer: String) async throws -> (amounts: NodeAmounts, owner: Instance?)? {
        try await database.transaction { tx in try await Self.expectedAllocations(consumer: consumer, tx: tx) }
    }

    static func expectedAllocations(consumer: String, tx: Transaction) async throws -> (amounts: NodeAmounts, owner: Instance?)? {
        var instance = try await tx.row("SELECT * FROM instances WHERE uuid = \(bind: consumer)\(unsafeRaw: tx.forUpdate)")
            .map(Self.instance(from:))
        var named: Migration?
        if instance == nil {
            named = try await tx.row("SELECT * FROM migrations WHERE uuid = \(bind: consumer)").map(Self.migration(from:))
            if let named {
                instance = try await tx.row(
                    "SELECT * FROM instances WHERE uuid = \(bind: named.instanceUUID)\(unsafeRaw: tx.forUpdate)"
                ).map(Self.instance(from:))
            }
        }
        if instance == nil, named == nil { return nil }
        var expected: NodeAmounts = [:]
        if let instance {
            let records = LedgerRecords(
                instance: instance, migration: try await Self.activeMigration(instance: instance.uuid, tx: tx))
            expected = (records.allocations[consumer] ?? [:]).filter { !$0.value.isEmpty }
        }
        return (expected, instance)
    }

    /// Takes back a committed change (an external Placement refused it): the records and the consumers'
    /// allocations return to what they were before it, in one transaction.
    /// - Returns: the nodes whose ledger generation moved, with their new generations.
    /// - Throws: ``ComputeError/concurrentUpdate(_:)`` when the records no longer are what the change left.
    public func undo(_ change: ComputeChange) async throws -> [String: Int] {
        guard !change.isNoOp else { return [:] }
        let now = now()
        let inverse = ComputeChange(before: change.after, after: change.before)
        return try await database.transaction { tx in
            var current = LedgerRecords(instance: nil, migration: nil)
            if let uuid = change.after.instance?.uuid ?? change.before.instance?.uuid {
                current.instance = try await tx.row("SELECT * FROM instances WHERE uuid = \(bind: uuid)\(unsafeRaw: tx.forUpdate)")
                    .map(Self.instance(from:))
            }
            if let uuid = (change.after.migration ?? change.before.migration)?.uuid {
                current.migration = try await tx.row("SELECT * FROM migrations WHERE uuid = \(bind: uuid)\(unsafeRaw: tx.forUpdate)")
                    .map(Self.migration(from:))
            }
            guard current == change.after else {
                throw ComputeError.concurrentUpdate("the records changed after the claim; it cannot be undone")
            }
            let providers = try await tx.lockedProviderGenerations(change.touchedNodes)
            _ = try await self.writeAllocations(inverse, providers: providers, now: now, tx: tx, learned: LearnedIDs())
            try await Self.writeRecords(inverse, now: now, tx: tx)
            try await Self.writeHostClaims(inverse, tx: tx)
            if let added = change.after.instance, change.before.instance == nil {
                try await tx.run("DELETE FROM instances WHERE uuid = \(bind: added.uuid)")
            }
            if let added = change.after.migration, change.before.migration?.uuid != added.uuid {
                try await tx.run("DELETE FROM migrations WHERE uuid = \(bind: added.uuid)")
            }
            return try await Self.bumpLedger(change.touchedNodes, tx: tx)
        }
    }

    /// Moves the ledger generation of these nodes on and returns the new values.
    static func bumpLedger(_ nodes: Set<String>, tx: Transaction) async throws -> [String: Int] {
        guard !nodes.isEmpty else { return [:] }
        var result: [String: Int] = [:]
        for row in try await tx.rows(
            """
            UPDATE compute_nodes SET ledger_generation = ledger_generation + 1 WHERE uuid IN (\(binds: nodes.sorted()))
            RETURNING uuid, ledger_generation
            """)
        {
            result[try row.decode(column: "uuid", as: String.self)] = try row.decode(column: "ledger_generation", as: Int.self)
        }
        return result
    }

    /// The views of many nodes at once (start-up of an agent with many nodes), with their generations.
    public func nodeLedgers(uuids: [String]) async throws -> [String: (ledger: NodeLedger, generation: Int)] {
        var result: [String: (ledger: NodeLedger, generation: Int)] = [:]
        // One short transaction per chunk of nodes (each chunk is read consistently; claims interleave).
        for chunk in Self.chunks(uuids) {
            let views = try await database.readTransaction { tx in
                var generations: [String: Int] = [:]
                for row in try await tx.rows("SELECT uuid, ledger_generation FROM compute_nodes WHERE uuid IN (\(binds: chunk))") {
                    generations[try row.decode(column: "uuid", as: String.self)] =
                        try row.decode(column: "ledger_generation", as: Int.self)
                }
                var instances = try await tx.rows(
                    "SELECT * FROM instances WHERE node IN (\(binds: chunk)) AND vm_state <> 'deleted'").map(Self.instance(from:))
                let migrations = try await tx.rows(
                    """
                    SELECT * FROM migrations WHERE in_progress = 1
                    AND (source_node IN (\(binds: chunk)) OR dest_node IN (\(binds: chunk)))
                    """
                ).map(Self.migration(from:))
                let moving = Set(migrations.map(\.instanceUUID)).subtracting(instances.map(\.uuid)).sorted()
                for part in Self.chunks(moving) {
                    instances += try await tx.rows("SELECT * FROM instances WHERE uuid IN (\(binds: part))").map(Self.instance(from:))
                }
                var instancesByNode: [String: [String: Instance]] = [:]
                var migrationsByNode: [String: [Migration]] = [:]
                let byUUID = Dictionary(instances.map { ($0.uuid, $0) }, uniquingKeysWith: { a, _ in a })
                for migration in migrations {
                    for node in Set([migration.sourceNode, migration.destNode]) {
                        migrationsByNode[node, default: []].append(migration)
                        if let instance = byUUID[migration.instanceUUID] { instancesByNode[node, default: [:]][instance.uuid] = instance }
                    }
                }
                for instance in instances { instancesByNode[instance.node, default: [:]][instance.uuid] = instance }
                return chunk.map { uuid in
                    (uuid, NodeLedger(node: uuid, instances: (instancesByNode[uuid] ?? [:]).values,
                                      migrations: migrationsByNode[uuid] ?? []), generations[uuid] ?? 0)
                }
            }
            for (uuid, ledger, generation) in views { result[uuid] = (ledger, generation) }
        }
        return result
    }

    /// What Placement says each consumer holds on these nodes' providers: node → consumer → class → amount.
    public func placementConsumers(nodes: [String]) async throws -> [String: [String: [String: Int]]] {
        var result: [String: [String: [String: Int]]] = [:]
        for chunk in Self.chunks(nodes) {
            let rows = try await database.readTransaction { tx in
                try await tx.rows(
                    """
                    SELECT rp.uuid, a.consumer_id, rc.name, a.used FROM allocations a
                    JOIN resource_providers rp ON rp.id = a.resource_provider_id
                    JOIN resource_classes rc ON rc.id = a.resource_class_id WHERE rp.uuid IN (\(binds: chunk))
                    """
                ).map {
                    (try $0.decode(column: "uuid", as: String.self), try $0.decode(column: "consumer_id", as: String.self),
                     try $0.decode(column: "name", as: String.self), try $0.decode(column: "used", as: Int.self))
                }
            }
            for (node, consumer, rc, used) in rows { result[node, default: [:]][consumer, default: [:]][rc] = used }
        }
        return result
    }

    /// The providers (by uuid) whose Placement books changed after change sequence `since`, and the current
    /// sequence; `nil` nodes when the history no longer reaches back that far or something changed shape
    /// (then everything must be checked).
    public func changedProviders(since: Int?) async throws -> (sequence: Int, providers: Set<String>?) {
        try await database.readTransaction { tx in
            let sequence = try await tx.changeSequence()
            guard let since else { return (sequence, nil) }
            if since == sequence { return (sequence, []) }
            let oldest = try await tx.row("SELECT MIN(seq) AS m FROM placement_changes")?.decode(column: "m", as: Int?.self)
            guard let oldest, oldest <= since + 1 else { return (sequence, nil) }
            let rows = try await tx.rows(
                "SELECT DISTINCT provider_id FROM placement_changes WHERE seq > \(bind: since) AND seq <= \(bind: sequence)")
            var ids: [Int] = []
            for row in rows {
                guard let id = try row.decode(column: "provider_id", as: Int?.self) else { return (sequence, nil) }
                if id != 0 { ids.append(id) }
            }
            var providers = Set<String>()
            for chunk in Self.chunks(ids) {
                for row in try await tx.rows("SELECT uuid FROM resource_providers WHERE id IN (\(binds: chunk))") {
                    providers.insert(try row.decode(column: "uuid", as: String.self))
                }
            }
            return (sequence, providers)
        }
    }

    /// The traits a node's provider has in Placement, or `nil` when it has no provider.
    public func placementTraits(node: String) async throws -> Set<String>? {
        try await database.readTransaction { tx in
            guard let provider = try await tx.provider(uuid: node) else { return nil }
            return Set(try await SQLPlacementStore.traitNames(providerID: provider.id, tx: tx))
        }
    }

    static func chunks<T>(_ items: [T], size: Int = 500) -> [[T]] {
        stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
    }

    /// The records an operation reads, locked on PostgreSQL.
    static func records(for operation: ComputeOperation, tx: Transaction) async throws -> LedgerRecords {
        var instanceUUID = operation.instanceUUID
        var migration: Migration?
        if let uuid = operation.migrationUUID,
            let row = try await tx.row("SELECT * FROM migrations WHERE uuid = \(bind: uuid)\(unsafeRaw: tx.forUpdate)")
        {
            let found = try Self.migration(from: row)
            if let instanceUUID, instanceUUID != found.instanceUUID {
                throw ComputeError.conflictingRequest("migration \(uuid) belongs to instance \(found.instanceUUID)")
            }
            instanceUUID = found.instanceUUID
            migration = found
        }
        guard let instanceUUID else {
            throw ComputeError.migrationNotFound(operation.migrationUUID ?? "")
        }
        let instance = try await tx.row("SELECT * FROM instances WHERE uuid = \(bind: instanceUUID)\(unsafeRaw: tx.forUpdate)")
            .map(Self.instance(from:))
        // The instance's move in progress, unless the operation named its migration (an unknown instance has none).
        if migration == nil, instance != nil {
            migration = try await Self.activeMigration(instance: instanceUUID, tx: tx)
        }
        return LedgerRecords(instance: instance, migration: migration)
    }

    static func activeMigration(instance: String, tx: Transaction) async throws -> Migration? {
        try await tx.row(
            "SELECT * FROM migrations WHERE instance_uuid = \(bind: instance) AND in_progress = 1\(unsafeRaw: tx.forUpdate)"
        ).map(Self.migration(from:))
    }

    /// Writes the allocations of every consumer the change affects (capacity was checked by the caller) and
    /// bumps the generation of every provider whose allocations changed.
    /// - Returns: the new generations of those providers.
    func writeAllocations(
        _ change: ComputeChange, providers: [String: (id: Int, generation: Int)], now: Double, tx: Transaction,
        learned: LearnedIDs
    ) async throws -> [String: Int] {
        let consumers = change.allocations
        var touched = Set<String>()
        for consumer in consumers.keys {
            for records in [change.before, change.after] {
                if let held = records.allocations[consumer] { touched.formUnion(held.keys) }
            }
        }
        return try await writeConsumers(
            consumers, owner: change.after.instance ?? change.before.instance, touched: touched, providers: providers,
            now: now, tx: tx, learned: learned)
    }

    /// Replaces what each consumer holds (empty: nothing; the consumer row goes too) and bumps the generation of
    /// every provider in `touched`.
    /// - Returns: the new generations of those providers.
    func writeConsumers(
        _ consumers: [String: NodeAmounts], owner instance: Instance?, touched: Set<String>,
        providers: [String: (id: Int, generation: Int)], now: Double, tx: Transaction, learned: LearnedIDs
    ) async throws -> [String: Int] {
        guard !consumers.isEmpty else { return [:] }
        let classNames = Set(consumers.values.flatMap { $0.values.flatMap(\.keys) })
        var classIDs: [String: Int] = [:]
        var unknown: [String] = []
        let cached = cache.withLock { $0 }
        for name in classNames {
            if let id = cached.classes[name] { classIDs[name] = id } else { unknown.append(name) }
        }
        if !unknown.isEmpty {
            let found = try await tx.resourceClassIDs(unknown)
            if let missing = found.missing.sorted().first {
                throw ComputeError.invalidFlavor("no such resource class \(missing)")
            }
            for (name, id) in found.ids {
                classIDs[name] = id
                // Standard classes never change id; custom ones may be deleted and created again.
                if ResourceClass.standardSet.contains(name) { learned.add(.resourceClass, name, id) }
            }
        }
        for (consumer, amounts) in consumers.sorted(by: { $0.key < $1.key }) {
            try await tx.run("DELETE FROM allocations WHERE consumer_id = \(bind: consumer)")
            let existing = try await tx.row("SELECT id FROM consumers WHERE uuid = \(bind: consumer)")?
                .decode(column: "id", as: Int.self)
            if amounts.isEmpty {
                if let existing { try await tx.run("DELETE FROM consumers WHERE id = \(bind: existing)") }
                continue
            }
            var values: [SQLQueryString] = []
            for (node, classAmounts) in amounts.sorted(by: { $0.key < $1.key }) {
                guard let provider = providers[node] else { throw ComputeError.nodeNotFound(node) }
                for (rc, used) in classAmounts.sorted(by: { $0.key < $1.key }) {
                    values.append(
                        "(\(bind: provider.id), \(bind: consumer), \(bind: classIDs[rc]!), \(bind: used), \(bind: now), NULL)")
                }
            }
            try await tx.run(
                """
                INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used, created_at, updated_at)
                VALUES \(values.joined(separator: ", "))
                """)
            if let existing {
                try await tx.run(
                    "UPDATE consumers SET generation = generation + 1, updated_at = \(bind: now) WHERE id = \(bind: existing)")
            } else {
                let projectID = try await id(.project, instance?.projectID ?? IncompleteConsumer.projectID, cached, learned, tx, now)
                let userID = try await id(.user, instance?.userID ?? IncompleteConsumer.userID, cached, learned, tx, now)
                let type = consumer == instance?.uuid ? Self.instanceConsumerType : Self.migrationConsumerType
                let typeID = try await id(.consumerType, type, cached, learned, tx, now)
                try await tx.run(
                    """
                    INSERT INTO consumers (uuid, project_id, user_id, consumer_type_id, generation, created_at, updated_at)
                    VALUES (\(bind: consumer), \(bind: projectID), \(bind: userID), \(bind: typeID), 1, \(bind: now), NULL)
                    """)
            }
        }
        var generations: [String: Int] = [:]
        for node in touched.sorted(by: { (providers[$0]?.id ?? 0) < (providers[$1]?.id ?? 0) }) {
            guard let provider = providers[node] else { continue }
            generations[node] = try await tx.bumpGeneration(providerID: provider.id, expected: provider.generation, now: now)
        }
        return generations
    }

    /// A project, user or consumer type id: from the process's cache, or from the database (created if missing).
    private func id(
        _ kind: LearnedIDs.Kind, _ key: String, _ cached: IDCache, _ learned: LearnedIDs, _ tx: Transaction, _ now: Double
    ) async throws -> Int {
        if let id = cached[kind, key] { return id }
        let table = kind == .project ? "projects" : "users"
        if let row = kind == .consumerType
            ? try await tx.row("SELECT id FROM consumer_types WHERE name = \(bind: key)")
            : try await tx.row("SELECT id FROM \(ident: table) WHERE external_id = \(bind: key)")
        {
            let id = try row.decode(column: "id", as: Int.self)
            learned.add(kind, key, id)  // committed before this transaction: safe to remember at once
            return id
        }
        // Created in this transaction: remembered only once it commits.
        let id = kind == .consumerType ? try await tx.consumerTypeID(key, now: now) : try await tx.externalID(table: table, key)
        learned.add(kind, key, id)
        return id
    }

    /// Inserts or updates the instance and migration rows that changed.
    /// A record's topology claim as stored (NULL when it holds none).
    static func claimJSON(_ numa: NUMAPlacement?, _ pci: [String], _ childAllocations: NodeAmounts) throws -> String? {
        let claim = HostClaim(numa: numa, pciDevices: pci, childAllocations: childAllocations)
        return claim.isEmpty ? nil : try json(claim)
    }

    static func writeRecords(_ change: ComputeChange, now: Double, tx: Transaction) async throws {
        if let instance = change.after.instance, instance != change.before.instance {
            if change.before.instance == nil {
                do {
                    try await tx.run(
                        """
                        INSERT INTO instances (uuid, project_id, user_id, node, flavor, boot_from_volume, vm_state,
                          task_state, os_type, created_at, updated_at, host_claim)
                        VALUES (\(bind: instance.uuid), \(bind: instance.projectID), \(bind: instance.userID),
                          \(bind: instance.node), \(bind: instance.flavor.encoded), \(bind: instance.bootFromVolume ? 1 : 0),
                          \(bind: instance.vmState.rawValue), \(bind: instance.taskState), \(bind: instance.osType),
                          \(bind: now), \(bind: instance.updatedAt), \(bind: try claimJSON(instance.numa, instance.pciDevices, instance.childAllocations)))
                        """)
                } catch where isUniqueViolation(error) {
                    throw ComputeError.concurrentUpdate("instance \(instance.uuid) was claimed meanwhile")
                }
            } else {
                try await tx.run(
                    """
                    UPDATE instances SET node = \(bind: instance.node), flavor = \(bind: instance.flavor.encoded),
                      vm_state = \(bind: instance.vmState.rawValue), task_state = \(bind: instance.taskState),
                      os_type = \(bind: instance.osType), updated_at = \(bind: instance.updatedAt),
                      host_claim = \(bind: try claimJSON(instance.numa, instance.pciDevices, instance.childAllocations))
                    WHERE uuid = \(bind: instance.uuid)
                    """)
            }
        }
        if let migration = change.after.migration, migration != change.before.migration {
            if change.before.migration?.uuid != migration.uuid {
                do {
                    try await tx.run(
                        """
                        INSERT INTO migrations (uuid, instance_uuid, kind, status, in_progress, source_node, dest_node,
                          old_flavor, new_flavor, created_at, updated_at, old_claim, new_claim)
                        VALUES (\(bind: migration.uuid), \(bind: migration.instanceUUID), \(bind: migration.kind.rawValue),
                          \(bind: migration.status.rawValue), \(bind: migration.status.isInProgress ? 1 : 0),
                          \(bind: migration.sourceNode), \(bind: migration.destNode), \(bind: migration.oldFlavor.encoded),
                          \(bind: migration.newFlavor.encoded), \(bind: now), \(bind: migration.updatedAt),
                          \(bind: try claimJSON(migration.oldNUMA, migration.oldPCIDevices, migration.oldChildAllocations)),
                          \(bind: try claimJSON(migration.newNUMA, migration.newPCIDevices, migration.newChildAllocations)))
                        """)
                } catch where isUniqueViolation(error) {
                    throw ComputeError.conflictingRequest("migration \(migration.uuid) already exists")
                }
            } else {
                try await tx.run(
                    """
                    UPDATE migrations SET status = \(bind: migration.status.rawValue),
                      in_progress = \(bind: migration.status.isInProgress ? 1 : 0), updated_at = \(bind: migration.updatedAt),
                      old_claim = \(bind: try claimJSON(migration.oldNUMA, migration.oldPCIDevices, migration.oldChildAllocations)),
                      new_claim = \(bind: try claimJSON(migration.newNUMA, migration.newPCIDevices, migration.newChildAllocations))
                    WHERE uuid = \(bind: migration.uuid)
                    """)
            }
        }
    }

    // MARK: Rows

    static func node(from row: any SQLRow) throws -> ComputeNode {
        let inventories = try row.decode(column: "inventories", as: String.self)
        let stats = try row.decode(column: "stats", as: String.self)
        let usage = try row.decode(column: "usage", as: String.self)
        guard let inv = LedgerText.decodeInventories(inventories), let counts = LedgerText.decodeCounts(stats),
            let used = LedgerText.decodeCounts(usage)
        else { throw StoreError.corrupt("compute node row with unreadable inventories or stats") }
        return ComputeNode(
            uuid: try row.decode(column: "uuid", as: String.self),
            hostname: try row.decode(column: "hostname", as: String.self),
            host: try row.decode(column: "host", as: String.self),
            driver: try row.decode(column: "driver", as: String.self),
            inventories: inv,
            traits: Set(try row.decode(column: "traits", as: String.self).split(separator: ";").map(String.init)),
            stats: counts, usage: used,
            disabled: try row.decode(column: "disabled", as: Int.self) != 0,
            updatedAt: try row.decode(column: "updated_at", as: Double.self),
            topology: try decodedTopologies.value(row, "topology"),
            hostConfig: try decodedHostConfigs.value(row, "host_config"))
    }

    /// Node topologies and host configurations, decoded, by their stored text. A node's row is read far more often
    /// than it changes (every node list, every audit), and decoding these two columns was most of reading a fleet
    /// (80 % of `GET /compute/v1/nodes` over 5,000 nodes). The text is the key, so a changed value is decoded anew.
    static let decodedTopologies = DecodedColumnCache<HostTopology>()
    static let decodedHostConfigs = DecodedColumnCache<HostConfig>()

    /// A value stored as JSON with sorted keys (so an unchanged one is the same text), or NULL.
    static func json(_ value: (some Encodable)?) throws -> String? {
        guard let value else { return nil }
        return String(decoding: try JSONCoding.encode(value, sortedKeys: true), as: UTF8.self)
    }

    /// A nullable JSON column.
    static func json<T: Decodable>(_ row: any SQLRow, _ column: String, as type: T.Type) throws -> T? {
        guard let text = try row.decode(column: column, as: String?.self) else { return nil }
        return try decodeColumn(text, column, as: T.self)
    }

    /// The text of JSON column `column` decoded; unreadable text is a corrupt database.
    static func decodeColumn<T: Decodable>(_ text: String, _ column: String, as type: T.Type) throws -> T {
        do {
            return try JSONCoding.decode(T.self, from: text.utf8)
        } catch {
            throw StoreError.corrupt("unreadable \(column) column")
        }
    }

    static func instance(from row: any SQLRow) throws -> Instance {
        let flavorText = try row.decode(column: "flavor", as: String.self)
        let state = try row.decode(column: "vm_state", as: String.self)
        guard let flavor = Flavor(encoded: flavorText), let vmState = VMState(rawValue: state) else {
            throw StoreError.corrupt("instance row with unreadable flavor or state")
        }
        let claim = try json(row, "host_claim", as: HostClaim.self)
        return Instance(
            uuid: try row.decode(column: "uuid", as: String.self),
            projectID: try row.decode(column: "project_id", as: String.self),
            userID: try row.decode(column: "user_id", as: String.self),
            flavor: flavor,
            bootFromVolume: try row.decode(column: "boot_from_volume", as: Int.self) != 0,
            node: try row.decode(column: "node", as: String.self),
            vmState: vmState,
            taskState: try row.decode(column: "task_state", as: String?.self),
            osType: try row.decode(column: "os_type", as: String?.self),
            updatedAt: try row.decode(column: "updated_at", as: Double.self),
            numa: claim?.numa, pciDevices: claim?.pciDevices ?? [], childAllocations: claim?.childAllocations ?? [:])
    }

    static func migration(from row: any SQLRow) throws -> Migration {
        guard let kind = MigrationKind(rawValue: try row.decode(column: "kind", as: String.self)),
            let status = MigrationStatus(rawValue: try row.decode(column: "status", as: String.self)),
            let old = Flavor(encoded: try row.decode(column: "old_flavor", as: String.self)),
            let new = Flavor(encoded: try row.decode(column: "new_flavor", as: String.self))
        else { throw StoreError.corrupt("migration row with unreadable kind, status or flavor") }
        let oldClaim = try json(row, "old_claim", as: HostClaim.self)
        let newClaim = try json(row, "new_claim", as: HostClaim.self)
        return Migration(
            uuid: try row.decode(column: "uuid", as: String.self),
            instanceUUID: try row.decode(column: "instance_uuid", as: String.self),
            kind: kind, status: status,
            sourceNode: try row.decode(column: "source_node", as: String.self),
            destNode: try row.decode(column: "dest_node", as: String.self),
            oldFlavor: old, newFlavor: new,
            updatedAt: try row.decode(column: "updated_at", as: Double.self),
            oldNUMA: oldClaim?.numa, newNUMA: newClaim?.numa, oldPCIDevices: oldClaim?.pciDevices ?? [],
            newPCIDevices: newClaim?.pciDevices ?? [], oldChildAllocations: oldClaim?.childAllocations ?? [:],
            newChildAllocations: newClaim?.childAllocations ?? [:])
    }
}

/// Values decoded from a JSON column, by the column's text (``SQLComputeLedger/decodedTopologies``). Bounded: it
/// starts over when it holds more than `capacity` texts (a fleet's nodes are far fewer).
final class DecodedColumnCache<Value: Decodable & Sendable>: Sendable {
    private let entries = Mutex<[String: Value]>([:])
    let capacity: Int

    init(capacity: Int = 50_000) { self.capacity = capacity }

    /// The nullable JSON column `column` of `row`, decoded (``SQLComputeLedger/json(_:_:as:)``).
    func value(_ row: any SQLRow, _ column: String) throws -> Value? {
        guard let text = try row.decode(column: column, as: String?.self) else { return nil }
        if let cached = entries.withLock({ $0[text] }) { return cached }
        let value = try SQLComputeLedger.decodeColumn(text, column, as: Value.self)
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[text] = value
        }
        return value
    }
}
