/// What `CandidateExplainer` finds: the roots some allocation candidate uses, and why every other root is left out.
public struct FitReport: Sendable {
    /// Root provider indexes that appear (as the root of some provider used, in the items or the mappings) in at
    /// least one candidate of the unlimited search, ascending.
    public var fitting: [Int]
    /// Every other root provider (parent `nil`), with at least one reason.
    public var excluded: [Int: [ExclusionReason]]
    /// The number of candidates of the unlimited search.
    public var candidateCount: Int

    public init(fitting: [Int], excluded: [Int: [ExclusionReason]], candidateCount: Int) {
        self.fitting = fitting
        self.excluded = excluded
        self.candidateCount = candidateCount
    }
}

/// One reason why a provider tree appears in no allocation candidate.
public struct ExclusionReason: Sendable, Equatable {
    /// What rules the tree out, in the order the explainer checks it.
    public enum Kind: String, Sendable, CaseIterable {
        /// No provider that may serve the group for this tree has inventory of the class.
        case noInventory = "no_inventory"
        /// The providers with inventory of the class have less free than requested (`limit` = free).
        case capacity
        /// The amount is above the inventory's `max_unit` (`limit`).
        case maxUnit = "max_unit"
        /// The amount is below the inventory's `min_unit` (`limit`).
        case minUnit = "min_unit"
        /// The amount is not a multiple of the inventory's `step_size` (`limit`).
        case stepSize = "step_size"
        /// A required any-of set of traits (`traits`) is not met.
        case traitMissing = "trait_missing"
        /// A provider has forbidden traits (`traits`).
        case traitForbidden = "trait_forbidden"
        /// The root lacks a trait of `root_required` (`traits`).
        case rootTraitMissing = "root_trait_missing"
        /// The root has traits that `root_required` forbids (`traits`).
        case rootTraitForbidden = "root_trait_forbidden"
        /// A provider is in none of the aggregates of a `member_of` any-of set (`aggregates`).
        case aggregate
        /// A provider (or, for the unsuffixed group, the tree's root) is in forbidden aggregates (`aggregates`).
        case aggregateForbidden = "aggregate_forbidden"
        /// `in_tree` limits the group to another tree (or to providers that cannot serve this one).
        case notInTree = "not_in_tree"
        /// Before microversion 1.29 a candidate may not use several providers of one tree, and every candidate
        /// using this tree does.
        case nestedTree = "nested_tree"
        /// Every requested amount fits on some provider on its own, but no combination satisfies every group.
        case combination
        /// The tree anchors candidates, but they take every resource from sharing providers of other trees, so
        /// no candidate uses a provider of this tree.
        case sharingOnly = "sharing_only"
    }

    public var kind: Kind
    /// The request group's suffix (`""`: the unsuffixed group); `""` for the root and tree-wide kinds.
    public var group: String
    public var resourceClass: String?
    /// The index of the provider the reason is about, when one.
    public var provider: Int?
    public var requested: Int?
    /// The free amount (capacity), `max_unit`, `min_unit` or `step_size`.
    public var limit: Int?
    /// The any-of set missing, or the forbidden traits present.
    public var traits: [String]
    /// The any-of set missing, or the forbidden aggregates present.
    public var aggregates: [String]
    /// One plain English sentence.
    public var detail: String

    public init(
        kind: Kind, group: String = "", resourceClass: String? = nil, provider: Int? = nil, requested: Int? = nil,
        limit: Int? = nil, traits: [String] = [], aggregates: [String] = [], detail: String
    ) {
        self.kind = kind
        self.group = group
        self.resourceClass = resourceClass
        self.provider = provider
        self.requested = requested
        self.limit = limit
        self.traits = traits
        self.aggregates = aggregates
        self.detail = detail
    }
}

