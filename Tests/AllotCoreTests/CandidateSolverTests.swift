import AllotCore
import Testing

/// The candidate solver on hand-built cases, and against a brute-force enumerator on random ones.
@Suite struct CandidateSolverTests {
    typealias P = PlacementSnapshot.Provider

    /// cn (VCPU 8) with two NUMA children (MEMORY_MB 1024 each, trait HW_NUMA_ROOT), and a sharing disk in
    /// aggregate AGG with cn.
    static let tree = PlacementSnapshot(providers: [
        P(uuid: "cn", generation: 0, parent: nil, root: 0, traits: ["HW_CPU_X86_AVX"], aggregates: ["AGG"],
          inventories: ["VCPU": Inventory(total: 8)]),
        P(uuid: "numa0", generation: 0, parent: 0, root: 0, traits: ["HW_NUMA_ROOT"],
          inventories: ["MEMORY_MB": Inventory(total: 1024)]),
        P(uuid: "numa1", generation: 0, parent: 0, root: 0, traits: ["HW_NUMA_ROOT"],
          inventories: ["MEMORY_MB": Inventory(total: 1024)], used: ["MEMORY_MB": 1000]),
        P(uuid: "disk", generation: 0, parent: nil, root: 3, traits: ["MISC_SHARES_VIA_AGGREGATE"],
          aggregates: ["AGG"], inventories: ["DISK_GB": Inventory(total: 100, reserved: 10)]),
    ])

