public import AllotCore
public import AllotStore

/// Where an agent keeps its books: the compute ledger and the Placement allocations that go with it.
///
/// `allot serve` gives its embedded agent the SQL ledger directly (in-process); `allot agent` keeps a local SQL
/// ledger and reports to a separate Placement service (``PlacementLedger``).
public protocol LedgerBackend: Sendable {
    func node(uuid: String) async throws -> (node: ComputeNode, generation: Int)?
    func nodes(host: String?) async throws -> [ComputeNode]
    func nodeLedgers(uuids: [String]) async throws -> [String: (ledger: NodeLedger, generation: Int)]
    func generations(nodes: [String]) async throws -> [String: Int]
    @discardableResult func saveNode(_ node: ComputeNode) async throws -> NodeSave
    func removeNode(uuid: String) async throws
    func commit(_ operation: ComputeOperation) async throws -> CommitResult
    func reconcile(consumer: String) async throws -> (outcome: Reconciled, generations: [String: Int])
    func placementConsumers(nodes: [String]) async throws -> [String: [String: [String: Int]]]
    func changedProviders(since: Int?) async throws -> (sequence: Int, providers: Set<String>?)
    func placementTraits(node: String) async throws -> Set<String>?
    func instance(uuid: String) async throws -> Instance?
    func migration(uuid: String) async throws -> Migration?
    func instances(node: String?, includeDeleted: Bool) async throws -> [Instance]
    func migrations(node: String?, inProgressOnly: Bool) async throws -> [Migration]
    /// What every consumer holds of a node's topology (pinned CPUs, pages, PCI devices).
    func hostClaims(node: String) async throws -> [String: HostClaim]
}

extension SQLComputeLedger: LedgerBackend {}
