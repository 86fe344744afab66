/// One request group of `GET /allocation_candidates`: the unsuffixed group (`suffix == ""`) or a granular one.
public struct RequestGroup: Sendable, Equatable {
    public var suffix: String
    /// Classes and amounts, in request order.
    public var resources: [(String, Int)]
    /// Each inner list is an any-of set.
    public var requiredTraits: [[String]]
    public var forbiddenTraits: Set<String>
    /// Each inner list is an any-of set of aggregates.
    public var memberOf: [[String]]
    public var forbiddenAggregates: Set<String>
    /// Index of the provider named by `in_tree`, if any.
    public var inTree: Int?

    public init(
        suffix: String, resources: [(String, Int)] = [], requiredTraits: [[String]] = [],
        forbiddenTraits: Set<String> = [], memberOf: [[String]] = [], forbiddenAggregates: Set<String> = [],
        inTree: Int? = nil
    ) {
        self.suffix = suffix
        self.resources = resources
        self.requiredTraits = requiredTraits
        self.forbiddenTraits = forbiddenTraits
        self.memberOf = memberOf
        self.forbiddenAggregates = forbiddenAggregates
        self.inTree = inTree
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.suffix == rhs.suffix && lhs.resources.map(\.0) == rhs.resources.map(\.0)
            && lhs.resources.map(\.1) == rhs.resources.map(\.1) && lhs.requiredTraits == rhs.requiredTraits
            && lhs.forbiddenTraits == rhs.forbiddenTraits && lhs.memberOf == rhs.memberOf
            && lhs.forbiddenAggregates == rhs.forbiddenAggregates && lhs.inTree == rhs.inTree
    }

    var isGranular: Bool { !suffix.isEmpty }

    /// Whether a provider's traits satisfy every any-of set and none of the forbidden traits.
    func traitsMatch(_ traits: Set<String>) -> Bool {
        requiredTraits.allSatisfy { set in set.contains(where: traits.contains) }
            && forbiddenTraits.isDisjoint(with: traits)
    }
}

/// The whole question: groups plus request-wide parameters.
public struct CandidateQuery: Sendable {
    public var groups: [RequestGroup]
    public var isolate: Bool
    /// Traits the anchor root must have / must not have (`root_required`).
    public var rootRequired: Set<String>
    public var rootForbidden: Set<String>
    /// Each entry is one `same_subtree` constraint: a set of suffixes.
    public var sameSubtree: [[String]]
    /// Microversion 1.29 and later understand nested trees; earlier ones drop multi-provider trees.
    public var nestedAware: Bool
    public var limit: Int?
    /// A server-side cap on generated candidates (`nil`: none).
    public var maxCandidates: Int?

    public init(
        groups: [RequestGroup], isolate: Bool = false, rootRequired: Set<String> = [],
        rootForbidden: Set<String> = [], sameSubtree: [[String]] = [], nestedAware: Bool = true, limit: Int? = nil,
        maxCandidates: Int? = nil
    ) {
        self.groups = groups
        self.isolate = isolate
        self.rootRequired = rootRequired
        self.rootForbidden = rootForbidden
        self.sameSubtree = sameSubtree
        self.nestedAware = nestedAware
        self.limit = limit
        self.maxCandidates = maxCandidates
    }
}

/// One way to satisfy a query: amounts per provider and which providers serve which group.
public struct AllocationCandidate: Sendable, Hashable {
    /// Provider index → class → amount.
    public var allocations: [Int: [String: Int]]
    /// Providers in the order they were first used, for stable output.
    public var providerOrder: [Int]
    /// Group suffix → provider indexes.
    public var mappings: [String: [Int]]
}

/// The answer: candidates and the providers to summarise.
public struct CandidateResult: Sendable {
    public var candidates: [AllocationCandidate]
    public var summaryProviders: [Int]
}
