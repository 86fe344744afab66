public import AllotCore
import SQLKit

extension SQLPlacementStore {
    /// Creates a provider, as a root or under `parentUUID`.
    /// - Throws: `PlacementError` 409 for a taken name or uuid, 400 for a missing parent.
    public func createProvider(uuid: String, name: String, parentUUID: String?) async throws -> ResourceProvider {
        let now = now()
        return try await database.transaction { tx in
            // Upstream's order: the name, the parent, then the insert meets duplicates.
            var parent: ProviderRow?
            let failure = "Unable to create resource provider \"\(name)\", \(uuid): Object action create failed because: "
            if name.isEmpty { throw PlacementError.badRequest(failure + "name is required") }
            if let parentUUID {
                if parentUUID == uuid {
                    throw PlacementError.badRequest(failure + "parent provider UUID cannot be same as UUID. "
                        + "Please set parent provider UUID to None if there is no parent.")
                }
                parent = try await tx.provider(uuid: parentUUID, lock: true)
                guard parent != nil else {
                    throw PlacementError.badRequest(failure + "parent provider UUID does not exist.")
                }
            }
            if try await tx.row("SELECT id FROM resource_providers WHERE uuid = \(bind: uuid)") != nil {
                throw PlacementError.conflict(
                    "Conflicting resource provider uuid: \(uuid) already exists.", code: .duplicateName)
            }
            if try await tx.row("SELECT id FROM resource_providers WHERE name = \(bind: name)") != nil {
                throw PlacementError.conflict(
                    "Conflicting resource provider name: \(name) already exists.", code: .duplicateName)
            }
            let id: Int
            do {
                id = try await tx.insertReturningID(
                    """
                    INSERT INTO resource_providers (uuid, name, generation, root_provider_id, parent_provider_id,
                      created_at, updated_at)
                    VALUES (\(bind: uuid), \(bind: name), 0, \(bind: parent?.rootID), \(bind: parent?.id),
                      \(bind: now), NULL)
                    """)
            } catch where isUniqueViolation(error) {
                throw PlacementError.conflict("Conflicting resource provider name: \(name) already exists.",
                                              code: .duplicateName)
            }
            if parent == nil {
                // Upstream sets the root in a second UPDATE, which stamps updated_at (a child's stays NULL).
                try await tx.run(
                    "UPDATE resource_providers SET root_provider_id = \(bind: id), updated_at = \(bind: now) WHERE id = \(bind: id)")
            }
            try await tx.recordChange(.shape)
            return try await tx.requireProvider(uuid: uuid).model
        }
    }

    /// The provider with this uuid, or `nil`.
    public func provider(uuid: String) async throws -> ResourceProvider? {
        try await database.withReadConnection { db in
            try await db.raw("\(unsafeRaw: ProviderRow.selectSQL) WHERE rp.uuid = \(bind: uuid)").first()
                .map { try ProviderRow(row: $0).model }
        }
    }

    /// Every provider that passes `filter`, ordered by internal id (creation order).
    /// - Throws: `PlacementError` 400 when a named trait or resource class does not exist.
    public func providers(matching filter: ProviderFilter) async throws -> [ResourceProvider] {
        try await database.readTransaction { tx in
            guard var query = try await Self.filterQuery(filter, tx: tx) else { return [] }
            query.appendInterpolation(unsafeRaw: " ORDER BY rp.id")
            return try await tx.rows(query).map { try ProviderRow(row: $0).model }
        }
    }

