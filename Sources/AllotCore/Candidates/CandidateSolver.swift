/// Finds every allocation candidate for a query over a snapshot, as upstream Placement defines them
/// (`docs/reference/allocation-candidates.md`, part A5). A pure function: no I/O, no clock.
///
/// The search works in three passes, none of which enumerates a combination that cannot succeed:
/// 1. each group's options (one provider for a granular group, one provider per class for the unsuffixed one),
///    read from the per-class supply index and tagged with the tree (anchor root) they serve;
/// 2. the options bucketed by anchor (a counting sort, no per-anchor allocations);
/// 3. per anchor, a depth-first walk over one option per group that prunes `group_policy=isolate` conflicts at
///    the level they appear, checks `same_subtree` and summed capacity, and stops at the cap or `limit`.
public enum CandidateSolver {
    /// Solves `query`; an empty result means nothing fits.
    public static func solve(_ query: CandidateQuery, in snapshot: PlacementSnapshot) -> CandidateResult {
        let anchorAllowed = rootFilter(query, snapshot)
        // Without the old-microversion filter, the first `limit` results are final: stop generating there.
        var cap = query.maxCandidates
        if let limit = query.limit, query.nestedAware || !snapshot.hasTrees { cap = min(limit, cap ?? limit) }
        // A lone unsuffixed group without sharing providers, in the default order: its options are the candidates,
        // in the same order, so generating them can stop at the cap too.
        let optionsAreCandidates = query.groups.count == 1 && !query.groups[0].isGranular
            && query.sameSubtree.isEmpty && query.strategy == .depthFirst && query.randomSeed == nil
            && snapshot.sharingProviders.isEmpty
        var perGroup: [GroupOptions] = []
        for group in query.groups {
            let options = group.isGranular
                ? granular(group, snapshot, anchorAllowed)
                : unsuffixed(group, snapshot, anchorAllowed, stopAfter: optionsAreCandidates ? cap : nil)
            if options.count == 0 { return CandidateResult(candidates: [], summaryProviders: []) }
            perGroup.append(options)
        }
        var results = combine(perGroup, query, snapshot, cap: cap)
        if !query.nestedAware, snapshot.hasTrees {
            results = results.filter { candidate in
                var roots: [Int] = []
                var previous = -1
                for item in candidate.items where item.provider != previous {
                    previous = item.provider
                    roots.append(snapshot.providers[item.provider].root)
                }
                return Set(roots).count == roots.count
            }
        }
        if let seed = query.randomSeed {
            var random = SplitMix64(seed: seed &+ 0x5851_F42D_4C95_7F2D)
            results.shuffle(using: &random)
        }
        if let limit = query.limit, limit < results.count { results = Array(results.prefix(limit)) }
        return CandidateResult(candidates: results, summaryProviders: summaries(results, query, snapshot))
    }

    /// Whether a root may anchor a candidate under `root_required`.
    static func rootFilter(_ query: CandidateQuery, _ snapshot: PlacementSnapshot) -> (Int) -> Bool {
        guard !query.rootRequired.isEmpty || !query.rootForbidden.isEmpty else { return { _ in true } }
        return { root in
            let traits = snapshot.providers[root].traits
            return query.rootRequired.isSubset(of: traits) && query.rootForbidden.isDisjoint(with: traits)
        }
    }

    /// One group's ways to be satisfied, each tied to the anchor root it serves, in flat arrays.
    struct GroupOptions {
        var anchors: [Int] = []
        var items: [AllocationCandidate.Item] = []
        var itemEnds: [Int] = []
        var providers: [Int] = []
        var providerEnds: [Int] = []

        var count: Int { anchors.count }

        func items(of option: Int) -> ArraySlice<AllocationCandidate.Item> {
            items[run(option, ends: itemEnds)]
        }

        func providers(of option: Int) -> ArraySlice<Int> {
            providers[run(option, ends: providerEnds)]
        }

        /// Closes an option whose items and providers were appended.
        mutating func close(anchor: Int) {
            anchors.append(anchor)
            itemEnds.append(items.count)
            providerEnds.append(providers.count)
        }
    }

