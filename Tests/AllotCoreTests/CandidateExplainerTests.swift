import AllotCore
import Testing

/// "Where does it fit?", table-driven: each case is a few provider trees and a query; the explainer must agree
/// with the solver on which roots fit, give every other root at least one reason, and give the expected ones.
@Suite struct CandidateExplainerTests {
    // MARK: Building cases

    /// One provider; its parent is named by uuid and must come earlier in the list.
    struct Node: Sendable {
        var uuid: String
        var parent: String? = nil
        var traits: Set<String> = []
        var aggregates: Set<String> = []
        var inventories: [String: Inventory] = [:]
        var used: [String: Int] = [:]
    }

    /// A reason the case expects for a root; the fields left `nil` are not checked.
    struct Expected: Sendable, CustomStringConvertible {
        var kind: ExclusionReason.Kind
        var resourceClass: String? = nil
        var trait: String? = nil
        var aggregate: String? = nil
        var provider: String? = nil
        var group: String? = nil
        var limit: Int? = nil

        var description: String {
            "\(kind.rawValue) \(resourceClass ?? "") \(trait ?? "") \(aggregate ?? "") \(provider ?? "")"
        }

        func matches(_ reason: ExclusionReason, _ snapshot: PlacementSnapshot) -> Bool {
            reason.kind == kind && (resourceClass == nil || reason.resourceClass == resourceClass)
                && (trait.map { reason.traits.contains($0) } ?? true)
                && (aggregate.map { reason.aggregates.contains($0) } ?? true)
                && (provider == nil || reason.provider.map { snapshot.providers[$0].uuid } == provider)
                && (group == nil || reason.group == group) && (limit == nil || reason.limit == limit)
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var nodes: [Node]
        var groups: [RequestGroup]
        /// Group suffix → uuid of the provider named by in_tree.
        var inTree: [String: String] = [:]
        var isolate = false
        var rootRequired: Set<String> = []
        var rootForbidden: Set<String> = []
        var sameSubtree: [[String]] = []
        var nestedAware = true
        /// The uuids of the roots that fit.
        var fits: Set<String>
        /// Every other root by uuid, with the reasons it must have (and no reason of another kind).
        var excluded: [String: [Expected]]
        var testDescription: String { name }
    }

    static func snapshot(_ nodes: [Node]) -> PlacementSnapshot {
        var index: [String: Int] = [:]
        var providers: [PlacementSnapshot.Provider] = []
        for node in nodes {
            let parent = node.parent.map { index[$0]! }
            let root = parent.map { providers[$0].root } ?? providers.count
            index[node.uuid] = providers.count
            providers.append(PlacementSnapshot.Provider(
                uuid: node.uuid, generation: 0, parent: parent, root: root, traits: node.traits,
                aggregates: node.aggregates, inventories: node.inventories, used: node.used))
        }
        return PlacementSnapshot(providers: providers)
    }

    /// The case's query, with a `limit`, a cap and a seed that the explainer must ignore.
    static func query(_ c: Case, _ snapshot: PlacementSnapshot) -> CandidateQuery {
        var groups = c.groups
        for index in groups.indices {
            if let uuid = c.inTree[groups[index].suffix] { groups[index].inTree = snapshot.indexByUUID[uuid]! }
        }
        return CandidateQuery(
            groups: groups, isolate: c.isolate, rootRequired: c.rootRequired, rootForbidden: c.rootForbidden,
            sameSubtree: c.sameSubtree, nestedAware: c.nestedAware, limit: 1, maxCandidates: 1, randomSeed: 42)
    }

    // MARK: Trees

    static let shares = "MISC_SHARES_VIA_AGGREGATE"

    static func cn(
        _ uuid: String, vcpu: Int = 16, vcpuUsed: Int = 0, memory: Int? = nil, memoryUsed: Int = 0,
        traits: Set<String> = [], aggregates: Set<String> = []
    ) -> Node {
        var node = Node(uuid: uuid, traits: traits, aggregates: aggregates,
                        inventories: ["VCPU": Inventory(total: vcpu)], used: ["VCPU": vcpuUsed])
        if let memory {
            node.inventories["MEMORY_MB"] = Inventory(total: memory)
            node.used["MEMORY_MB"] = memoryUsed
        }
        return node
    }

