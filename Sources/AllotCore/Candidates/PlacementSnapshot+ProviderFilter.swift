extension PlacementSnapshot {
    /// The providers that pass `filter`, as `GET /resource_providers` lists them, found in memory.
    ///
    /// It answers as `SQLPlacementStore.providers(matching:)` does (which follows upstream's
    /// `_get_all_by_filters_from_db`): the same providers in the same order (snapshot index order, which is
    /// database id order), the same refusals and the same early empty answers, checked in the same order:
    /// an unknown `in_tree` provider gives nothing; unknown required traits are refused, and no provider at all
    /// having them gives nothing; unknown forbidden traits are refused; no provider in the `member_of`
    /// aggregates gives nothing; unknown resource classes are refused (the first by name).
    /// - Parameters:
    ///   - filter: the parsed query.
    ///   - traits: every trait name that exists (read with this snapshot, so they agree).
    ///   - classes: every resource class name that exists (likewise).
    /// - Returns: snapshot indexes, ascending.
    /// - Throws: `PlacementError` 400 for a trait or resource class that does not exist.
    public func providers(
        matching filter: ProviderFilter, traits: Set<String>, classes: Set<String>
    ) throws(PlacementError) -> [Int] {
        var root: Int?
        if let tree = filter.inTree {
            guard let index = indexByUUID[tree] else { return [] }
            root = providers[index].root
        }
        let required = filter.requiredTraits.filter { !$0.isEmpty }.map(Set.init)
        if !required.isEmpty {
            try Self.refuseUnknownTraits(required.flatMap { $0 }, known: traits)
            if !providers.contains(where: { Self.hasAll(required, in: $0.traits) }) { return [] }
        }
        let forbidden = Set(filter.forbiddenTraits)
        if !forbidden.isEmpty { try Self.refuseUnknownTraits(Array(forbidden), known: traits) }
        let memberOf = filter.memberOf.filter { !$0.isEmpty }.map(Set.init)
        if !memberOf.isEmpty, !providers.contains(where: { Self.hasAll(memberOf, in: $0.aggregates) }) { return [] }
        let forbiddenAggregates = Set(filter.forbiddenAggregates)
        if let missing = filter.resources.keys.filter({ !classes.contains($0) }).sorted().first {
            throw PlacementError.badRequest(
                "Invalid resource class in resources parameter: No such resource class \(missing).")
        }
        let resources = filter.resources.sorted { $0.key < $1.key }
        return candidates(filter, root: root).filter { index in
            let provider = providers[index]
            if let name = filter.name, provider.name != name { return false }
            if let uuid = filter.uuid, provider.uuid != uuid { return false }
            if let root, provider.root != root { return false }
            guard Self.hasAll(required, in: provider.traits), provider.traits.isDisjoint(with: forbidden),
                Self.hasAll(memberOf, in: provider.aggregates),
                provider.aggregates.isDisjoint(with: forbiddenAggregates)
            else { return false }
            return resources.allSatisfy { name, amount in
                guard let inventory = provider.inventories[name] else { return false }
                return Self.listingAllows(inventory, used: provider.used[name] ?? 0, amount: amount)
            }
        }
    }

    /// The providers worth checking, ascending: the one named by uuid, the tree, the holders of the scarcest
    /// requested class, or all.
    private func candidates(_ filter: ProviderFilter, root: Int?) -> [Int] {
        if let uuid = filter.uuid { return indexByUUID[uuid].map { [$0] } ?? [] }
        if let root { return treeMembers(of: root) }
        if !filter.resources.isEmpty {
            // Supplies are in provider order; a class no provider has inventory of has none (nothing matches).
            let holders = filter.resources.keys.map { name in classIndex[name].map { supplies[$0] } ?? [] }
            return holders.min { $0.count < $1.count }!.map(\.provider)
        }
        return Array(providers.indices)
    }

    /// Whether `have` meets every any-of set (has at least one member of each).
    private static func hasAll(_ anyOf: [Set<String>], in have: Set<String>) -> Bool {
        anyOf.allSatisfy { !$0.isDisjoint(with: have) }
    }

    /// Refuses the first unknown name (by name), with the listing's wording.
    private static func refuseUnknownTraits(_ names: [String], known: Set<String>) throws(PlacementError) {
        if let missing = names.filter({ !known.contains($0) }).sorted().first {
            throw PlacementError.badRequest("Invalid trait(s) in \"required\" parameter: No such trait(s): \(missing).")
        }
    }

    /// The listing's capacity rule for one class on one provider, as the SQL query (and upstream's
    /// `get_providers_with_resource`) writes it: `(total - reserved) * allocation_ratio >= amount + used`,
    /// `min_unit <= amount <= max_unit` and `amount % step_size = 0`.
    ///
    /// The product is a float and the sum an integer; they are compared exactly, as SQLite compares a REAL with an
    /// INTEGER (PostgreSQL converts the integer to a float first: the two differ only beyond 2^53). A sum beyond
    /// 64 bits becomes a float, as in SQLite; a NaN product and a step size of 0 (SQL NULL) match nothing.
    package static func listingAllows(_ inventory: Inventory, used: Int, amount: Int) -> Bool {
        guard inventory.minUnit <= amount, inventory.maxUnit >= amount, inventory.stepSize != 0,
            amount % inventory.stepSize == 0
        else { return false }
        let (free, freeOverflow) = inventory.total.subtractingReportingOverflow(inventory.reserved)
        let capacity = (freeOverflow ? Double(inventory.total) - Double(inventory.reserved) : Double(free))
            * inventory.allocationRatio
        let (needed, neededOverflow) = amount.addingReportingOverflow(used)
        if capacity.isNaN { return false }
        if neededOverflow { return capacity >= Double(amount) + Double(used) }
        // Every float at or beyond 2^63 exceeds every Int, and every float below -2^63 is below them all; in
        // between, a float is at least an integer exactly when its floor is.
        if capacity >= 0x1p63 { return true }
        if capacity < -0x1p63 { return false }
        return Int(capacity.rounded(.down)) >= needed
    }
}