    @Test func spreadsTheUnsuffixedGroupOverTheTreeAndSharingProviders() {
        let query = CandidateQuery(groups: [
            RequestGroup(suffix: "", resources: [("VCPU", 1), ("MEMORY_MB", 512), ("DISK_GB", 10)])
        ])
        let result = CandidateSolver.solve(query, in: Self.tree)
        #expect(result.candidates.count == 1)
        #expect(result.candidates.first?.allocations(in: Self.tree)
            == [0: ["VCPU": 1], 1: ["MEMORY_MB": 512], 3: ["DISK_GB": 10]])
        #expect(result.summaryProviders == [0, 1, 2, 3])
    }

    @Test func oldMicroversionsRefuseSeveralProvidersOfOneTree() {
        let query = CandidateQuery(
            groups: [RequestGroup(suffix: "", resources: [("VCPU", 1), ("MEMORY_MB", 512)])], nestedAware: false)
        #expect(CandidateSolver.solve(query, in: Self.tree).candidates.isEmpty)
    }

    @Test func isolateKeepsGranularGroupsApart() {
        let groups = [
            RequestGroup(suffix: "1", resources: [("MEMORY_MB", 10)]),
            RequestGroup(suffix: "2", resources: [("MEMORY_MB", 10)]),
        ]
        let none = CandidateSolver.solve(CandidateQuery(groups: groups), in: Self.tree)
        let isolatedQuery = CandidateQuery(groups: groups, isolate: true)
        let isolated = CandidateSolver.solve(isolatedQuery, in: Self.tree)
        #expect(none.candidates.count == 4)
        #expect(isolated.candidates.count == 2)
        #expect(isolated.candidates.allSatisfy {
            $0.mappings(for: isolatedQuery)["1"] != $0.mappings(for: isolatedQuery)["2"]
        })
    }

    @Test func capacityIsCheckedOnTheSumOfGroups() {
        let groups = [
            RequestGroup(suffix: "1", resources: [("MEMORY_MB", 20)], inTree: 0),
            RequestGroup(suffix: "2", resources: [("MEMORY_MB", 20)]),
        ]
        let result = CandidateSolver.solve(CandidateQuery(groups: groups), in: Self.tree)
        // numa1 has 24 free: 20 + 20 on it does not fit, so only combinations using numa0 at least once remain.
        #expect(result.candidates.count == 3)
    }

    @Test func requiredTraitsAreMetByTheSupplyingProviders() {
        let onChild = CandidateQuery(groups: [
            RequestGroup(suffix: "", resources: [("MEMORY_MB", 1)], requiredTraits: [["HW_CPU_X86_AVX"]])
        ])
        #expect(CandidateSolver.solve(onChild, in: Self.tree).candidates.isEmpty)
        let withRoot = CandidateQuery(groups: [
            RequestGroup(suffix: "", resources: [("VCPU", 1), ("MEMORY_MB", 1)], requiredTraits: [["HW_CPU_X86_AVX"]])
        ])
        #expect(CandidateSolver.solve(withRoot, in: Self.tree).candidates.count == 2)
    }

    @Test func sameSubtreeNeedsACommonAncestorAmongTheGroups() {
        let groups = [
            RequestGroup(suffix: "_A", resources: [("VCPU", 1)]),
            RequestGroup(suffix: "_B", resources: [("MEMORY_MB", 1)]),
            RequestGroup(suffix: "_C", resources: [("MEMORY_MB", 1)]),
        ]
        let loose = CandidateSolver.solve(CandidateQuery(groups: groups, isolate: true), in: Self.tree)
        let tight = CandidateSolver.solve(
            CandidateQuery(groups: groups, isolate: true, sameSubtree: [["_B", "_C"]]), in: Self.tree)
        #expect(loose.candidates.count == 2)
        #expect(tight.candidates.isEmpty)
    }

    @Test func theCapStopsGeneration() {
        let groups = (1...4).map { RequestGroup(suffix: "\($0)", resources: [("MEMORY_MB", 1)]) }
        let result = CandidateSolver.solve(CandidateQuery(groups: groups, maxCandidates: 3), in: Self.tree)
        #expect(result.candidates.count == 3)
    }

    /// Ten roots, each with two single-unit children: 2 candidates per root for two isolated groups.
    static let forest = PlacementSnapshot(providers: (0..<10).flatMap { tree in
        let root = tree * 3
        return [
            P(uuid: "r\(tree)", generation: 0, parent: nil, root: root),
            P(uuid: "r\(tree)a", generation: 0, parent: root, root: root, inventories: ["CUSTOM_U": Inventory(total: 1)]),
            P(uuid: "r\(tree)b", generation: 0, parent: root, root: root, inventories: ["CUSTOM_U": Inventory(total: 1)]),
        ]
    })

    static func forestRoots(_ result: CandidateResult) -> [Int] {
        result.candidates.map { Self.forest.providers[$0.items[0].provider].root }
    }

    @Test func breadthFirstTakesOneCandidateFromEachTreeInTurn() {
        let groups = (1...2).map { RequestGroup(suffix: "\($0)", resources: [("CUSTOM_U", 1)]) }
        let depth = CandidateSolver.solve(CandidateQuery(groups: groups, isolate: true, maxCandidates: 4), in: Self.forest)
        let breadth = CandidateSolver.solve(
            CandidateQuery(groups: groups, isolate: true, maxCandidates: 4, strategy: .breadthFirst), in: Self.forest)
        #expect(Self.forestRoots(depth) == [0, 0, 3, 3])
        #expect(Self.forestRoots(breadth) == [0, 3, 6, 9])
        let everything = CandidateSolver.solve(
            CandidateQuery(groups: groups, isolate: true, strategy: .breadthFirst), in: Self.forest)
        #expect(everything.candidates.count == 20)
        #expect(Self.forestRoots(everything).prefix(10) == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27])
    }

    @Test func aRandomSeedGivesAReproducibleSampleAcrossTrees() {
        let groups = [RequestGroup(suffix: "", resources: [("CUSTOM_U", 1)])]
        func roots(_ seed: UInt64) -> [Int] {
            Self.forestRoots(CandidateSolver.solve(
                CandidateQuery(groups: groups, limit: 5, randomSeed: seed), in: Self.forest))
        }
        #expect(roots(7) == roots(7))
        #expect(roots(7).count == 5)
        let fixed = Self.forestRoots(CandidateSolver.solve(CandidateQuery(groups: groups, limit: 5), in: Self.forest))
        #expect(fixed == [0, 0, 3, 3, 6])
        // Over a few seeds the sample reaches trees beyond the first three.
        #expect(Set((1...5).flatMap { roots($0) }).contains { $0 > 6 })
    }

    /// One root with 8 single-unit children and 8 granular groups with isolate: 8! = 40,320 candidates.
    @Test func wideTreeGivesEveryPermutationAndHonoursTheCap() {
        var providers = [P(uuid: "root", generation: 0, parent: nil, root: 0)]
        for child in 1...8 {
            providers.append(P(uuid: "c\(child)", generation: 0, parent: 0, root: 0,
                               inventories: ["CUSTOM_UNIT": Inventory(total: 1)]))
        }
        let snapshot = PlacementSnapshot(providers: providers)
        let groups = (1...8).map { RequestGroup(suffix: "\($0)", resources: [("CUSTOM_UNIT", 1)]) }
        let query = CandidateQuery(groups: groups, isolate: true)
        let all = CandidateSolver.solve(query, in: snapshot)
        #expect(all.candidates.count == 40_320)
        #expect(Set(all.candidates.map { Canonical($0, snapshot, query) }).count == 40_320)
        let capped = CandidateSolver.solve(CandidateQuery(groups: groups, isolate: true, maxCandidates: 1000), in: snapshot)
        #expect(capped.candidates.count == 1000)
    }

    // MARK: - Property test against brute force

    @Test func matchesBruteForceOnRandomTreesAndRequests() {
        var random = SplitMix64(seed: 0x5EED)
        var withCandidates = 0
        for _ in 0..<3000 {
            let snapshot = Self.randomSnapshot(&random)
            let query = Self.randomQuery(&random, snapshot)
            let candidates = CandidateSolver.solve(query, in: snapshot).candidates
            let solved = Set(candidates.map { Canonical($0, snapshot, query) })
            #expect(candidates.allSatisfy(Self.itemsAreOrdered), "items out of order for \(query.groups)")
            #expect(solved.count == candidates.count, "duplicate candidates for \(query.groups)")
            // A limit returns the first candidates of the unlimited answer, whatever stops generation early.
            if query.randomSeed == nil, candidates.count > 1 {
                var limited = query
                limited.limit = 1 + Int(random.next() % UInt64(candidates.count))
                #expect(CandidateSolver.solve(limited, in: snapshot).candidates == Array(candidates.prefix(limited.limit!)))
            }
            let brute = BruteForce.solve(query, snapshot)
            #expect(solved == brute, "snapshot \(snapshot.providers) query \(query.groups)")
            if solved != brute { return }
            if !brute.isEmpty { withCandidates += 1 }
        }
        // The random cases must exercise real answers, not only empty ones.
        #expect(withCandidates > 600, "only \(withCandidates) cases had candidates")
    }

    static let classes = ["VCPU", "MEMORY_MB", "DISK_GB"]
    static let traitPool = ["A", "B", "C"]

    static func randomSnapshot(_ random: inout SplitMix64) -> PlacementSnapshot {
        var providers: [P] = []
        let count = Int(random.next() % 7) + 2
        for index in 0..<count {
            var parent: Int? = nil
            if index > 0, random.next() % 3 != 0 { parent = Int(random.next() % UInt64(index)) }
            let root = parent.map { providers[$0].root } ?? index
            var traits = Set(traitPool.filter { _ in random.next() % 3 == 0 })
            if random.next() % 4 == 0 { traits.insert("MISC_SHARES_VIA_AGGREGATE") }
            let aggregates = Set(["X", "Y"].filter { _ in random.next() % 3 == 0 })
            var inventories: [String: Inventory] = [:]
            var used: [String: Int] = [:]
            for name in classes where random.next() % 2 == 0 {
                let total = Int(random.next() % 6) + 1
                inventories[name] = Inventory(total: total, maxUnit: Int(random.next() % 3) + 2)
                used[name] = Int(random.next() % UInt64(total / 2 + 1))
            }
            providers.append(P(uuid: "p\(index)", generation: 0, parent: parent, root: root, traits: traits,
                               aggregates: aggregates, inventories: inventories, used: used))
        }
        return PlacementSnapshot(providers: providers)
    }

    static func randomQuery(_ random: inout SplitMix64, _ snapshot: PlacementSnapshot) -> CandidateQuery {
        var groups: [RequestGroup] = []
        let granular = Int(random.next() % 3)
        let withUnsuffixed = granular == 0 || random.next() % 2 == 0
        for index in 0..<(granular + (withUnsuffixed ? 1 : 0)) {
            let suffix = withUnsuffixed && index == 0 ? "" : "\(index)"
            var resources: [(String, Int)] = []
            for name in classes where random.next() % 2 == 0 { resources.append((name, Int(random.next() % 2) + 1)) }
            if resources.isEmpty { resources = [(classes[Int(random.next() % 3)], 1)] }
            var group = RequestGroup(suffix: suffix, resources: resources)
            if random.next() % 3 == 0 { group.requiredTraits = [[traitPool[Int(random.next() % 3)]]] }
            if random.next() % 4 == 0 { group.requiredTraits.append(["A", "B"]) }
            if random.next() % 4 == 0 { group.forbiddenTraits = [traitPool[Int(random.next() % 3)]] }
            if random.next() % 4 == 0 { group.memberOf = [["X"]] }
            if random.next() % 5 == 0 { group.forbiddenAggregates = ["Y"] }
            if random.next() % 6 == 0 { group.inTree = Int(random.next() % UInt64(snapshot.providers.count)) }
            groups.append(group)
        }
        let suffixes = groups.map(\.suffix).filter { !$0.isEmpty }
        var sameSubtree: [[String]] = []
        if suffixes.count > 1, random.next() % 3 == 0 { sameSubtree = [suffixes] }
        // The order options must not change the set of candidates when nothing cuts them off.
        return CandidateQuery(
            groups: groups, isolate: random.next() % 2 == 0,
            rootRequired: random.next() % 5 == 0 ? ["A"] : [], sameSubtree: sameSubtree,
            strategy: random.next() % 3 == 0 ? .breadthFirst : .depthFirst,
            randomSeed: random.next() % 4 == 0 ? random.next() : nil)
    }

    /// Items come grouped by provider (each provider once) with classes in name order, one per class.
    static func itemsAreOrdered(_ candidate: AllocationCandidate) -> Bool {
        var seen: Set<Int> = []
        for (index, item) in candidate.items.enumerated() {
            if index > 0, candidate.items[index - 1].provider == item.provider {
                if candidate.items[index - 1].resourceClass >= item.resourceClass { return false }
            } else if !seen.insert(item.provider).inserted {
                return false
            }
        }
        return true
    }
}