    static func numa(
        _ uuid: String, under parent: String, memory: Int = 4096, used: Int = 0, traits: Set<String> = [],
        aggregates: Set<String> = []
    ) -> Node {
        Node(uuid: uuid, parent: parent, traits: traits, aggregates: aggregates,
             inventories: ["MEMORY_MB": Inventory(total: memory)], used: ["MEMORY_MB": used])
    }

    static func pool(_ uuid: String, disk: Int = 1000, used: Int = 0, aggregates: Set<String>) -> Node {
        Node(uuid: uuid, traits: [shares], aggregates: aggregates, inventories: ["DISK_GB": Inventory(total: disk)],
             used: ["DISK_GB": used])
    }

    static func unsuffixed(
        _ resources: [(String, Int)], required: [[String]] = [], forbidden: Set<String> = [],
        memberOf: [[String]] = [], forbiddenAggregates: Set<String> = []
    ) -> RequestGroup {
        RequestGroup(suffix: "", resources: resources, requiredTraits: required, forbiddenTraits: forbidden,
                     memberOf: memberOf, forbiddenAggregates: forbiddenAggregates)
    }

    static func granular(
        _ suffix: String, _ resources: [(String, Int)], required: [[String]] = [], memberOf: [[String]] = []
    ) -> RequestGroup {
        RequestGroup(suffix: suffix, resources: resources, requiredTraits: required, memberOf: memberOf)
    }

    // MARK: Cases

