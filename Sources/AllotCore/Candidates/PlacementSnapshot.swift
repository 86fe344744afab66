/// Everything the allocation-candidate search reads, in memory: providers with their trees, inventories,
/// usage, traits and aggregates. Providers are addressed by a dense index for speed.
public struct PlacementSnapshot: Sendable {
    /// One provider as the search sees it.
    public struct Provider: Sendable, Equatable {
        public var uuid: String
        /// The name, and the last change of the provider's row (`updated_at`, or `created_at` when never
        /// updated): only `GET /resource_providers` reads these, the candidate search does not.
        public var name: String
        public var updatedAt: Double
        public var generation: Int
        public var parent: Int?
        public var root: Int
        public var traits: Set<String>
        /// The traits in storage (trait id) order, as upstream lists them in provider summaries.
        public var orderedTraits: [String]
        public var aggregates: Set<String>
        public var inventories: [String: Inventory]
        /// Allocated amounts by class.
        public var used: [String: Int]

        public init(
            uuid: String, name: String = "", updatedAt: Double = 0, generation: Int, parent: Int?, root: Int,
            traits: Set<String> = [], aggregates: Set<String> = [], inventories: [String: Inventory] = [:],
            used: [String: Int] = [:]
        ) {
            self.uuid = uuid
            self.name = name
            self.updatedAt = updatedAt
            self.generation = generation
            self.parent = parent
            self.root = root
            self.traits = traits
            self.orderedTraits = traits.sorted()
            self.aggregates = aggregates
            self.inventories = inventories
            self.used = used
        }

        /// Whether `amount` more of `resourceClass` fits on this provider, unit rules included.
        public func canSupply(_ resourceClass: String, amount: Int) -> Bool {
            guard let inventory = inventories[resourceClass] else { return false }
            return inventory.unitProblem(amount: amount) == nil
                && inventory.fits(additional: amount, used: used[resourceClass] ?? 0)
        }

        /// Whether this provider shares its resources with the members of its aggregates.
        public var isSharing: Bool { traits.contains(Trait.sharesViaAggregate.name) }
    }

    public let providers: [Provider]
    public let indexByUUID: [String: Int]
    /// Children of each provider, by index.
    public let children: [[Int]]
    /// Every provider of each tree that has more than one, keyed by the root's index.
    let treeMembersOfTrees: [Int: [Int]]
    /// What one provider can give of one class, precomputed so the search need not touch provider records.
    public struct Supply: Sendable {
        public var provider: Int
        public var root: Int
        public var free: Int
        public var minUnit: Int
        public var maxUnit: Int
        public var stepSize: Int
        public var sharing: Bool

        /// Whether `amount` respects the unit rules and fits in what is free.
        @inline(__always) public func allows(_ amount: Int) -> Bool {
            amount >= minUnit && amount <= maxUnit && amount <= free && (stepSize <= 1 || amount % stepSize == 0)
        }
    }

    /// Every class that some provider has inventory of, sorted by name (so class indexes sort like names).
    public let classNames: [String]
    /// Index into `classNames` of each class name.
    public let classIndex: [String: Int]
    /// Supplies of each class (by class index), in provider order.
    public let supplies: [[Supply]]
    /// Sharing providers (trait `MISC_SHARES_VIA_AGGREGATE`).
    public let sharingProviders: [Int]
    /// Providers in each aggregate.
    public let aggregateMembers: [String: [Int]]
    /// Whether any provider has a parent.
    public let hasTrees: Bool
    /// For each sharing provider, the roots of every provider that shares an aggregate with it ("anchors").
    let sharingAnchors: [Int: [Int]]

    /// Indexes `providers`; each provider's `parent` and `root` must be valid indexes into the array.
    public init(providers: [Provider]) {
        self.providers = providers
        var indexByUUID: [String: Int] = [:]
        indexByUUID.reserveCapacity(providers.count)
        var children = [[Int]](repeating: [], count: providers.count)
        var treeMembers: [Int: [Int]] = [:]
        var sharing: [Int] = []
        var aggregateMembers: [String: [Int]] = [:]
        var classNames: Set<String> = []
        for (index, provider) in providers.enumerated() {
            indexByUUID[provider.uuid] = index
            if let parent = provider.parent {
                children[parent].append(index)
                treeMembers[provider.root, default: [provider.root]].append(index)
            }
            for name in provider.inventories.keys { classNames.insert(name) }
            if provider.isSharing { sharing.append(index) }
            for aggregate in provider.aggregates { aggregateMembers[aggregate, default: []].append(index) }
        }
        for root in treeMembers.keys { treeMembers[root]!.sort() }
        let sortedClasses = classNames.sorted()
        var classIndex: [String: Int] = [:]
        for (index, name) in sortedClasses.enumerated() { classIndex[name] = index }
        var supplies = [[Supply]](repeating: [], count: sortedClasses.count)
        for (index, provider) in providers.enumerated() {
            let isSharing = provider.isSharing
            for (name, inventory) in provider.inventories {
                supplies[classIndex[name]!].append(Supply(
                    provider: index, root: provider.root, free: inventory.capacity - (provider.used[name] ?? 0),
                    minUnit: inventory.minUnit, maxUnit: inventory.maxUnit, stepSize: inventory.stepSize,
                    sharing: isSharing))
            }
        }
        var sharingAnchors: [Int: [Int]] = [:]
        for index in sharing {
            var roots: Set<Int> = []
            for aggregate in providers[index].aggregates {
                for member in aggregateMembers[aggregate] ?? [] { roots.insert(providers[member].root) }
            }
            sharingAnchors[index] = roots.sorted()
        }
        self.indexByUUID = indexByUUID
        self.children = children
        self.treeMembersOfTrees = treeMembers
        self.classNames = sortedClasses
        self.classIndex = classIndex
        self.supplies = supplies
        self.sharingProviders = sharing
        self.aggregateMembers = aggregateMembers
        self.hasTrees = !treeMembers.isEmpty
        self.sharingAnchors = sharingAnchors
    }

    /// Every provider of the tree rooted at `root`, in provider order.
    public func treeMembers(of root: Int) -> [Int] { treeMembersOfTrees[root] ?? [root] }

    /// The roots of every provider that shares an aggregate with sharing provider `index` (its "anchors").
    public func anchors(ofSharing index: Int) -> [Int] { sharingAnchors[index] ?? [] }

    /// Whether `descendant` is `ancestor` or lies below it.
    public func isInSubtree(_ descendant: Int, of ancestor: Int) -> Bool {
        var current: Int? = descendant
        while let index = current {
            if index == ancestor { return true }
            current = providers[index].parent
        }
        return false
    }
}