/// "Where does it fit?": which provider trees the allocation candidates of a query use, and why each other tree
/// is left out.
///
/// What fits is decided by `CandidateSolver` alone (one unlimited search); the explanation never guesses it. For
/// each other root the constraints are checked in a fixed order that mirrors the solver's semantics, and the
/// reasons of the first step that rules the tree out are reported (all of them, none of a later step):
/// 1. the tree would fit at microversion 1.29 or later (`nested_tree`); `root_required` on the root;
/// 2. per group, the providers that may serve it for this tree (the tree's own, and sharing providers whose
///    aggregates reach the tree), narrowed in turn by `in_tree`, `member_of` and traits; a check rules the tree
///    out when it leaves a requested class without any provider holding it;
/// 3. per group and class, the providers left with inventory of it: none (`no_inventory`), or none that can give
///    the amount (each one's first broken rule: `min_unit`, `max_unit`, `step_size`, then capacity);
/// 4. otherwise the groups cannot be met together (`combination`), or the tree anchors candidates made only of
///    sharing providers (`sharing_only`): these two are told apart by the solver's own per-group search,
///    restricted to the trees that reach this step.
public enum CandidateExplainer {
    /// Explains `query` over `snapshot`; `limit`, `maxCandidates` and `randomSeed` of the query are ignored.
    public static func explain(_ query: CandidateQuery, in snapshot: PlacementSnapshot) -> FitReport {
        var unlimited = query
        unlimited.limit = nil
        unlimited.maxCandidates = nil
        unlimited.randomSeed = nil
        let candidates = CandidateSolver.solve(unlimited, in: snapshot).candidates
        let used = usedRoots(candidates, snapshot)
        // Before 1.29 the solver drops candidates that use several providers of one tree: a tree that fits
        // without that rule is explained by it alone, and the other steps check the rules both share.
        unlimited.nestedAware = true
        var usedNested = used
        if !query.nestedAware, snapshot.hasTrees {
            usedNested = usedRoots(CandidateSolver.solve(unlimited, in: snapshot).candidates, snapshot)
        }
        let checks = Checks(query: unlimited, snapshot: snapshot)
        var fitting: [Int] = []
        var excluded: [Int: [ExclusionReason]] = [:]
        var unexplained: [Int] = []
        for root in snapshot.providers.indices where snapshot.providers[root].parent == nil {
            if used[root] {
                fitting.append(root)
                continue
            }
            var reasons: [ExclusionReason] = []
            if usedNested[root] { reasons.append(checks.nestedTree(root)) }
            reasons += checks.rootTraits(root)
            if reasons.isEmpty { reasons = checks.groupReasons(root) }
            if reasons.isEmpty { unexplained.append(root) } else { excluded[root] = reasons }
        }
        for (root, reason) in checks.lastStep(unexplained) { excluded[root] = [reason] }
        return FitReport(fitting: fitting, excluded: excluded, candidateCount: candidates.count)
    }

    /// For each provider index, whether it is a root that some candidate uses.
    static func usedRoots(_ candidates: [AllocationCandidate], _ snapshot: PlacementSnapshot) -> [Bool] {
        var used = [Bool](repeating: false, count: snapshot.providers.count)
        for candidate in candidates {
            for item in candidate.items { used[snapshot.providers[item.provider].root] = true }
            for provider in candidate.mappedProviders { used[snapshot.providers[provider].root] = true }
        }
        return used
    }

    /// The checks of one query over one snapshot.
    struct Checks {
        let query: CandidateQuery
        let snapshot: PlacementSnapshot
        /// For each root, the sharing providers of other trees whose aggregates reach it (it is one of their
        /// anchors), ascending.
        let sharedTo: [Int: [Int]]

        init(query: CandidateQuery, snapshot: PlacementSnapshot) {
            self.query = query
            self.snapshot = snapshot
            var sharedTo: [Int: [Int]] = [:]
            for provider in snapshot.sharingProviders {
                for anchor in snapshot.anchors(ofSharing: provider) where anchor != snapshot.providers[provider].root {
                    sharedTo[anchor, default: []].append(provider)
                }
            }
            self.sharedTo = sharedTo
        }

        // MARK: Step 1

        func nestedTree(_ root: Int) -> ExclusionReason {
            ExclusionReason(
                kind: .nestedTree, provider: root,
                detail: "\(name(root)) would fit at microversion 1.29 or later: older ones refuse a candidate that "
                    + "uses several providers of one tree, and every candidate using this tree does")
        }