    static let cases: [Case] = [
        // Amounts.
        Case(name: "capacity: what is used leaves too little", nodes: [cn("cn1", vcpuUsed: 14), cn("cn2")],
             groups: [unsuffixed([("VCPU", 4)])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .capacity, resourceClass: "VCPU", provider: "cn1", limit: 2)]]),
        Case(name: "capacity: reserved counts",
             nodes: [Node(uuid: "cn1", inventories: ["VCPU": Inventory(total: 16, reserved: 14)]), cn("cn2")],
             groups: [unsuffixed([("VCPU", 4)])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .capacity, resourceClass: "VCPU", provider: "cn1", limit: 2)]]),
        Case(name: "capacity: allocation_ratio counts",
             nodes: [Node(uuid: "cn1", inventories: ["VCPU": Inventory(total: 4)], used: ["VCPU": 2]),
                     Node(uuid: "cn2", inventories: ["VCPU": Inventory(total: 4, allocationRatio: 4)],
                          used: ["VCPU": 10])],
             groups: [unsuffixed([("VCPU", 4)])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .capacity, resourceClass: "VCPU", provider: "cn1", limit: 2)]]),
        Case(name: "max_unit", nodes: [Node(uuid: "cn1", inventories: ["VCPU": Inventory(total: 16, maxUnit: 2)]),
                                       cn("cn2")],
             groups: [unsuffixed([("VCPU", 4)])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .maxUnit, resourceClass: "VCPU", provider: "cn1", limit: 2)]]),
        Case(name: "min_unit",
             nodes: [Node(uuid: "cn1", inventories: ["MEMORY_MB": Inventory(total: 4096, minUnit: 512)]),
                     Node(uuid: "cn2", inventories: ["MEMORY_MB": Inventory(total: 4096)])],
             groups: [unsuffixed([("MEMORY_MB", 256)])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .minUnit, resourceClass: "MEMORY_MB", provider: "cn1", limit: 512)]]),
        Case(name: "step_size",
             nodes: [Node(uuid: "cn1", inventories: ["DISK_GB": Inventory(total: 100, stepSize: 10)]),
                     Node(uuid: "cn2", inventories: ["DISK_GB": Inventory(total: 100)])],
             groups: [unsuffixed([("DISK_GB", 15)])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .stepSize, resourceClass: "DISK_GB", provider: "cn1", limit: 10)]]),
        Case(name: "no_inventory",
             nodes: [cn("cn1"),
                     Node(uuid: "cn2", inventories: ["VCPU": Inventory(total: 8), "VGPU": Inventory(total: 2)])],
             groups: [unsuffixed([("VCPU", 1), ("VGPU", 1)])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .noInventory, resourceClass: "VGPU")]]),
        Case(name: "two classes short: every reason of the step", nodes: [cn("cn1", vcpuUsed: 16, memory: 1024,
                                                                            memoryUsed: 1000)],
             groups: [unsuffixed([("MEMORY_MB", 512), ("VCPU", 2)])], fits: [],
             excluded: ["cn1": [Expected(kind: .capacity, resourceClass: "MEMORY_MB", provider: "cn1", limit: 24),
                                Expected(kind: .capacity, resourceClass: "VCPU", provider: "cn1", limit: 0)]]),

        // Traits and aggregates.
        Case(name: "required trait missing", nodes: [cn("cn1"), cn("cn2", traits: ["HW_CPU_X86_AVX"])],
             groups: [unsuffixed([("VCPU", 1)], required: [["HW_CPU_X86_AVX"]])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .traitMissing, trait: "HW_CPU_X86_AVX", group: "")]]),
        Case(name: "an earlier step hides a later one", nodes: [cn("cn1", vcpuUsed: 16), cn("cn2", traits: ["AVX"])],
             groups: [unsuffixed([("VCPU", 1)], required: [["AVX"]])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .traitMissing, trait: "AVX")]]),
        Case(name: "forbidden trait present", nodes: [cn("cn1", traits: ["CUSTOM_SLOW"]), cn("cn2")],
             groups: [unsuffixed([("VCPU", 1)], forbidden: ["CUSTOM_SLOW"])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .traitForbidden, trait: "CUSTOM_SLOW", provider: "cn1")]]),
        Case(name: "any-of required traits (in:)",
             nodes: [cn("cn1", traits: ["C"]), cn("cn2", traits: ["B"]), cn("cn3", traits: ["A", "C"])],
             groups: [unsuffixed([("VCPU", 1)], required: [["A", "B"]])], fits: ["cn2", "cn3"],
             excluded: ["cn1": [Expected(kind: .traitMissing, trait: "A"), Expected(kind: .traitMissing, trait: "B")]]),
        Case(name: "member_of missing", nodes: [cn("cn1", aggregates: ["agg-b"]), cn("cn2", aggregates: ["agg-a"])],
             groups: [unsuffixed([("VCPU", 1)], memberOf: [["agg-a"]])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .aggregate, aggregate: "agg-a", provider: "cn1")]]),
        Case(name: "forbidden aggregate", nodes: [cn("cn1", aggregates: ["agg-x"]), cn("cn2")],
             groups: [unsuffixed([("VCPU", 1)], forbiddenAggregates: ["agg-x"])], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .aggregateForbidden, aggregate: "agg-x", provider: "cn1")]]),
        Case(name: "in_tree", nodes: [cn("cn1"), cn("cn2"), cn("cn3")], groups: [unsuffixed([("VCPU", 1)])],
             inTree: ["": "cn2"], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .notInTree, provider: "cn2")],
                        "cn3": [Expected(kind: .notInTree, provider: "cn2")]]),
        Case(name: "root_required: trait missing on the root", nodes: [cn("cn1"), cn("cn2", traits: ["CUSTOM_GOLD"])],
             groups: [unsuffixed([("VCPU", 1)])], rootRequired: ["CUSTOM_GOLD"], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .rootTraitMissing, trait: "CUSTOM_GOLD", provider: "cn1", group: "")]]),
        Case(name: "root_required: forbidden trait on the root",
             nodes: [cn("cn1", traits: ["COMPUTE_STATUS_DISABLED"]), cn("cn2")],
             groups: [unsuffixed([("VCPU", 1)])], rootForbidden: ["COMPUTE_STATUS_DISABLED"], fits: ["cn2"],
             excluded: ["cn1": [Expected(kind: .rootTraitForbidden, trait: "COMPUTE_STATUS_DISABLED")]]),
        Case(name: "several trees, different reasons",
             nodes: [cn("cn1", vcpuUsed: 14, traits: ["AVX"], aggregates: ["agg-a"]), cn("cn2", aggregates: ["agg-a"]),
                     cn("cn3", traits: ["AVX"]), cn("cn4", traits: ["AVX"], aggregates: ["agg-a"]),
                     cn("cn5", traits: ["AVX", "DISABLED"], aggregates: ["agg-a"])],
             groups: [unsuffixed([("VCPU", 4)], required: [["AVX"]], memberOf: [["agg-a"]])],
             rootForbidden: ["DISABLED"], fits: ["cn4"],
             excluded: ["cn1": [Expected(kind: .capacity, resourceClass: "VCPU", provider: "cn1")],
                        "cn2": [Expected(kind: .traitMissing, trait: "AVX")],
                        "cn3": [Expected(kind: .aggregate, aggregate: "agg-a", provider: "cn3")],
                        "cn5": [Expected(kind: .rootTraitForbidden, trait: "DISABLED", provider: "cn5")]]),

        // Nested trees.
        Case(name: "nested: the class on a child that is full",
             nodes: [cn("cnA"), numa("numaA", under: "cnA", used: 4000), cn("cnB"), numa("numaB", under: "cnB")],
             groups: [unsuffixed([("VCPU", 2), ("MEMORY_MB", 1024)])], fits: ["cnB"],
             excluded: ["cnA": [Expected(kind: .capacity, resourceClass: "MEMORY_MB", provider: "numaA", limit: 96)]]),
        Case(name: "nested: unsuffixed, a trait on a root that supplies nothing does not count",
             nodes: [Node(uuid: "cnA", traits: ["AVX"]), numa("numaA", under: "cnA"),
                     Node(uuid: "cnB"), numa("numaB", under: "cnB", traits: ["AVX"])],
             groups: [unsuffixed([("MEMORY_MB", 1024)], required: [["AVX"]])], fits: ["cnB"],
             excluded: ["cnA": [Expected(kind: .traitMissing, trait: "AVX", group: "")]]),
        Case(name: "nested: unsuffixed, a trait on the root that supplies counts for the tree",
             nodes: [cn("cnA", traits: ["AVX"]), numa("numaA", under: "cnA"),
                     cn("cnB"), numa("numaB", under: "cnB")],
             groups: [unsuffixed([("VCPU", 1), ("MEMORY_MB", 1024)], required: [["AVX"]])], fits: ["cnA"],
             excluded: ["cnB": [Expected(kind: .traitMissing, trait: "AVX")]]),
        Case(name: "nested: granular, a trait on the child does not serve the root's class",
             nodes: [cn("cnA"), numa("numaA", under: "cnA", traits: ["HW_NUMA_ROOT"]),
                     cn("cnB", traits: ["HW_NUMA_ROOT"])],
             groups: [granular("1", [("VCPU", 1)], required: [["HW_NUMA_ROOT"]])], fits: ["cnB"],
             excluded: ["cnA": [Expected(kind: .traitMissing, resourceClass: "VCPU", trait: "HW_NUMA_ROOT",
                                         provider: "cnA", group: "1")]]),
        Case(name: "nested: granular, a trait on the root does not serve the child's class",
             nodes: [cn("cnA", traits: ["CUSTOM_FAST"]), numa("numaA", under: "cnA"),
                     cn("cnB"), numa("numaB", under: "cnB", traits: ["CUSTOM_FAST"])],
             groups: [granular("1", [("MEMORY_MB", 1024)], required: [["CUSTOM_FAST"]])], fits: ["cnB"],
             excluded: ["cnA": [Expected(kind: .traitMissing, resourceClass: "MEMORY_MB", provider: "numaA")]]),
        Case(name: "nested: unsuffixed, member_of on the root spans the tree",
             nodes: [cn("cnA", aggregates: ["agg-a"]), numa("numaA", under: "cnA"),
                     Node(uuid: "cnB"), numa("numaB", under: "cnB")],
             groups: [unsuffixed([("MEMORY_MB", 1024)], memberOf: [["agg-a"]])], fits: ["cnA"],
             excluded: ["cnB": [Expected(kind: .aggregate, aggregate: "agg-a", provider: "numaB")]]),
        Case(name: "nested: granular, member_of on the root does not reach the child",
             nodes: [cn("cnA", aggregates: ["agg-a"]), numa("numaA", under: "cnA"),
                     cn("cnB"), numa("numaB", under: "cnB", aggregates: ["agg-a"])],
             groups: [granular("1", [("MEMORY_MB", 1024)], memberOf: [["agg-a"]])], fits: ["cnB"],
             excluded: ["cnA": [Expected(kind: .aggregate, aggregate: "agg-a", provider: "numaA", group: "1")]]),
        Case(name: "nested: a forbidden aggregate on the root rules out the whole tree",
             nodes: [Node(uuid: "cnA", aggregates: ["agg-x"]), numa("numaA", under: "cnA"),
                     Node(uuid: "cnB"), numa("numaB", under: "cnB")],
             groups: [unsuffixed([("MEMORY_MB", 1024)], forbiddenAggregates: ["agg-x"])], fits: ["cnB"],
             excluded: ["cnA": [Expected(kind: .aggregateForbidden, aggregate: "agg-x", provider: "cnA")]]),
        Case(name: "nested: granular classes that must come from one provider",
             nodes: [cn("cnA"), numa("numaA", under: "cnA"), cn("cnB", memory: 4096)],
             groups: [granular("1", [("VCPU", 1), ("MEMORY_MB", 1024)])], fits: ["cnB"],
             excluded: ["cnA": [Expected(kind: .combination, group: "1")]]),
        Case(name: "nested: a resourceless group needs its trait in the tree",
             nodes: [cn("cnA"), Node(uuid: "fpgaA", parent: "cnA", traits: ["CUSTOM_FPGA"]), cn("cnB")],
             groups: [unsuffixed([("VCPU", 1)]), granular("_ACC", [], required: [["CUSTOM_FPGA"]])], fits: ["cnA"],
             excluded: ["cnB": [Expected(kind: .traitMissing, trait: "CUSTOM_FPGA", provider: "cnB", group: "_ACC")]]),
        Case(name: "nested: group_policy=isolate leaves one provider for two groups",
             nodes: [cn("cnA", memory: 4096), cn("cnB"), numa("numaB0", under: "cnB"), numa("numaB1", under: "cnB")],
             groups: [granular("1", [("MEMORY_MB", 512)]), granular("2", [("MEMORY_MB", 512)])], isolate: true,
             fits: ["cnB"], excluded: ["cnA": [Expected(kind: .combination)]]),
        Case(name: "nested: same_subtree needs the port under the NUMA node",
             nodes: [Node(uuid: "cnA"), numa("numaA", under: "cnA"),
                     Node(uuid: "pfA", parent: "numaA", inventories: ["CUSTOM_NET": Inventory(total: 10)]),
                     Node(uuid: "cnB"), numa("numaB", under: "cnB"),
                     Node(uuid: "pfB", parent: "cnB", inventories: ["CUSTOM_NET": Inventory(total: 10)])],
             groups: [granular("_M", [("MEMORY_MB", 512)]), granular("_N", [("CUSTOM_NET", 1)])], isolate: true,
             sameSubtree: [["_M", "_N"]], fits: ["cnA"], excluded: ["cnB": [Expected(kind: .combination)]]),
        Case(name: "nested: before 1.29 a tree may not give from two providers",
             nodes: [cn("cnA"), numa("numaA", under: "cnA"), cn("cnB", memory: 4096)],
             groups: [unsuffixed([("VCPU", 1), ("MEMORY_MB", 1024)])], nestedAware: false, fits: ["cnB"],
             excluded: ["cnA": [Expected(kind: .nestedTree, provider: "cnA")]]),
        Case(name: "nested: before 1.29 one provider of a nested tree still fits",
             nodes: [cn("cnA"), numa("numaA", under: "cnA"), Node(uuid: "cnC")],
             groups: [unsuffixed([("VCPU", 1)])], nestedAware: false, fits: ["cnA"],
             excluded: ["cnC": [Expected(kind: .noInventory, resourceClass: "VCPU")]]),

        // Sharing providers.
        Case(name: "sharing: the pool is full",
             nodes: [cn("cn1", aggregates: ["agg-s"]), pool("pool1", disk: 100, used: 95, aggregates: ["agg-s"]),
                     cn("cn2", aggregates: ["agg-t"]), pool("pool2", aggregates: ["agg-t"])],
             groups: [unsuffixed([("VCPU", 1), ("DISK_GB", 10)])], fits: ["cn2", "pool2"],
             excluded: ["cn1": [Expected(kind: .capacity, resourceClass: "DISK_GB", provider: "pool1", limit: 5)],
                        "pool1": [Expected(kind: .noInventory, resourceClass: "VCPU"),
                                  Expected(kind: .capacity, resourceClass: "DISK_GB", provider: "pool1")]]),
        Case(name: "sharing: a tree outside the pool's aggregate has no disk",
             nodes: [cn("cn1", aggregates: ["agg-s"]), pool("pool", aggregates: ["agg-s"]), cn("cn2")],
             groups: [unsuffixed([("VCPU", 1), ("DISK_GB", 10)])], fits: ["cn1", "pool"],
             excluded: ["cn2": [Expected(kind: .noInventory, resourceClass: "DISK_GB")]]),
        Case(name: "sharing: a request the pool meets alone uses no compute node",
             nodes: [cn("cn1", aggregates: ["agg-s"]), pool("pool", aggregates: ["agg-s"])],
             groups: [unsuffixed([("DISK_GB", 10)])], fits: ["pool"],
             excluded: ["cn1": [Expected(kind: .sharingOnly, provider: "pool")]]),
        Case(name: "sharing: in_tree keeps the unsuffixed group off the pool",
             nodes: [cn("cn1", aggregates: ["agg-s"]), pool("pool", aggregates: ["agg-s"])],
             groups: [unsuffixed([("VCPU", 1), ("DISK_GB", 10)])], inTree: ["": "cn1"], fits: [],
             excluded: ["cn1": [Expected(kind: .notInTree, resourceClass: "DISK_GB", provider: "cn1")],
                        "pool": [Expected(kind: .notInTree, provider: "cn1")]]),
        Case(name: "sharing: a granular in_tree on the pool serves every tree in its aggregate",
             nodes: [cn("cn1", aggregates: ["agg-s"]), cn("cn2", aggregates: ["agg-s"]), cn("cn3"),
                     pool("pool", aggregates: ["agg-s"])],
             groups: [unsuffixed([("VCPU", 1)]), granular("1", [("DISK_GB", 10)])], inTree: ["1": "pool"],
             fits: ["cn1", "cn2", "pool"],
             excluded: ["cn3": [Expected(kind: .notInTree, provider: "pool", group: "1")]]),
    ]

    @Test(arguments: cases)
    func explains(_ c: Case) {
        let snapshot = Self.snapshot(c.nodes)
        let query = Self.query(c, snapshot)
        let report = CandidateExplainer.explain(query, in: snapshot)
        var unlimited = query
        unlimited.limit = nil
        unlimited.maxCandidates = nil
        unlimited.randomSeed = nil
        let candidates = CandidateSolver.solve(unlimited, in: snapshot).candidates
        // (a) The fitting roots are exactly those the solver's candidates use.
        #expect(report.fitting == Self.rootsUsed(candidates, snapshot))
        #expect(report.candidateCount == candidates.count)
        #expect(Set(report.fitting.map { snapshot.providers[$0].uuid }) == c.fits)
        // (b) Every other root is excluded, with at least one reason.
        let roots = snapshot.providers.indices.filter { snapshot.providers[$0].parent == nil }
        #expect(Set(report.excluded.keys) == Set(roots).subtracting(report.fitting))
        #expect(report.excluded.values.allSatisfy { !$0.isEmpty })
        #expect(Set(report.excluded.keys.map { snapshot.providers[$0].uuid }) == Set(c.excluded.keys))
        // (c) The expected reasons, and none of another kind.
        for (uuid, expected) in c.excluded {
            let reasons = snapshot.indexByUUID[uuid].flatMap { report.excluded[$0] } ?? []
            for item in expected {
                #expect(reasons.contains { item.matches($0, snapshot) }, "\(uuid): no \(item) in \(reasons)")
            }
            let kinds = Set(expected.map(\.kind))
            #expect(reasons.allSatisfy { kinds.contains($0.kind) }, "\(uuid): unexpected reasons in \(reasons)")
            #expect(reasons.allSatisfy { !$0.detail.isEmpty })
        }
    }

    static func rootsUsed(_ candidates: [AllocationCandidate], _ snapshot: PlacementSnapshot) -> [Int] {
        var roots: Set<Int> = []
        for candidate in candidates {
            for item in candidate.items { roots.insert(snapshot.providers[item.provider].root) }
            for provider in candidate.mappedProviders { roots.insert(snapshot.providers[provider].root) }
        }
        return roots.sorted()
    }

    @Test func theCapacityDetailShowsHowFreeIsComputed() {
        let snapshot = Self.snapshot([
            Node(uuid: "cn-1", inventories: ["VCPU": Inventory(total: 16, reserved: 2, allocationRatio: 1.5)],
                 used: ["VCPU": 19])
        ])
        let report = CandidateExplainer.explain(CandidateQuery(groups: [Self.unsuffixed([("VCPU", 4)])]), in: snapshot)
        #expect(report.excluded[0] == [ExclusionReason(
            kind: .capacity, group: "", resourceClass: "VCPU", provider: 0, requested: 4, limit: 2,
            detail: "VCPU: 4 requested, 2 free on cn-1 (capacity 21 = (16 - 2) × 1.5, 19 used)")])
    }

    /// On random trees and requests (the solver tests' generator), the explainer agrees with the solver, explains
    /// every other root, and blames only what really blocks: a group named by a reason of steps 2 and 3 has no
    /// option at that root by brute force, a root trait reason breaks root_required, and a tree named by
    /// `nested_tree` fits at 1.29.
    @Test func agreesWithTheSolverOnRandomTreesAndRequests() {
        var random = SplitMix64(seed: 0xE8_91A1)
        var kinds: Set<ExclusionReason.Kind> = []
        let perGroup: Set<ExclusionReason.Kind> = [
            .noInventory, .capacity, .maxUnit, .minUnit, .stepSize, .traitMissing, .traitForbidden, .aggregate,
            .aggregateForbidden, .notInTree,
        ]
        for _ in 0..<2000 {
            let snapshot = CandidateSolverTests.randomSnapshot(&random)
            var query = CandidateSolverTests.randomQuery(&random, snapshot)
            query.nestedAware = random.next() % 4 != 0
            query.rootForbidden = random.next() % 6 == 0 ? ["B"] : []
            let report = CandidateExplainer.explain(query, in: snapshot)
            var unlimited = query
            unlimited.randomSeed = nil
            let candidates = CandidateSolver.solve(unlimited, in: snapshot).candidates
            #expect(report.fitting == Self.rootsUsed(candidates, snapshot))
            let roots = snapshot.providers.indices.filter { snapshot.providers[$0].parent == nil }
            #expect(Set(report.excluded.keys) == Set(roots).subtracting(report.fitting))
            #expect(report.excluded.values.allSatisfy { !$0.isEmpty })
            unlimited.nestedAware = true
            let fitsNested = Self.rootsUsed(CandidateSolver.solve(unlimited, in: snapshot).candidates, snapshot)
            for (root, reasons) in report.excluded {
                let traits = snapshot.providers[root].traits
                for reason in reasons {
                    kinds.insert(reason.kind)
                    switch reason.kind {
                    case _ where perGroup.contains(reason.kind):
                        let group = query.groups.first { $0.suffix == reason.group }!
                        #expect(!Self.groupHasOption(group, at: root, snapshot),
                                "\(reason) for a group with an option, in \(snapshot.providers) \(query.groups)")
                    case .rootTraitMissing, .rootTraitForbidden:
                        #expect(!query.rootRequired.isSubset(of: traits)
                            || !query.rootForbidden.isDisjoint(with: traits))
                    case .nestedTree:
                        #expect(!query.nestedAware && fitsNested.contains(root))
                    default:
                        break
                    }
                }
            }
        }
        // The random cases reach most kinds of reason.
        #expect(kinds.count >= 10, "only \(kinds.map(\.rawValue).sorted())")
    }

    /// Whether `group` (with resources) has some option anchored at `root`, by brute force over every choice of
    /// providers, with the rules of the solver tests' `BruteForce`.
    static func groupHasOption(_ group: RequestGroup, at root: Int, _ snapshot: PlacementSnapshot) -> Bool {
        let all = Array(snapshot.providers.indices)
        let choices = group.isGranularGroup
            ? all.map { provider in group.resources.map { _ in provider } }
            : BruteForce.cartesian(group.resources.map { _ in all })
        return choices.contains { BruteForce.isOption($0, group, anchor: root, snapshot) }
    }

    /// Five thousand single-provider trees, every tenth one full: the others fit, the full ones are explained.
    @Test func explainsFiveThousandTrees() {
        let nodes = (0..<5000).map { Self.cn("cn\($0)", vcpuUsed: $0 % 10 == 0 ? 16 : 0) }
        let snapshot = Self.snapshot(nodes)
        let report = CandidateExplainer.explain(CandidateQuery(groups: [Self.unsuffixed([("VCPU", 2)])]), in: snapshot)
        #expect(report.fitting.count == 4500)
        #expect(report.excluded.count == 500)
        #expect(report.excluded.values.allSatisfy { $0.map(\.kind) == [.capacity] })
    }
}