/// A candidate in a form that ignores the order of providers.
struct Canonical: Hashable, CustomStringConvertible {
    var allocations: [Int: [String: Int]]
    var mappings: [String: Set<Int>]

    init(_ candidate: AllocationCandidate, _ snapshot: PlacementSnapshot, _ query: CandidateQuery) {
        allocations = candidate.allocations(in: snapshot)
        mappings = candidate.mappings(for: query).mapValues(Set.init)
    }

    init(allocations: [Int: [String: Int]], mappings: [String: Set<Int>]) {
        self.allocations = allocations
        self.mappings = mappings
    }

    var description: String { "\(allocations) \(mappings)" }
}

/// The candidate rules stated directly and enumerated exhaustively: every provider for every class and group,
/// every root as anchor.
enum BruteForce {
    static func sharingAnchors(_ index: Int, _ snapshot: PlacementSnapshot) -> Set<Int> {
        let own = snapshot.providers[index].aggregates
        return Set(snapshot.providers.indices.filter { !snapshot.providers[$0].aggregates.isDisjoint(with: own) }
            .map { snapshot.providers[$0].root })
    }

    /// Whether provider `p` may serve a group anchored at root `r`.
    /// Whether `picked` (a provider per resource of `group`) is an option of the group anchored at `anchor`: every
    /// amount fits, every provider serves the anchor, and the traits and aggregates rules hold.
    static func isOption(_ picked: [Int], _ group: RequestGroup, anchor: Int, _ snapshot: PlacementSnapshot) -> Bool {
        let providers = Set(picked)
        let fits = zip(picked, group.resources).allSatisfy { snapshot.providers[$0].canSupply($1.0, amount: $1.1) }
        let anchored = providers.allSatisfy { servesAnchor($0, anchor, group, snapshot) }
        let traits = providers.reduce(into: Set<String>()) { $0.formUnion(snapshot.providers[$1].traits) }
        let traitsOK = group.requiredTraits.allSatisfy { $0.contains(where: traits.contains) }
            && providers.allSatisfy { snapshot.providers[$0].traits.isDisjoint(with: group.forbiddenTraits) }
        let aggregatesOK = providers.allSatisfy { p in
            let own = snapshot.providers[p].aggregates
            let extra = group.isGranularGroup ? [] : snapshot.providers[anchor].aggregates
            return group.memberOf.allSatisfy { set in set.contains { own.contains($0) || extra.contains($0) } }
                && group.forbiddenAggregates.isDisjoint(with: own)
                && group.forbiddenAggregates.isDisjoint(with: extra)
        }
        return fits && anchored && traitsOK && aggregatesOK
    }