        func rootTraits(_ root: Int) -> [ExclusionReason] {
            let traits = snapshot.providers[root].traits
            var reasons = query.rootRequired.subtracting(traits).sorted().map { trait in
                ExclusionReason(
                    kind: .rootTraitMissing, provider: root, traits: [trait],
                    detail: "root_required: the root \(name(root)) lacks trait \(trait)")
            }
            let forbidden = query.rootForbidden.intersection(traits).sorted()
            if !forbidden.isEmpty {
                reasons.append(ExclusionReason(
                    kind: .rootTraitForbidden, provider: root, traits: forbidden,
                    detail: "root_required: the root \(name(root)) has forbidden \(plural("trait", forbidden))"))
            }
            return reasons
        }

        // MARK: Steps 2 and 3

        /// The reasons of step 2 for every group, or else those of step 3; empty when neither rules `root` out.
        func groupReasons(_ root: Int) -> [ExclusionReason] {
            var blocked: [ExclusionReason] = []
            var left: [[Int]] = []
            for group in query.groups {
                var providers = snapshot.treeMembers(of: root) + (sharedTo[root] ?? [])
                blocked += narrow(group, root, &providers)
                left.append(providers)
            }
            if !blocked.isEmpty { return blocked }
            var short: [ExclusionReason] = []
            for (group, providers) in zip(query.groups, left) { short += supply(group, providers) }
            return short
        }

        /// Whether `provider` has inventory of `resourceClass` (`nil`, standing for a resourceless group: any).
        func holds(_ provider: Int, _ resourceClass: String?) -> Bool {
            resourceClass.map { snapshot.providers[provider].inventories[$0] != nil } ?? true
        }

        /// Narrows the providers that may serve `group` for the tree of `root` by in_tree, member_of and traits,
        /// as the solver does; returns the reasons of the first check that rules the tree out for the group.
        func narrow(_ group: RequestGroup, _ root: Int, _ providers: inout [Int]) -> [ExclusionReason] {
            let tracked: [String?] = group.resources.isEmpty ? [nil] : group.resources.map(\.0)
            let label = label(group)
            // in_tree (ignored by a resourceless group): a granular group may use any provider of that tree that
            // serves this one (sharing providers reach other trees); the unsuffixed group only that tree's own.
            if let tree = group.inTree, !group.resources.isEmpty {
                let treeRoot = snapshot.providers[tree].root
                let kept = providers.filter { provider in
                    let providerRoot = snapshot.providers[provider].root
                    return providerRoot == treeRoot && (group.isGranular || providerRoot == root)
                }
                let lost = lostClasses(tracked, providers, kept)
                if kept.isEmpty || !lost.isEmpty {
                    // With nothing left the tree is simply another one; otherwise name the classes left behind.
                    var detail = "in_tree limits \(label) to the tree of \(name(tree))"
                    if !kept.isEmpty {
                        detail += ", where no provider serving this tree has "
                            + list(lost.compactMap { $0 }) + " (sharing providers of other trees do not count)"
                    }
                    return [ExclusionReason(
                        kind: .notInTree, group: group.suffix, resourceClass: kept.isEmpty ? nil : lost.first ?? nil,
                        provider: tree, detail: detail)]
                }
                providers = kept
            }
            if !group.memberOf.isEmpty || !group.forbiddenAggregates.isEmpty {
                let reasons = apply(tracked, &providers, passes: { aggregateProblems(group, root, $0, nil) == nil }) {
                    aggregateProblems(group, root, $0, $1) ?? []
                }
                if !reasons.isEmpty { return reasons }
            }
            guard !group.requiredTraits.isEmpty || !group.forbiddenTraits.isEmpty else { return [] }
            if group.isGranular {
                return apply(tracked, &providers, passes: { group.traitsMatch(snapshot.providers[$0].traits) }) {
                    traitProblems(group, $0, $1, required: true)
                }
            }
            // The unsuffixed group: no chosen provider may have a forbidden trait, and the chosen providers
            // together (those supplying its classes, sharing ones included) must meet every required set.
            let allowed = { (provider: Int) in
                snapshot.providers[provider].traits.isDisjoint(with: group.forbiddenTraits)
            }
            var reasons = apply(tracked, &providers, passes: allowed) { traitProblems(group, $0, $1, required: false) }
            let suppliers = providers.filter { provider in
                allowed(provider) && tracked.contains { holds(provider, $0) }
            }
            for anyOf in group.requiredTraits
            where !suppliers.contains(where: { anyOf.contains(where: snapshot.providers[$0].traits.contains) }) {
                let names = suppliers.prefix(5).map(name).joined(separator: ", ")
                    + (suppliers.count > 5 ? " and \(suppliers.count - 5) more" : "")
                reasons.append(ExclusionReason(
                    kind: .traitMissing, group: group.suffix, traits: anyOf,
                    detail: "\(label) needs \(anyOfText("trait", anyOf)) on a provider that supplies its resources, "
                        + (suppliers.isEmpty ? "and no provider of this tree can supply them"
                            : "and none of \(names) has it (traits of providers that supply nothing do not count)")))
            }
            return reasons
        }

