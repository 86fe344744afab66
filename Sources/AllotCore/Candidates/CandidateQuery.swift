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

/// The order in which candidates of different trees are generated (matters when a cap or `limit` cuts them off).
public enum GenerationStrategy: String, Sendable, CaseIterable {
    /// Every candidate of the first tree, then the next tree (upstream's default).
    case depthFirst = "depth-first"
    /// One candidate of each tree in turn, so a cap keeps candidates from many trees (upstream's `breadth-first`).
    case breadthFirst = "breadth-first"
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
    public var strategy: GenerationStrategy
    /// When set, trees are visited in a random order drawn from this seed and the answer is shuffled, so that a
    /// `limit` or cap returns a random sample spread over the cloud instead of always the first providers.
    public var randomSeed: UInt64?

    public init(
        groups: [RequestGroup], isolate: Bool = false, rootRequired: Set<String> = [],
        rootForbidden: Set<String> = [], sameSubtree: [[String]] = [], nestedAware: Bool = true, limit: Int? = nil,
        maxCandidates: Int? = nil, strategy: GenerationStrategy = .depthFirst, randomSeed: UInt64? = nil
    ) {
        self.groups = groups
        self.isolate = isolate
        self.rootRequired = rootRequired
        self.rootForbidden = rootForbidden
        self.sameSubtree = sameSubtree
        self.nestedAware = nestedAware
        self.limit = limit
        self.maxCandidates = maxCandidates
        self.strategy = strategy
        self.randomSeed = randomSeed
    }
}

/// One way to satisfy a query: amounts per provider and which providers serve which group. Flat arrays, since
/// a large answer holds many thousands of these.
public struct AllocationCandidate: Sendable, Hashable {
    public struct Item: Sendable, Hashable {
        public var provider: Int
        /// Index into `PlacementSnapshot.classNames`.
        public var resourceClass: Int
        public var amount: Int
    }

    /// Amounts, grouped by provider in the order providers were first used, classes in name order within one
    /// provider; one item per provider and class.
    public var items: [Item]
    /// The providers serving each group, concatenated in `CandidateQuery.groups` order.
    public var mappedProviders: [Int]
    /// The end of each group's run in `mappedProviders`.
    public var mappingEnds: [Int]

    /// The providers serving group `group` (an index into `CandidateQuery.groups`).
    public func providers(ofGroup group: Int) -> ArraySlice<Int> {
        mappedProviders[run(group, ends: mappingEnds)]
    }

    /// Provider index → class name → amount.
    public func allocations(in snapshot: PlacementSnapshot) -> [Int: [String: Int]] {
        var result: [Int: [String: Int]] = [:]
        for item in items { result[item.provider, default: [:]][snapshot.classNames[item.resourceClass]] = item.amount }
        return result
    }

    /// Group suffix → provider indexes.
    public func mappings(for query: CandidateQuery) -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for (index, group) in query.groups.enumerated() { result[group.suffix] = Array(providers(ofGroup: index)) }
        return result
    }
}

/// The answer: candidates and the providers to summarise.
public struct CandidateResult: Sendable {
    public var candidates: [AllocationCandidate]
    public var summaryProviders: [Int]
}

/// The positions of run `index` in a flat array of runs whose ends are `ends` (run 0 starts at 0).
@inline(__always) func run(_ index: Int, ends: [Int]) -> Range<Int> {
    (index == 0 ? 0 : ends[index - 1])..<ends[index]
}