    static func servesAnchor(_ p: Int, _ r: Int, _ group: RequestGroup, _ snapshot: PlacementSnapshot) -> Bool {
        let provider = snapshot.providers[p]
        if let tree = group.inTree {
            let treeRoot = snapshot.providers[tree].root
            if provider.root != treeRoot { return false }
            if !group.isGranularGroup { return r == provider.root }
        }
        if r == provider.root { return true }
        guard provider.isSharing, sharingAnchors(p, snapshot).contains(r) else { return false }
        if !group.isGranularGroup {
            return group.memberOf.allSatisfy { set in set.contains(where: provider.aggregates.contains) }
        }
        return true
    }

    static func solve(_ query: CandidateQuery, _ snapshot: PlacementSnapshot) -> Set<Canonical> {
        let all = Array(snapshot.providers.indices)
        let roots = all.filter { snapshot.providers[$0].parent == nil }.filter { root in
            let traits = snapshot.providers[root].traits
            return query.rootRequired.isSubset(of: traits) && query.rootForbidden.isDisjoint(with: traits)
        }
        var results: Set<Canonical> = []
        for anchor in roots {
            // Every group's options at this anchor: (allocations, providers).
            var options: [[(allocations: [(Int, String, Int)], providers: Set<Int>)]] = []
            for group in query.groups {
                var list: [(allocations: [(Int, String, Int)], providers: Set<Int>)] = []
                let choices = group.isGranularGroup
                    ? all.map { p in group.resources.map { _ in p } }
                    : cartesian(group.resources.map { _ in all })
                for picked in choices where isOption(picked, group, anchor: anchor, snapshot) {
                    list.append((zip(picked, group.resources).map { ($0, $1.0, $1.1) }, Set(picked)))
                }
                options.append(list)
            }
            for combination in cartesian(options.map { Array($0.indices) }) {
                let chosen = combination.enumerated().map { options[$0.offset][$0.element] }
                var mappings: [String: Set<Int>] = [:]
                for (group, option) in zip(query.groups, chosen) { mappings[group.suffix] = option.providers }
                if query.isolate {
                    let granular = zip(query.groups, chosen).filter { $0.0.isGranularGroup }.map { $0.1.providers.first! }
                    if Set(granular).count != granular.count { continue }
                }
                let subtreeOK = query.sameSubtree.allSatisfy { suffixes in
                    let members = Set(suffixes.flatMap { mappings[$0] ?? [] })
                    return members.count <= 1
                        || members.contains { top in members.allSatisfy { snapshot.isInSubtree($0, of: top) } }
                }
                if !subtreeOK { continue }
                var allocations: [Int: [String: Int]] = [:]
                for option in chosen { for (p, name, amount) in option.allocations { allocations[p, default: [:]][name, default: 0] += amount } }
                let capacityOK = allocations.allSatisfy { p, amounts in
                    amounts.allSatisfy { name, amount in
                        let provider = snapshot.providers[p]
                        return amount <= provider.inventories[name]!.maxUnit
                            && provider.inventories[name]!.fits(additional: amount, used: provider.used[name] ?? 0)
                    }
                }
                if capacityOK { results.insert(Canonical(allocations: allocations, mappings: mappings)) }
            }
        }
        return results
    }

    static func cartesian(_ lists: [[Int]]) -> [[Int]] {
        lists.reduce([[]]) { partial, list in partial.flatMap { prefix in list.map { prefix + [$0] } } }
    }
}

extension RequestGroup {
    var isGranularGroup: Bool { !suffix.isEmpty }
}