        /// The classes of `tracked` that some provider of `before` holds and none of `after`.
        func lostClasses(_ tracked: [String?], _ before: [Int], _ after: [Int]) -> [String?] {
            tracked.filter { name in
                before.contains { holds($0, name) } && !after.contains { holds($0, name) }
            }
        }

        /// Keeps the providers that pass a check. When that leaves a tracked class without any provider holding
        /// it, the check rules the tree out: returns the problems of the removed providers that held such a class
        /// (and keeps `providers` as they were).
        func apply(
            _ tracked: [String?], _ providers: inout [Int], passes: (Int) -> Bool,
            problems: (Int, String?) -> [ExclusionReason]
        ) -> [ExclusionReason] {
            let kept = providers.filter(passes)
            let lost = lostClasses(tracked, providers, kept)
            guard !lost.isEmpty else {
                providers = kept
                return []
            }
            var reasons: [ExclusionReason] = []
            for provider in providers where !passes(provider) {
                guard let held = lost.first(where: { holds(provider, $0) }) else { continue }
                for reason in problems(provider, held) where !reasons.contains(reason) { reasons.append(reason) }
            }
            return reasons
        }

        /// The member_of and forbidden aggregate problems of `provider` serving `group` for the tree of `root`,
        /// or `nil` when there are none. The unsuffixed group counts the root's aggregates for the tree's own
        /// providers (and a forbidden aggregate of the root rules out every provider); a granular group and a
        /// sharing provider of another tree count only the provider's own.
        func aggregateProblems(
            _ group: RequestGroup, _ root: Int, _ provider: Int, _ held: String?
        ) -> [ExclusionReason]? {
            let own = snapshot.providers[provider].aggregates
            let rootAggregates = group.isGranular ? [] : snapshot.providers[root].aggregates
            let viaRoot = !group.isGranular && snapshot.providers[provider].root == root && provider != root
            let label = label(group)
            let who = "\(name(provider))\(held.map { " (\($0))" } ?? "")"
            var problems: [ExclusionReason] = []
            for anyOf in group.memberOf where !anyOf.contains(where: {
                own.contains($0) || (viaRoot && rootAggregates.contains($0))
            }) {
                problems.append(ExclusionReason(
                    kind: .aggregate, group: group.suffix, resourceClass: held, provider: provider, aggregates: anyOf,
                    detail: "member_of for \(label): \(who) is not in \(anyOfText("aggregate", anyOf))"
                        + (viaRoot ? ", nor is its root \(name(root))" : "")))
            }
            let forbidden = group.forbiddenAggregates.intersection(own).sorted()
            if !forbidden.isEmpty {
                problems.append(ExclusionReason(
                    kind: .aggregateForbidden, group: group.suffix, resourceClass: held, provider: provider,
                    aggregates: forbidden,
                    detail: "member_of for \(label): \(who) is in forbidden \(plural("aggregate", forbidden))"))
            }
            let forbiddenOnRoot = group.forbiddenAggregates.intersection(rootAggregates).sorted()
            if !forbiddenOnRoot.isEmpty, provider != root {
                problems.append(ExclusionReason(
                    kind: .aggregateForbidden, group: group.suffix, provider: root, aggregates: forbiddenOnRoot,
                    detail: "member_of for \(label): the root \(name(root)) is in forbidden "
                        + "\(plural("aggregate", forbiddenOnRoot)), which rules out every provider serving this tree"))
            }
            return problems.isEmpty ? nil : problems
        }