    /// Resolves a group's classes to snapshot class indexes; `nil` when a class has no supply at all.
    static func classIndexes(_ group: RequestGroup, _ snapshot: PlacementSnapshot) -> [Int]? {
        var result: [Int] = []
        for (name, _) in group.resources {
            guard let index = snapshot.classIndex[name] else { return nil }
            result.append(index)
        }
        return result
    }

    /// A granular group is served by one provider (A5.2).
    static func granular(
        _ group: RequestGroup, _ snapshot: PlacementSnapshot, _ anchorAllowed: (Int) -> Bool
    ) -> GroupOptions {
        var options = GroupOptions()
        guard let classes = classIndexes(group, snapshot) else { return options }
        let pool: [Int]
        if let first = group.resources.first {
            pool = snapshot.supplies[classes[0]].compactMap { $0.allows(first.1) ? $0.provider : nil }
        } else if group.requiredTraits.isEmpty && group.memberOf.isEmpty {
            return options
        } else {
            pool = Array(snapshot.providers.indices)
        }
        let treeRoot = group.inTree.map { snapshot.providers[$0].root }
        // Providers that can give every further class (dense flags: no hashing per provider).
        var allowsRest = [Bool]()
        if classes.count > 1 {
            allowsRest = [Bool](repeating: true, count: snapshot.providers.count)
            for position in 1..<classes.count {
                var allows = [Bool](repeating: false, count: snapshot.providers.count)
                let amount = group.resources[position].1
                for supply in snapshot.supplies[classes[position]] where supply.allows(amount) {
                    allows[supply.provider] = true
                }
                for index in allows.indices where !allows[index] { allowsRest[index] = false }
            }
        }
        let checksTraits = !group.requiredTraits.isEmpty || !group.forbiddenTraits.isEmpty
        let checksAggregates = !group.memberOf.isEmpty || !group.forbiddenAggregates.isEmpty
        for index in pool {
            if !group.resources.isEmpty {
                if let treeRoot, snapshot.providers[index].root != treeRoot { continue }
                if classes.count > 1, !allowsRest[index] { continue }
            }
            if checksTraits, !group.traitsMatch(snapshot.providers[index].traits) { continue }
            if checksAggregates {
                let aggregates = snapshot.providers[index].aggregates
                guard group.memberOf.allSatisfy({ set in set.contains(where: aggregates.contains) }),
                    group.forbiddenAggregates.isDisjoint(with: aggregates)
                else { continue }
            }
            let root = snapshot.providers[index].root
            var anchors = [root]
            if snapshot.providers[index].isSharing {
                anchors += snapshot.anchors(ofSharing: index).filter { $0 != root }
            }
            for anchor in anchors where anchorAllowed(anchor) {
                for position in classes.indices {
                    options.items.append(.init(
                        provider: index, resourceClass: classes[position], amount: group.resources[position].1))
                }
                options.providers.append(index)
                options.close(anchor: anchor)
            }
        }
        return options
    }

    /// For each any-of set of aggregates, which providers are in it (by provider index).
    static func aggregateMasks(_ sets: [[String]], _ snapshot: PlacementSnapshot) -> [[Bool]] {
        sets.map { set in
            var mask = [Bool](repeating: false, count: snapshot.providers.count)
            for aggregate in set { for member in snapshot.aggregateMembers[aggregate] ?? [] { mask[member] = true } }
            return mask
        }
    }