    /// The SQL for a provider filter, or `nil` when it can match nothing (e.g. an unknown tree).
    static func filterQuery(_ filter: ProviderFilter, tx: Transaction) async throws -> SQLQueryString? {
        var query = SQLQueryString("\(unsafeRaw: ProviderRow.selectSQL) WHERE 1 = 1")
        if let name = filter.name { query.appendInterpolation(" AND rp.name = \(bind: name)" as SQLQueryString) }
        if let uuid = filter.uuid { query.appendInterpolation(" AND rp.uuid = \(bind: uuid)" as SQLQueryString) }
        if let tree = filter.inTree {
            guard let root = try await tx.provider(uuid: tree) else { return nil }
            query.appendInterpolation(" AND rp.root_provider_id = \(bind: root.rootID)" as SQLQueryString)
        }
        // Upstream's order (get_all_by_filters): required traits are resolved, and no provider having them ends
        // the search with an empty list; then forbidden traits are resolved; no provider in the aggregates ends it;
        // only then are the resource classes resolved.
        let aggregateSQL = """
            SELECT rpa.resource_provider_id FROM resource_provider_aggregates rpa
            JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id WHERE pa.uuid IN
            """
        func refuseUnknownTraits(_ names: [String]) async throws -> [String: Int] {
            let traits = try await tx.traitIDs(names)
            if let missing = traits.missing.first {
                throw PlacementError.badRequest("Invalid trait(s) in \"required\" parameter: No such trait(s): \(missing).")
            }
            return traits.ids
        }
        func matchesNothing(_ condition: SQLQueryString) async throws -> Bool {
            var probe = SQLQueryString("SELECT rp.id FROM resource_providers rp WHERE 1 = 1")
            probe.appendInterpolation(condition)
            probe.appendInterpolation(unsafeRaw: " LIMIT 1")
            return try await tx.row(probe) == nil
        }
        if !filter.requiredTraits.flatMap({ $0 }).isEmpty {
            let ids = try await refuseUnknownTraits(filter.requiredTraits.flatMap { $0 })
            var condition = SQLQueryString("")
            for group in filter.requiredTraits where !group.isEmpty {
                condition.appendInterpolation(
                    " AND rp.id IN (SELECT resource_provider_id FROM resource_provider_traits WHERE trait_id IN (\(binds: group.compactMap { ids[$0] })))"
                        as SQLQueryString)
            }
            if try await matchesNothing(condition) { return nil }
            query.appendInterpolation(condition)
        }
        if !filter.forbiddenTraits.isEmpty {
            let traits = try await refuseUnknownTraits(filter.forbiddenTraits)
            let ids = filter.forbiddenTraits.compactMap { traits[$0] }
            query.appendInterpolation(
                " AND rp.id NOT IN (SELECT resource_provider_id FROM resource_provider_traits WHERE trait_id IN (\(binds: ids)))"
                    as SQLQueryString)
        }
        if filter.memberOf.contains(where: { !$0.isEmpty }) {
            var condition = SQLQueryString("")
            for group in filter.memberOf where !group.isEmpty {
                condition.appendInterpolation(
                    " AND rp.id IN (\(unsafeRaw: aggregateSQL) (\(binds: group)))" as SQLQueryString)
            }
            if try await matchesNothing(condition) { return nil }
            query.appendInterpolation(condition)
        }
        if !filter.forbiddenAggregates.isEmpty {
            query.appendInterpolation(
                " AND rp.id NOT IN (\(unsafeRaw: aggregateSQL) (\(binds: filter.forbiddenAggregates)))" as SQLQueryString)
        }
        if !filter.resources.isEmpty {
            let classes = try await tx.resourceClassIDs(filter.resources.keys)
            if let missing = classes.missing.sorted().first {
                throw PlacementError.badRequest(
                    "Invalid resource class in resources parameter: No such resource class \(missing).")
            }
            for (name, amount) in filter.resources.sorted(by: { $0.key < $1.key }) {
                let classID = classes.ids[name]!
                query.appendInterpolation(
                    """
                     AND rp.id IN (SELECT i.resource_provider_id FROM inventories i
                       WHERE i.resource_class_id = \(bind: classID)
                       AND (i.total - i.reserved) * i.allocation_ratio >= \(bind: amount) + COALESCE((SELECT SUM(a.used)
                         FROM allocations a WHERE a.resource_provider_id = i.resource_provider_id
                         AND a.resource_class_id = i.resource_class_id), 0)
                       AND i.min_unit <= \(bind: amount) AND i.max_unit >= \(bind: amount)
                       AND (\(bind: amount) % i.step_size) = 0)
                    """ as SQLQueryString)
            }
        }
        return query
    }

    /// Renames and/or re-parents a provider.
    /// - Parameters:
    ///   - parentUUID: `nil` keeps the parent unless `setParent` is true, in which case `nil` un-parents.
    ///   - allowReparent: microversion 1.37 and later may move or un-parent a provider.
    /// - Throws: `PlacementError` 404, 409 for a taken name, 400 for illegal tree changes.
    public func updateProvider(
        uuid: String, name: String, parentUUID: String?, setParent: Bool, allowReparent: Bool
    ) async throws -> ResourceProvider {
        try await updateProviderReportingStamp(
            uuid: uuid, name: name, parentUUID: parentUUID, setParent: setParent, allowReparent: allowReparent
        ).provider
    }

