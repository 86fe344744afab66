/// Finds every allocation candidate for a query over a snapshot, as upstream Placement defines them
/// (`docs/reference/allocation-candidates.md`, part A5). A pure function: no I/O, no clock.
public enum CandidateSolver {
    /// One group's way to be satisfied, tied to the tree (anchor root) it is built around.
    struct GroupCandidate {
        var anchor: Int
        var allocations: [(provider: Int, resourceClass: String, amount: Int)]
        var providers: [Int]
    }

    /// Solves `query`; an empty result means nothing fits.
    public static func solve(_ query: CandidateQuery, in snapshot: PlacementSnapshot) -> CandidateResult {
        let anchorAllowed = rootFilter(query, snapshot)
        var perGroup: [[GroupCandidate]] = []
        for group in query.groups {
            let candidates = group.isGranular
                ? granular(group, snapshot, anchorAllowed) : unsuffixed(group, snapshot, anchorAllowed)
            if candidates.isEmpty { return CandidateResult(candidates: [], summaryProviders: []) }
            perGroup.append(candidates)
        }
        // Without the old-microversion filter, the first `limit` results are final: stop generating there.
        var generation = query
        if let limit = query.limit, query.nestedAware || !snapshot.hasTrees {
            generation.maxCandidates = min(limit, query.maxCandidates ?? limit)
        }
        var results = combine(perGroup, generation, snapshot)
        if !query.nestedAware, snapshot.hasTrees {
            results = results.filter { candidate in
                let roots = candidate.allocations.keys.map { snapshot.providers[$0].root }
                return Set(roots).count == roots.count
            }
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

    /// A granular group is served by one provider (A5.2).
    static func granular(
        _ group: RequestGroup, _ snapshot: PlacementSnapshot, _ anchorAllowed: (Int) -> Bool
    ) -> [GroupCandidate] {
        let pool: [Int]
        if let first = group.resources.first {
            pool = (snapshot.supplyByClass[first.0] ?? []).filter { $0.allows(first.1) }.map(\.provider)
        } else if group.requiredTraits.isEmpty && group.memberOf.isEmpty {
            return []
        } else {
            pool = Array(snapshot.providers.indices)
        }
        let treeRoot = group.inTree.map { snapshot.providers[$0].root }
        var result: [GroupCandidate] = []
        for index in pool {
            let provider = snapshot.providers[index]
            if !group.resources.isEmpty {
                if let treeRoot, provider.root != treeRoot { continue }
                guard group.resources.allSatisfy({ provider.canSupply($0.0, amount: $0.1) }) else { continue }
            }
            guard group.traitsMatch(provider.traits),
                group.memberOf.allSatisfy({ set in set.contains(where: provider.aggregates.contains) }),
                group.forbiddenAggregates.isDisjoint(with: provider.aggregates)
            else { continue }
            var anchors = [provider.root]
            if provider.isSharing { anchors += snapshot.anchors(ofSharing: index).filter { $0 != provider.root } }
            for anchor in anchors where anchorAllowed(anchor) {
                result.append(GroupCandidate(
                    anchor: anchor, allocations: group.resources.map { (index, $0.0, $0.1) }, providers: [index]))
            }
        }
        return result
    }

    /// The unsuffixed group may spread over one tree and sharing providers (A5.3).
    static func unsuffixed(
        _ group: RequestGroup, _ snapshot: PlacementSnapshot, _ anchorAllowed: (Int) -> Bool
    ) -> [GroupCandidate] {
        let treeRoot = group.inTree.map { snapshot.providers[$0].root }
        // Per class: the (provider, anchor) entries that can supply it.
        var entriesByClass: [[(provider: Int, anchor: Int)]] = []
        for (resourceClass, amount) in group.resources {
            var entries: [(provider: Int, anchor: Int)] = []
            for supply in snapshot.supplyByClass[resourceClass] ?? [] where supply.allows(amount) {
                let index = supply.provider
                let root = supply.root
                if let treeRoot {
                    if root == treeRoot { entries.append((index, root)) }
                    continue
                }
                entries.append((index, root))
                if supply.sharing,
                    group.memberOf.allSatisfy({ set in set.contains(where: snapshot.providers[index].aggregates.contains) })
                {
                    for anchor in snapshot.anchors(ofSharing: index) where anchor != root {
                        entries.append((index, anchor))
                    }
                }
            }
            if !group.memberOf.isEmpty || !group.forbiddenAggregates.isEmpty {
                entries = entries.filter { entry in
                    let own = snapshot.providers[entry.provider].aggregates
                    let rootAggregates = snapshot.providers[entry.anchor].aggregates
                    let inRequired = group.memberOf.allSatisfy { set in
                        set.contains { own.contains($0) || rootAggregates.contains($0) }
                    }
                    let inForbidden = !group.forbiddenAggregates.isDisjoint(with: own)
                        || !group.forbiddenAggregates.isDisjoint(with: rootAggregates)
                    return inRequired && !inForbidden
                }
            }
            entries = entries.filter { anchorAllowed($0.anchor) }
            if entries.isEmpty { return [] }
            entriesByClass.append(entries)
        }
        // Providers per anchor and class, built in one pass (no per-anchor scans).
        var byAnchor: [Int: [[Int]]] = [:]
        for (classIndex, entries) in entriesByClass.enumerated() {
            for entry in entries {
                if classIndex == 0 {
                    byAnchor[entry.anchor, default: [[Int]](repeating: [], count: entriesByClass.count)][0]
                        .append(entry.provider)
                } else if byAnchor[entry.anchor] != nil {
                    byAnchor[entry.anchor]![classIndex].append(entry.provider)
                }
            }
        }
        var result: [GroupCandidate] = []
        for anchor in byAnchor.keys.sorted() {
            let choices = byAnchor[anchor]!
            if choices.contains(where: \.isEmpty) { continue }
            forEachCombination(choices) { picked in
                var providers: [Int] = []
                for provider in picked where !providers.contains(provider) { providers.append(provider) }
                guard group.requiredTraits.allSatisfy({ set in
                    set.contains { trait in providers.contains { snapshot.providers[$0].traits.contains(trait) } }
                }),
                    group.forbiddenTraits.isEmpty
                        || providers.allSatisfy({ snapshot.providers[$0].traits.isDisjoint(with: group.forbiddenTraits) })
                else { return }
                let allocations = zip(picked, group.resources).map { ($0, $1.0, $1.1) }
                result.append(GroupCandidate(anchor: anchor, allocations: allocations, providers: providers))
            }
        }
        return result
    }

    /// Calls `body` with every choice of one element from each list.
    static func forEachCombination(_ lists: [[Int]], _ body: ([Int]) -> Void) {
        guard !lists.contains(where: \.isEmpty) else { return }
        var indexes = [Int](repeating: 0, count: lists.count)
        while true {
            body(indexes.enumerated().map { lists[$0.offset][$0.element] })
            var position = lists.count - 1
            while position >= 0 {
                indexes[position] += 1
                if indexes[position] < lists[position].count { break }
                indexes[position] = 0
                position -= 1
            }
            if position < 0 { return }
        }
    }

    /// Combines the groups' candidates within each anchor (A5.5).
    static func combine(
        _ perGroup: [[GroupCandidate]], _ query: CandidateQuery, _ snapshot: PlacementSnapshot
    ) -> [AllocationCandidate] {
        // Candidate indexes per anchor and group, built in one pass.
        var byAnchor: [Int: [[Int]]] = [:]
        for (groupIndex, candidates) in perGroup.enumerated() {
            for (index, candidate) in candidates.enumerated() {
                if groupIndex == 0 {
                    byAnchor[candidate.anchor, default: [[Int]](repeating: [], count: perGroup.count)][0].append(index)
                } else if byAnchor[candidate.anchor] != nil {
                    byAnchor[candidate.anchor]![groupIndex].append(index)
                }
            }
        }
        var results: [AllocationCandidate] = []
        var seen: Set<AllocationCandidate> = []
        var search = Combiner(perGroup: perGroup, query: query, snapshot: snapshot)
        for anchor in byAnchor.keys.sorted() {
            let lists = byAnchor[anchor]!
            if lists.contains(where: \.isEmpty) { continue }
            if search.run(lists: lists, emit: { candidate in
                // Within one anchor every combination differs; the same one can only come again under another
                // anchor when it uses sharing providers (the only ones that serve several anchors).
                let needsDedupe = candidate.mappings.values.contains { $0.contains { snapshot.providers[$0].isSharing } }
                guard !needsDedupe || seen.insert(candidate).inserted else { return false }
                results.append(candidate)
                return query.maxCandidates.map { results.count >= $0 } ?? false
            }) {
                break
            }
        }
        return results
    }

    /// Depth-first choice of one candidate per group within one anchor, pruning as soon as a choice breaks
    /// `isolate` (so the wide-tree permutations are walked, not the whole cartesian product).
    struct Combiner {
        let perGroup: [[GroupCandidate]]
        let query: CandidateQuery
        let snapshot: PlacementSnapshot
        private var chosen: [Int] = []
        private var usedByGranular: Set<Int> = []

        init(perGroup: [[GroupCandidate]], query: CandidateQuery, snapshot: PlacementSnapshot) {
            self.perGroup = perGroup
            self.query = query
            self.snapshot = snapshot
        }

        /// Walks every combination; `emit` returns `true` to stop. Returns whether it stopped.
        mutating func run(lists: [[Int]], emit: (AllocationCandidate) -> Bool) -> Bool {
            chosen = []
            usedByGranular = []
            return descend(0, lists, emit)
        }

        private mutating func descend(_ depth: Int, _ lists: [[Int]], _ emit: (AllocationCandidate) -> Bool) -> Bool {
            if depth == lists.count {
                guard let candidate = assemble() else { return false }
                return emit(candidate)
            }
            let isolating = query.isolate && query.groups[depth].isGranular
            for index in lists[depth] {
                let provider = perGroup[depth][index].providers.first
                if isolating, let provider, usedByGranular.contains(provider) { continue }
                chosen.append(index)
                if isolating, let provider { usedByGranular.insert(provider) }
                let stop = descend(depth + 1, lists, emit)
                if isolating, let provider { usedByGranular.remove(provider) }
                chosen.removeLast()
                if stop { return true }
            }
            return false
        }

        /// The consolidated candidate for the current choice, or `nil` when it breaks same_subtree or capacity.
        private func assemble() -> AllocationCandidate? {
            var mappings: [String: [Int]] = [:]
            for (depth, index) in chosen.enumerated() {
                mappings[query.groups[depth].suffix] = perGroup[depth][index].providers
            }
            guard sameSubtreeHolds(query.sameSubtree, mappings, snapshot) else { return nil }
            var allocations: [Int: [String: Int]] = [:]
            var order: [Int] = []
            var items = 0
            for (depth, index) in chosen.enumerated() {
                for item in perGroup[depth][index].allocations {
                    items += 1
                    if allocations[item.provider] == nil { order.append(item.provider) }
                    allocations[item.provider, default: [:]][item.resourceClass, default: 0] += item.amount
                }
            }
            // Sums only need a re-check when several amounts landed on one provider.
            if order.count < items {
                for (provider, amounts) in allocations {
                    for (resourceClass, amount) in amounts {
                        guard let inventory = snapshot.providers[provider].inventories[resourceClass],
                            amount <= inventory.maxUnit,
                            inventory.fits(additional: amount, used: snapshot.providers[provider].used[resourceClass] ?? 0)
                        else { return nil }
                    }
                }
            }
            return AllocationCandidate(allocations: allocations, providerOrder: order, mappings: mappings)
        }
    }

    /// Each `same_subtree` set's providers must have one of them as ancestor-or-self of all the others.
    static func sameSubtreeHolds(
        _ constraints: [[String]], _ mappings: [String: [Int]], _ snapshot: PlacementSnapshot
    ) -> Bool {
        constraints.allSatisfy { suffixes in
            let providers = Array(Set(suffixes.flatMap { mappings[$0] ?? [] }))
            guard providers.count > 1 else { return true }
            return providers.contains { top in providers.allSatisfy { snapshot.isInSubtree($0, of: top) } }
        }
    }

    /// The providers to summarise (A5.8).
    static func summaries(
        _ results: [AllocationCandidate], _ query: CandidateQuery, _ snapshot: PlacementSnapshot
    ) -> [Int] {
        let allocated = Set(results.flatMap { $0.allocations.keys })
        guard query.nestedAware else { return allocated.sorted() }
        let roots = Set(allocated.map { snapshot.providers[$0].root })
        return roots.sorted().flatMap { snapshot.treeMembers[$0] ?? [] }.sorted()
    }
}