    /// The unsuffixed group may spread over one tree and sharing providers (A5.3).
    static func unsuffixed(
        _ group: RequestGroup, _ snapshot: PlacementSnapshot, _ anchorAllowed: (Int) -> Bool, stopAfter: Int? = nil
    ) -> GroupOptions {
        var options = GroupOptions()
        guard !group.resources.isEmpty, let classes = classIndexes(group, snapshot) else { return options }
        let treeRoot = group.inTree.map { snapshot.providers[$0].root }
        let required = aggregateMasks(group.memberOf, snapshot)
        let forbidden = aggregateMasks([Array(group.forbiddenAggregates)], snapshot)[0]
        let filtersAggregates = !group.memberOf.isEmpty || !group.forbiddenAggregates.isEmpty
        // Per class: the providers that can supply it, bucketed by anchor.
        var buckets: [AnchorBuckets] = []
        for position in classes.indices {
            let amount = group.resources[position].1
            var entries: [(provider: Int, anchor: Int)] = []
            func add(_ provider: Int, _ anchor: Int) {
                if filtersAggregates {
                    for mask in required where !mask[provider] && !mask[anchor] { return }
                    if forbidden[provider] || forbidden[anchor] { return }
                }
                if anchorAllowed(anchor) { entries.append((provider, anchor)) }
            }
            for supply in snapshot.supplies[classes[position]] where supply.allows(amount) {
                if let treeRoot {
                    if supply.root == treeRoot { add(supply.provider, supply.root) }
                    continue
                }
                add(supply.provider, supply.root)
                if supply.sharing, required.allSatisfy({ $0[supply.provider] }) {
                    for anchor in snapshot.anchors(ofSharing: supply.provider) where anchor != supply.root {
                        add(supply.provider, anchor)
                    }
                }
            }
            if entries.isEmpty { return options }
            buckets.append(AnchorBuckets(
                anchors: entries.map(\.anchor), values: entries.map(\.provider), anchorCount: snapshot.providers.count))
        }
        var picked = [Int](repeating: 0, count: classes.count)
        var cursor = [Int](repeating: 0, count: classes.count)
        anchors: for anchor in 0..<snapshot.providers.count {
            for bucket in buckets where bucket.isEmpty(anchor) { continue anchors }
            // Every choice of one provider per class within this anchor.
            for position in cursor.indices { cursor[position] = buckets[position].start(anchor) }
            while true {
                for position in cursor.indices { picked[position] = buckets[position].values[cursor[position]] }
                let start = options.providers.count
                for provider in picked where !options.providers[start...].contains(provider) {
                    options.providers.append(provider)
                }
                let chosen = options.providers[start...]
                if group.requiredTraits.allSatisfy({ set in
                    set.contains { trait in chosen.contains { snapshot.providers[$0].traits.contains(trait) } }
                }),
                    group.forbiddenTraits.isEmpty
                        || chosen.allSatisfy({ snapshot.providers[$0].traits.isDisjoint(with: group.forbiddenTraits) })
                {
                    for position in picked.indices {
                        options.items.append(.init(
                            provider: picked[position], resourceClass: classes[position],
                            amount: group.resources[position].1))
                    }
                    options.close(anchor: anchor)
                } else {
                    options.providers.removeSubrange(start...)
                }
                // Next combination (last class varies fastest).
                var position = cursor.count - 1
                while position >= 0 {
                    cursor[position] += 1
                    if cursor[position] < buckets[position].end(anchor) { break }
                    cursor[position] = buckets[position].start(anchor)
                    position -= 1
                }
                if position < 0 { break }
            }
            if let stopAfter, options.count >= stopAfter { break }
        }
        return options
    }

    /// Values bucketed by anchor with a stable counting sort: `values[start(a)..<end(a)]` are anchor `a`'s.
    struct AnchorBuckets {
        var offsets: [Int]
        var values: [Int]

        /// Buckets `values[i]` under `anchors[i]`.
        init(anchors: [Int], values: [Int], anchorCount: Int) {
            var offsets = [Int](repeating: 0, count: anchorCount + 1)
            for anchor in anchors { offsets[anchor + 1] += 1 }
            for anchor in 0..<anchorCount { offsets[anchor + 1] += offsets[anchor] }
            var fill = offsets
            var bucketed = [Int](repeating: 0, count: values.count)
            for position in anchors.indices {
                let anchor = anchors[position]
                bucketed[fill[anchor]] = values[position]
                fill[anchor] += 1
            }
            self.offsets = offsets
            self.values = bucketed
        }

        @inline(__always) func start(_ anchor: Int) -> Int { offsets[anchor] }
        @inline(__always) func end(_ anchor: Int) -> Int { offsets[anchor + 1] }
        @inline(__always) func isEmpty(_ anchor: Int) -> Bool { offsets[anchor] == offsets[anchor + 1] }
    }

