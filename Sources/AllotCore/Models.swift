/// A resource provider as Placement shows it.
public struct ResourceProvider: Hashable, Sendable {
    public var uuid: String
    public var name: String
    public var generation: Int
    public var parentUUID: String?
    public var rootUUID: String
    /// Seconds since 1970 of creation and of the last change.
    public var createdAt: Double
    public var updatedAt: Double

    public init(
        uuid: String, name: String, generation: Int, parentUUID: String?, rootUUID: String, createdAt: Double,
        updatedAt: Double
    ) {
        self.uuid = uuid
        self.name = name
        self.generation = generation
        self.parentUUID = parentUUID
        self.rootUUID = rootUUID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One consumer's use of one class on one provider.
public struct AllocationItem: Hashable, Sendable {
    public var providerUUID: String
    public var resourceClass: ResourceClass
    public var used: Int

    public init(providerUUID: String, resourceClass: ResourceClass, used: Int) {
        self.providerUUID = providerUUID
        self.resourceClass = resourceClass
        self.used = used
    }
}

/// The identity that owns a consumer's allocations.
public struct ConsumerOwner: Hashable, Sendable {
    public var projectID: String
    public var userID: String
    public var consumerType: String?

    public init(projectID: String, userID: String, consumerType: String? = nil) {
        self.projectID = projectID
        self.userID = userID
        self.consumerType = consumerType
    }
}

/// A consumer as stored: its owner and generation.
public struct Consumer: Hashable, Sendable {
    public var uuid: String
    public var owner: ConsumerOwner
    public var generation: Int
    public var updatedAt: Double

    public init(uuid: String, owner: ConsumerOwner, generation: Int, updatedAt: Double) {
        self.uuid = uuid
        self.owner = owner
        self.generation = generation
        self.updatedAt = updatedAt
    }
}

/// What a client asks to write for one consumer (`PUT /allocations/{uuid}` or one entry of `POST /allocations`).
public struct ConsumerAllocationRequest: Sendable {
    public var consumerUUID: String
    /// Amounts by provider and class; empty means "delete this consumer's allocations".
    public var items: [AllocationItem]
    /// `nil` before microversion 1.8 (the store then keeps or defaults the owner).
    public var owner: ConsumerOwner?
    /// The expected consumer generation: `.unchecked` before 1.28, `.new` for JSON `null`.
    public var expectedGeneration: ExpectedGeneration
    /// Resource provider generations are never checked on allocation writes (Placement semantics).
    public var mappings: [String: [String]]?

    public init(
        consumerUUID: String, items: [AllocationItem], owner: ConsumerOwner?, expectedGeneration: ExpectedGeneration,
        mappings: [String: [String]]? = nil
    ) {
        self.consumerUUID = consumerUUID
        self.items = items
        self.owner = owner
        self.expectedGeneration = expectedGeneration
        self.mappings = mappings
    }
}

/// A consumer generation as a write expects it.
public enum ExpectedGeneration: Hashable, Sendable {
    /// No check (before microversion 1.28).
    case unchecked
    /// The consumer must not exist yet (JSON `null`).
    case new
    /// The consumer must exist with exactly this generation.
    case exactly(Int)
}

/// The default project and user for consumers written before microversion 1.8 ("incomplete consumers").
public enum IncompleteConsumer {
    public static let projectID = "00000000-0000-0000-0000-000000000000"
    public static let userID = "00000000-0000-0000-0000-000000000000"
}