    /// `updateProvider`, also returning the provider's `updated_at` from before the update (`nil` when its row
    /// was never updated: upstream then sends no `Last-Modified`). As upstream, the row is stamped only when its
    /// name or parent changes (and rows of a moved subtree when their root changes).
    public func updateProviderReportingStamp(
        uuid: String, name: String, parentUUID: String?, setParent: Bool, allowReparent: Bool
    ) async throws -> (provider: ResourceProvider, previousUpdate: Double?) {
        let now = now()
        return try await database.transaction { tx in
            let current = try await tx.requireProvider(uuid: uuid, lock: true)
            let failure = "Unable to save resource provider \(uuid): Object action update failed because: "
            var newParent: ProviderRow? = nil
            var parentChanged = false
            if setParent, parentUUID != current.parentUUID {
                if let parentUUID {
                    guard let parent = try await tx.provider(uuid: parentUUID, lock: true) else {
                        throw PlacementError.badRequest("Unable to save resource provider \(uuid): Object action "
                            + "create failed because: parent provider UUID does not exist.")
                    }
                    if current.parentUUID != nil, !allowReparent {
                        throw PlacementError.badRequest(failure + "re-parenting a provider is not currently allowed.")
                    }
                    if try await Self.isDescendant(parent.id, of: current.id, tx: tx) {
                        throw PlacementError.badRequest(failure + "creating loop in the provider tree is not allowed.")
                    }
                    newParent = parent
                } else if !allowReparent {
                    throw PlacementError.badRequest(failure + "un-parenting a provider is not currently allowed.")
                }
                parentChanged = true
            }
            // As upstream, the tree checks come first; a taken name shows when the row is written.
            if name != current.name,
                try await tx.row("SELECT id FROM resource_providers WHERE name = \(bind: name)") != nil
            {
                throw PlacementError.conflict(
                    "Conflicting resource provider \(name) already exists.", code: .duplicateName)
            }
            do {
                if name != current.name || parentChanged {
                    try await tx.run(
                        "UPDATE resource_providers SET name = \(bind: name), updated_at = \(bind: now) WHERE id = \(bind: current.id)")
                }
            } catch where isUniqueViolation(error) {
                throw PlacementError.conflict(
                    "Conflicting resource provider \(name) already exists.", code: .duplicateName)
            }
            // A rename is the provider's own change: cached snapshots re-read its row (name, updated_at), which
            // `GET /resource_providers?resources=` lists.
            try await tx.recordChange(parentChanged ? .shape : .provider(current.id))
            if parentChanged {
                let newRoot = newParent?.rootID ?? current.id
                try await tx.run(
                    "UPDATE resource_providers SET parent_provider_id = \(bind: newParent?.id) WHERE id = \(bind: current.id)")
                let subtree = try await Self.subtreeIDs(current.id, tx: tx)
                try await tx.run(
                    """
                    UPDATE resource_providers SET root_provider_id = \(bind: newRoot), updated_at = \(bind: now)
                    WHERE id IN (\(binds: subtree)) AND root_provider_id <> \(bind: newRoot)
                    """)
            }
            return (try await tx.requireProvider(uuid: uuid).model, current.updatedAt)
        }
    }

    /// Deletes a provider with its inventories, traits and aggregate links.
    /// - Throws: 404 when absent, 409 when it has allocations or children.
    public func deleteProvider(uuid: String) async throws {
        try await database.transaction { tx in
            guard let current = try await tx.provider(uuid: uuid, lock: true) else {
                throw PlacementError.notFound(
                    "No resource provider with uuid \(uuid) found for delete")
            }
            if try await tx.row("SELECT id FROM resource_providers WHERE parent_provider_id = \(bind: current.id)") != nil {
                throw PlacementError.conflict(
                    "Unable to delete parent resource provider \(uuid): It has child resource providers.",
                    code: .cannotDeleteParent)
            }
            if try await tx.row("SELECT id FROM allocations WHERE resource_provider_id = \(bind: current.id) LIMIT 1") != nil {
                throw PlacementError.conflict(
                    "Unable to delete resource provider \(uuid): Resource provider has allocations.",
                    code: .providerInUse)
            }
            try await tx.deleteProviderRows(id: current.id)
            try await tx.recordChange(.shape)
        }
    }

    /// The ids of `id` and all its descendants.
    static func subtreeIDs(_ id: Int, tx: Transaction) async throws -> [Int] {
        var result = [id]
        var frontier = [id]
        while !frontier.isEmpty {
            let children = try await tx.rows(
                "SELECT id FROM resource_providers WHERE parent_provider_id IN (\(binds: frontier))"
            ).map { try $0.decode(column: "id", as: Int.self) }
            result += children
            frontier = children
        }
        return result
    }

    /// Whether `candidate` is `ancestor` itself or lies below it.
    static func isDescendant(_ candidate: Int, of ancestor: Int, tx: Transaction) async throws -> Bool {
        try await subtreeIDs(ancestor, tx: tx).contains(candidate)
    }
}
