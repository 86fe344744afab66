// The plain values the compute ledger answers with, in-process and over the ledger protocol (moved here from
// AllotStore so that every module, and the wire, share them without depending on the SQL implementation).

/// What a committed operation did, with the new ledger generations of the nodes it touched.
public struct CommitResult: Sendable, Equatable, Codable {
    public var change: ComputeChange
    public var generations: [String: Int]
    /// Providers as they stand after the commit, for those it read or kept track of.
    public var providers: [String: ProviderView]

    public init(change: ComputeChange, generations: [String: Int], providers: [String: ProviderView] = [:]) {
        self.change = change
        self.generations = generations
        self.providers = providers
    }
}

/// What a claim needs to know of a node's provider, valid while its generation stays the same: Placement usage
/// (every consumer's), inventories, traits and whether the node is disabled.
public struct ProviderView: Sendable, Equatable, Codable {
    /// The provider's row id: never reused, so a provider deleted and created again with the same uuid (and a
    /// generation counting from 0 again) never matches an old view.
    public var providerID: Int
    public var generation: Int
    public var usage: [String: Int]
    public var inventories: [String: Inventory]
    public var traits: Set<String>
    public var disabled: Bool
    /// A compute node's provider (not one of its PCI child providers).
    public var isNode: Bool

    public init(
        providerID: Int, generation: Int, usage: [String: Int], inventories: [String: Inventory], traits: Set<String>,
        disabled: Bool, isNode: Bool = true
    ) {
        self.isNode = isNode
        self.providerID = providerID
        self.generation = generation
        self.usage = usage
        self.inventories = inventories
        self.traits = traits
        self.disabled = disabled
    }
}

/// What saving a node did.
public struct NodeSave: Sendable, Equatable, Codable {
    /// The compute node row was written (it was new or had changed).
    public var savedNode: Bool
    /// The provider was created (`true`) or adopted.
    public var createdProvider: Bool
    public var changedInventories: Bool
    public var changedTraits: Bool
    /// PCI child providers were created, changed or deleted.
    public var changedPCIProviders = false
    /// Consumers whose allocations moved onto (or off) PCI child providers (a reshape).
    public var reshapedConsumers: [String] = []

    public init(
        savedNode: Bool, createdProvider: Bool, changedInventories: Bool, changedTraits: Bool,
        changedPCIProviders: Bool = false, reshapedConsumers: [String] = []
    ) {
        self.savedNode = savedNode
        self.createdProvider = createdProvider
        self.changedInventories = changedInventories
        self.changedTraits = changedTraits
        self.changedPCIProviders = changedPCIProviders
        self.reshapedConsumers = reshapedConsumers
    }
}

/// What reconciling a consumer found.
public enum Reconciled: String, Sendable, Equatable, Codable {
    /// Placement already holds what the ledger says (a difference seen earlier was a claim in flight).
    case consistent
    /// Placement's allocations were rewritten from the ledger.
    case repaired
    /// The consumer should hold nothing (deleted instance, finished move): its allocations were deleted.
    case cleared
    /// The ledger does not know this consumer; nothing was changed.
    case unknown
    /// An external Placement refused the ledger's allocations (e.g. another consumer took the room); reported.
    case refused
}