        /// The trait problems of `provider` for `group`: forbidden traits present and, when `required`, each
        /// required any-of set it does not meet.
        func traitProblems(
            _ group: RequestGroup, _ provider: Int, _ held: String?, required: Bool
        ) -> [ExclusionReason] {
            let traits = snapshot.providers[provider].traits
            let who = "\(name(provider))\(held.map { " (\($0))" } ?? "")"
            var problems: [ExclusionReason] = []
            if required {
                for anyOf in group.requiredTraits where !anyOf.contains(where: traits.contains) {
                    problems.append(ExclusionReason(
                        kind: .traitMissing, group: group.suffix, resourceClass: held, provider: provider,
                        traits: anyOf,
                        detail: "\(label(group)): \(who) lacks \(anyOfText("trait", anyOf))"))
                }
            }
            let forbidden = group.forbiddenTraits.intersection(traits).sorted()
            if !forbidden.isEmpty {
                problems.append(ExclusionReason(
                    kind: .traitForbidden, group: group.suffix, resourceClass: held, provider: provider,
                    traits: forbidden,
                    detail: "\(label(group)): \(who) has forbidden \(plural("trait", forbidden))"))
            }
            return problems
        }

        /// Step 3 for one group: each class that no provider left can give.
        func supply(_ group: RequestGroup, _ providers: [Int]) -> [ExclusionReason] {
            var reasons: [ExclusionReason] = []
            for (resourceClass, amount) in group.resources {
                let prefix = group.isGranular ? "\(resourceClass) (group \(group.suffix))" : resourceClass
                let holders = providers.filter { holds($0, resourceClass) }
                if holders.isEmpty {
                    reasons.append(ExclusionReason(
                        kind: .noInventory, group: group.suffix, resourceClass: resourceClass, requested: amount,
                        detail: "\(prefix): no provider of this tree, nor any sharing provider in its aggregates, "
                            + "has inventory of it"))
                    continue
                }
                let problems = holders.map { unitOrCapacityProblem(group, resourceClass, amount, $0, prefix) }
                if problems.contains(where: { $0 == nil }) { continue }
                reasons += problems.compactMap { $0 }
            }
            return reasons
        }

        /// The first rule that `provider` breaks for `amount` of `resourceClass` (the inventory's own unit rules, then
        /// its room, as `PlacementSnapshot.Provider.canSupply` checks them), or `nil` when it can give it.
        func unitOrCapacityProblem(
            _ group: RequestGroup, _ resourceClass: String, _ amount: Int, _ provider: Int, _ prefix: String
        ) -> ExclusionReason? {
            let record = snapshot.providers[provider]
            guard let inventory = record.inventories[resourceClass] else { return nil }
            func reason(_ kind: ExclusionReason.Kind, _ limit: Int, _ detail: String) -> ExclusionReason {
                ExclusionReason(
                    kind: kind, group: group.suffix, resourceClass: resourceClass, provider: provider,
                    requested: amount, limit: limit, detail: "\(prefix): \(amount) requested, \(detail)")
            }
            switch inventory.unitProblem(amount: amount) {
            case .belowMinUnit(let minUnit)?:
                return reason(.minUnit, minUnit, "below min_unit \(minUnit) on \(name(provider))")
            case .aboveMaxUnit(let maxUnit)?:
                return reason(.maxUnit, maxUnit, "above max_unit \(maxUnit) on \(name(provider))")
            case .notMultipleOfStepSize(let stepSize)?:
                return reason(.stepSize, stepSize, "not a multiple of step_size \(stepSize) on \(name(provider))")
            case nil:
                break
            }
            let used = record.used[resourceClass] ?? 0
            guard !inventory.fits(additional: amount, used: used) else { return nil }
            let free = inventory.capacity - used
            return reason(.capacity, free, "\(free) free on \(name(provider)) (capacity \(inventory.capacity) = "
                + "(\(inventory.total) - \(inventory.reserved)) × \(inventory.allocationRatio), \(used) used)")
        }