    /// Combines the groups' options within each anchor (A5.5), in the query's strategy and order.
    static func combine(
        _ perGroup: [GroupOptions], _ query: CandidateQuery, _ snapshot: PlacementSnapshot, cap: Int?
    ) -> [AllocationCandidate] {
        let anchorCount = snapshot.providers.count
        let buckets = perGroup.map { options in
            AnchorBuckets(anchors: options.anchors, values: Array(0..<options.count), anchorCount: anchorCount)
        }
        var anchors = (0..<anchorCount).filter { anchor in !buckets.contains { $0.isEmpty(anchor) } }
        if let seed = query.randomSeed {
            var random = SplitMix64(seed: seed)
            anchors.shuffle(using: &random)
        }
        let groupIndex = Dictionary(query.groups.enumerated().map { ($0.element.suffix, $0.offset) }) { first, _ in first }
        let sameSubtree = query.sameSubtree.map { $0.compactMap { groupIndex[$0] } }
        let mayRepeat = !snapshot.sharingProviders.isEmpty
        var results: [AllocationCandidate] = []
        var seen: Set<AllocationCandidate> = []
        // Within one anchor every combination differs; the same one can only come again under another anchor
        // when it uses sharing providers (the only ones that serve several anchors).
        func accept(_ candidate: AllocationCandidate) -> Bool {
            if mayRepeat, candidate.mappedProviders.contains(where: { snapshot.providers[$0].isSharing }),
                !seen.insert(candidate).inserted
            {
                return false
            }
            results.append(candidate)
            return cap.map { results.count >= $0 } ?? false
        }
        let isolating = query.groups.map { query.isolate && $0.isGranular }
        func walk(_ anchor: Int) -> Walk {
            Walk(perGroup: perGroup, buckets: buckets, anchor: anchor, isolating: isolating, sameSubtree: sameSubtree)
        }
        switch query.strategy {
        case .depthFirst:
            guard let first = anchors.first else { return results }
            var walker = walk(first)
            for anchor in anchors {
                walker.restart(at: anchor)
                while let candidate = walker.next(snapshot) { if accept(candidate) { return results } }
            }
        case .breadthFirst:
            var active = anchors.map(walk)
            while !active.isEmpty {
                var still: [Walk] = []
                still.reserveCapacity(active.count)
                for var walker in active {
                    guard let candidate = walker.next(snapshot) else { continue }
                    if accept(candidate) { return results }
                    still.append(walker)
                }
                active = still
            }
        }
        return results
    }

    /// A resumable depth-first choice of one option per group within one anchor. It prunes as soon as a choice
    /// breaks `isolate`, so the wide-tree permutations are walked, not the whole cartesian product.
    struct Walk {
        let perGroup: [GroupOptions]
        let buckets: [AnchorBuckets]
        private(set) var anchor: Int
        let isolating: [Bool]
        let sameSubtree: [[Int]]
        /// Position in each group's bucket of the option to try next.
        private var cursor: [Int]
        /// The option chosen at each depth (valid below `depth`).
        private var chosen: [Int]
        private var depth = 0

        init(perGroup: [GroupOptions], buckets: [AnchorBuckets], anchor: Int, isolating: [Bool],
             sameSubtree: [[Int]]) {
            self.perGroup = perGroup
            self.buckets = buckets
            self.anchor = anchor
            self.isolating = isolating
            self.sameSubtree = sameSubtree
            self.cursor = buckets.map { $0.start(anchor) }
            self.chosen = [Int](repeating: 0, count: perGroup.count)
        }

        /// Starts over at another anchor, reusing the buffers.
        mutating func restart(at anchor: Int) {
            self.anchor = anchor
            for group in cursor.indices { cursor[group] = buckets[group].start(anchor) }
            depth = 0
        }

        /// The next valid candidate of this anchor, or `nil` when there are no more.
        mutating func next(_ snapshot: PlacementSnapshot) -> AllocationCandidate? {
            let groups = perGroup.count
            while depth >= 0 {
                if depth == groups {
                    depth -= 1
                    if let candidate = assemble(snapshot) { return candidate }
                    continue
                }
                let bucket = buckets[depth]
                if cursor[depth] == bucket.end(anchor) {
                    cursor[depth] = bucket.start(anchor)
                    depth -= 1
                    continue
                }
                let option = bucket.values[cursor[depth]]
                cursor[depth] += 1
                if isolating[depth] {
                    let provider = perGroup[depth].providers(of: option).first!
                    var clash = false
                    for earlier in 0..<depth where isolating[earlier]
                        && perGroup[earlier].providers(of: chosen[earlier]).first == provider
                    {
                        clash = true
                        break
                    }
                    if clash { continue }
                }
                chosen[depth] = option
                depth += 1
            }
            return nil
        }

