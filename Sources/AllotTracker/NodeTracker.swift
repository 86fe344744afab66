import AllotCore

/// One compute node's live state, owned by one actor: its record, its part of the ledger and the ledger
/// generation that view reflects. Claims on other nodes never wait for it.
actor NodeTracker {
    let uuid: String
    private(set) var node: ComputeNode
    private(set) var ledger: NodeLedger
    private(set) var generation: Int
    /// Committed changes that arrived before an earlier one (by generation), applied once the gap closes.
    private var pending: [Int: ComputeChange] = [:]
    /// Traits someone else put on the provider (kept when the agent sets its own).
    var externalTraits: Set<String> = []

    init(node: ComputeNode, ledger: NodeLedger, generation: Int) {
        uuid = node.uuid
        self.node = node
        self.ledger = ledger
        self.generation = generation
    }

    /// Takes a committed change that moved this node's ledger to `newGeneration`, in generation order.
    func apply(_ change: ComputeChange, generation newGeneration: Int) {
        guard newGeneration > generation else { return }
        pending[newGeneration] = change
        while let next = pending.removeValue(forKey: generation + 1) {
            ledger.apply(next)
            generation += 1
        }
    }

    /// Replaces the view with one read from the ledger, unless this one is already newer.
    func reload(_ fresh: NodeLedger, generation freshGeneration: Int) {
        guard freshGeneration >= generation else { return }
        ledger = fresh
        generation = freshGeneration
        pending = pending.filter { $0.key > freshGeneration }
        while let next = pending.removeValue(forKey: generation + 1) {
            ledger.apply(next)
            generation += 1
        }
    }

    func setNode(_ node: ComputeNode) { self.node = node }



    func setExternalTraits(_ traits: Set<String>) { externalTraits = traits }

    /// Record, ledger view and generation, consistently.
    func snapshot() -> (node: ComputeNode, ledger: NodeLedger, generation: Int, externalTraits: Set<String>) {
        (node, ledger, generation, externalTraits)
    }
}