        // MARK: Step 4

        /// For the roots no earlier step rules out: the solver's per-group search restricted to them tells a
        /// group that cannot be met as a whole, groups that cannot be met together, and a tree whose candidates
        /// take everything from sharing providers apart.
        func lastStep(_ roots: [Int]) -> [(Int, ExclusionReason)] {
            guard !roots.isEmpty else { return [] }
            let count = snapshot.providers.count
            var wanted = [Bool](repeating: false, count: count)
            for root in roots { wanted[root] = true }
            let rootAllowed = CandidateSolver.rootFilter(query, snapshot)
            let allowed = { [wanted] (anchor: Int) in wanted[anchor] && rootAllowed(anchor) }
            let perGroup = query.groups.map { group in
                group.isGranular
                    ? CandidateSolver.granular(group, snapshot, allowed)
                    : CandidateSolver.unsuffixed(group, snapshot, allowed)
            }
            let buckets = perGroup.map { options in
                CandidateSolver.AnchorBuckets(
                    anchors: options.anchors, values: Array(0..<options.count), anchorCount: count)
            }
            let groupIndex = Dictionary(query.groups.enumerated().map { ($0.element.suffix, $0.offset) }) {
                first, _ in first
            }
            let sameSubtree = query.sameSubtree.map { $0.compactMap { groupIndex[$0] } }
            let isolating = query.groups.map { query.isolate && $0.isGranular }
            let together = "each resource fits somewhere in the tree, but no combination satisfies every group "
                + "together (group_policy=isolate, same_subtree, or classes that must come from one provider)"
            var result: [(Int, ExclusionReason)] = []
            for root in roots {
                if let index = buckets.firstIndex(where: { $0.isEmpty(root) }) {
                    let group = query.groups[index]
                    let detail: String
                    if group.isGranular, group.resources.count > 1 {
                        detail = "each resource fits somewhere in the tree, but no single provider can give group "
                            + "\(group.suffix) all of \(list(group.resources.map(\.0))) with its traits and aggregates"
                    } else if !group.isGranular, !group.requiredTraits.isEmpty {
                        detail = "each resource fits somewhere in the tree, but no choice of providers able to supply "
                            + "the unsuffixed group has all its required traits"
                    } else {
                        detail = together
                    }
                    result.append((root, ExclusionReason(kind: .combination, group: group.suffix, detail: detail)))
                    continue
                }
                var walk = CandidateSolver.Walk(
                    perGroup: perGroup, buckets: buckets, anchor: root, isolating: isolating, sameSubtree: sameSubtree)
                if let candidate = walk.next(snapshot), let sharing = candidate.mappedProviders.first {
                    let names = list(Array(Set(candidate.mappedProviders)).sorted().map(name))
                    result.append((root, ExclusionReason(
                        kind: .sharingOnly, provider: sharing,
                        detail: "every candidate this tree anchors takes all its resources from sharing providers of "
                            + "other trees (such as \(names)), so none uses a provider of this tree")))
                } else {
                    result.append((root, ExclusionReason(kind: .combination, detail: together)))
                }
            }
            return result
        }

        // MARK: Wording

        func name(_ provider: Int) -> String {
            let record = snapshot.providers[provider]
            return record.name.isEmpty ? record.uuid : record.name
        }

        func label(_ group: RequestGroup) -> String {
            group.isGranular ? "group \(group.suffix)" : "the unsuffixed group"
        }

        func list(_ names: [String]) -> String { names.joined(separator: ", ") }

        /// "trait X" or "traits X, Y".
        func plural(_ noun: String, _ names: [String]) -> String {
            "\(noun)\(names.count == 1 ? "" : "s") \(list(names))"
        }

        /// "trait X" or "any of traits X, Y".
        func anyOfText(_ noun: String, _ names: [String]) -> String {
            names.count == 1 ? "\(noun) \(names[0])" : "any of \(noun)s \(list(names))"
        }
    }
}