        /// The consolidated candidate for the current choice, or `nil` when it breaks same_subtree or capacity.
        private func assemble(_ snapshot: PlacementSnapshot) -> AllocationCandidate? {
            var mapped: [Int] = []
            var ends: [Int] = []
            ends.reserveCapacity(perGroup.count)
            var itemCount = 0
            for (group, option) in chosen.enumerated() {
                mapped.append(contentsOf: perGroup[group].providers(of: option))
                ends.append(mapped.count)
                itemCount += perGroup[group].items(of: option).count
            }
            for constraint in sameSubtree where !Self.sameSubtreeHolds(constraint, mapped, ends, snapshot) {
                return nil
            }
            var items: [AllocationCandidate.Item] = []
            items.reserveCapacity(itemCount)
            var merged = false
            for (group, option) in chosen.enumerated() {
                for item in perGroup[group].items(of: option) {
                    if let same = items.firstIndex(where: {
                        $0.provider == item.provider && $0.resourceClass == item.resourceClass
                    }) {
                        items[same].amount += item.amount
                        merged = true
                    } else {
                        items.append(item)
                    }
                }
            }
            // Group by provider in first-use order, classes in name order (a stable insertion sort: few items).
            if items.count > 1 {
                let single = items.allSatisfy { $0.provider == items[0].provider }
                let firstUse = single ? [] : items.map(\.provider)
                func key(_ item: AllocationCandidate.Item) -> (Int, Int) {
                    (single ? 0 : firstUse.firstIndex(of: item.provider)!, item.resourceClass)
                }
                for index in 1..<items.count {
                    let moving = items[index]
                    var position = index
                    while position > 0, key(items[position - 1]) > key(moving) {
                        items[position] = items[position - 1]
                        position -= 1
                    }
                    items[position] = moving
                }
            }
            // Sums only need a re-check when several groups put the same class on one provider.
            if merged {
                for item in items {
                    let provider = snapshot.providers[item.provider]
                    let name = snapshot.classNames[item.resourceClass]
                    guard let inventory = provider.inventories[name], item.amount <= inventory.maxUnit,
                        inventory.fits(additional: item.amount, used: provider.used[name] ?? 0)
                    else { return nil }
                }
            }
            return AllocationCandidate(items: items, mappedProviders: mapped, mappingEnds: ends)
        }

        /// A `same_subtree` set's providers must have one of them as ancestor-or-self of all the others.
        static func sameSubtreeHolds(
            _ groups: [Int], _ mapped: [Int], _ ends: [Int], _ snapshot: PlacementSnapshot
        ) -> Bool {
            var providers: [Int] = []
            for group in groups {
                for provider in mapped[run(group, ends: ends)]
                where !providers.contains(provider) {
                    providers.append(provider)
                }
            }
            guard providers.count > 1 else { return true }
            return providers.contains { top in providers.allSatisfy { snapshot.isInSubtree($0, of: top) } }
        }
    }

    /// The providers to summarise (A5.8).
    static func summaries(
        _ results: [AllocationCandidate], _ query: CandidateQuery, _ snapshot: PlacementSnapshot
    ) -> [Int] {
        var allocated = [Bool](repeating: false, count: snapshot.providers.count)
        for candidate in results { for item in candidate.items { allocated[item.provider] = true } }
        guard query.nestedAware else { return allocated.indices.filter { allocated[$0] } }
        var roots = [Bool](repeating: false, count: snapshot.providers.count)
        for index in allocated.indices where allocated[index] { roots[snapshot.providers[index].root] = true }
        var result: [Int] = []
        for root in roots.indices where roots[root] { result.append(contentsOf: snapshot.treeMembers(of: root)) }
        return snapshot.hasTrees ? result.sorted() : result
    }
}

/// A small seeded generator (SplitMix64), so a random order can be reproduced from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
