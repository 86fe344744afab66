public import AllotCore
import SQLKit

/// A provider's inventories with the provider's generation and the time of the last change.
public struct ProviderInventories: Sendable {
    public var provider: ResourceProvider
    public var inventories: [String: Inventory]
    /// The latest creation/update time among the inventories; `nil` when there are none.
    public var lastModified: Double?
}

extension SQLPlacementStore {
    /// The inventories of a provider.
    /// - Throws: 404 when the provider does not exist.
    public func inventories(providerUUID: String) async throws -> ProviderInventories {
        try await database.readTransaction { tx in
            let provider = try await tx.requireProvider(uuid: providerUUID)
            let (inventories, modified) = try await Self.loadInventories(providerID: provider.id, tx: tx)
            return ProviderInventories(provider: provider.model, inventories: inventories, lastModified: modified)
        }
    }

    /// Replaces the whole inventory of a provider, checking its generation.
    /// - Throws: 404, 409 (generation; a removed class still allocated), 400 (unknown class).
    public func replaceInventories(
        providerUUID: String, generation: Int, inventories: [String: Inventory]
    ) async throws -> ProviderInventories {
        try await changeInventories(providerUUID: providerUUID, generation: generation) { _ in inventories }
    }

    /// Adds one class's inventory (`POST`), which must not exist yet.
    public func createInventory(
        providerUUID: String, generation: Int?, resourceClass: String, inventory: Inventory
    ) async throws -> ProviderInventories {
        try await changeInventories(providerUUID: providerUUID, generation: nil) { current in
            if current[resourceClass] != nil {
                throw PlacementError.concurrentUpdate(
                    "Update conflict: Inventory for \(resourceClass) on resource provider \(providerUUID) already exists.")
            }
            var next = current
            next[resourceClass] = inventory
            return next
        }
    }

    /// Changes one class's inventory (`PUT …/inventories/{class}`), which must exist.
    public func updateInventory(
        providerUUID: String, generation: Int, resourceClass: String, inventory: Inventory
    ) async throws -> ProviderInventories {
        try await changeInventories(providerUUID: providerUUID, generation: generation) { current in
            guard current[resourceClass] != nil else {
                throw PlacementError.badRequest("No inventory record with resource class for resource provider "
                    + "\(providerUUID): No inventory of class \(resourceClass) found.")
            }
            var next = current
            next[resourceClass] = inventory
            return next
        }
    }

    /// Removes one class's inventory.
    /// - Throws: 404 when there is none, 409 when it is allocated.
    public func deleteInventory(providerUUID: String, resourceClass: String) async throws {
        // Upstream resolves the class first: an unknown one is named as such.
        let known = try await database.readTransaction { tx in try await tx.resourceClassID(resourceClass) != nil }
        _ = try await changeInventories(providerUUID: providerUUID, generation: nil, inUse: .single(resourceClass)) {
            current in
            guard current[resourceClass] != nil else {
                let reason = known
                    ? "No inventory of class \(resourceClass) found for delete" : "No such resource class \(resourceClass)."
                throw PlacementError.notFound("No inventory of class \(resourceClass) found for delete: \(reason)")
            }
            var next = current
            next[resourceClass] = nil
            return next
        }
    }

    /// Removes all of a provider's inventory (microversion 1.5).
    public func deleteAllInventories(providerUUID: String) async throws {
        _ = try await changeInventories(providerUUID: providerUUID, generation: nil, inUse: .deleteAll) { _ in [:] }
    }

    /// How a refusal to remove an allocated class is worded (upstream words each operation differently).
    enum InUseWording: Sendable {
        case replace
        case deleteAll
        case single(String)
    }

    /// Loads the inventory, lets `change` compute the new one, writes the difference, bumps the generation.
    private func changeInventories(
        providerUUID: String, generation: Int?, inUse: InUseWording = .replace,
        _ change: @escaping @Sendable ([String: Inventory]) throws -> [String: Inventory]
    ) async throws -> ProviderInventories {
        let now = now()
        return try await database.transaction { tx in
            let provider = try await tx.requireProvider(uuid: providerUUID, lock: true)
            if let generation, generation != provider.generation {
                throw PlacementError.concurrentUpdate("resource provider generation conflict")
            }
            let (current, _) = try await Self.loadInventories(providerID: provider.id, tx: tx)
            let next = try change(current)
            try await Self.writeInventories(
                provider: provider, current: current, next: next, inUse: inUse, unknownClassPrefix:
                    "Unknown resource class in inventory for resource provider \(providerUUID): ", now: now, tx: tx)
            try await tx.bumpGeneration(providerID: provider.id, expected: provider.generation, now: now)
            let updated = try await tx.requireProvider(uuid: providerUUID)
            let (inventories, modified) = try await Self.loadInventories(providerID: provider.id, tx: tx)
            return ProviderInventories(provider: updated.model, inventories: inventories, lastModified: modified)
        }
    }

    /// Writes the difference between `current` and `next` for one locked provider (no generation change).
    /// - Throws: 400 for an unknown class (message starting with `unknownClassPrefix`), 409 when a removed class
    ///   is still allocated.
    static func writeInventories(
        provider: ProviderRow, current: [String: Inventory], next: [String: Inventory], inUse: InUseWording,
        unknownClassPrefix: String, now: Double, tx: Transaction
    ) async throws {
        let classes = try await tx.resourceClassIDs(next.keys)
        if let unknown = classes.missing.sorted().first {
            throw PlacementError.badRequest(unknownClassPrefix + "No such resource class \(unknown).")
        }
        let removed = current.keys.filter { next[$0] == nil }.sorted()
        if !removed.isEmpty {
            let removedIDs = try await tx.resourceClassIDs(removed).ids
            let inUseClasses = try await tx.rows(
                """
                SELECT DISTINCT rc.id, rc.name FROM allocations a JOIN resource_classes rc ON rc.id = a.resource_class_id
                WHERE a.resource_provider_id = \(bind: provider.id)
                AND a.resource_class_id IN (\(binds: Array(removedIDs.values))) ORDER BY rc.id
                """
            ).map { try $0.decode(column: "name", as: String.self) }
            if !inUseClasses.isEmpty {
                let text = "Inventory for '\(inUseClasses.joined(separator: ", "))' on resource provider "
                    + "'\(provider.uuid)' in use."
                switch inUse {
                case .replace: throw PlacementError.conflict("update conflict: " + text, code: .inventoryInUse)
                case .deleteAll: throw PlacementError.conflict(text, code: .inventoryInUse)
                case .single(let name):
                    throw PlacementError.concurrentUpdate("Unable to delete inventory of class \(name): " + text)
                }
            }
            try await tx.run(
                """
                DELETE FROM inventories WHERE resource_provider_id = \(bind: provider.id)
                AND resource_class_id IN (\(binds: Array(removedIDs.values)))
                """)
        }
        for (name, inventory) in next.sorted(by: { $0.key < $1.key }) where current[name] != inventory {
            let classID = classes.ids[name]!
            if current[name] == nil {
                try await tx.run(
                    """
                    INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, min_unit,
                      max_unit, step_size, allocation_ratio, created_at, updated_at)
                    VALUES (\(bind: provider.id), \(bind: classID), \(bind: inventory.total),
                      \(bind: inventory.reserved), \(bind: inventory.minUnit), \(bind: inventory.maxUnit),
                      \(bind: inventory.stepSize), \(bind: inventory.allocationRatio), \(bind: now), NULL)
                    """)
            } else {
                try await tx.run(
                    """
                    UPDATE inventories SET total = \(bind: inventory.total), reserved = \(bind: inventory.reserved),
                      min_unit = \(bind: inventory.minUnit), max_unit = \(bind: inventory.maxUnit),
                      step_size = \(bind: inventory.stepSize), allocation_ratio = \(bind: inventory.allocationRatio),
                      updated_at = \(bind: now)
                    WHERE resource_provider_id = \(bind: provider.id) AND resource_class_id = \(bind: classID)
                    """)
            }
        }
    }

    /// An inventory from a row with the columns of the `inventories` table.
    static func inventory(from row: any SQLRow) throws -> Inventory {
        Inventory(
            total: try row.decode(column: "total", as: Int.self),
            reserved: try row.decode(column: "reserved", as: Int.self),
            minUnit: try row.decode(column: "min_unit", as: Int.self),
            maxUnit: try row.decode(column: "max_unit", as: Int.self),
            stepSize: try row.decode(column: "step_size", as: Int.self),
            allocationRatio: try row.decode(column: "allocation_ratio", as: Double.self))
    }

    static func loadInventories(providerID: Int, tx: Transaction) async throws -> ([String: Inventory], Double?) {
        let rows = try await tx.rows(
            """
            SELECT rc.name, i.total, i.reserved, i.min_unit, i.max_unit, i.step_size, i.allocation_ratio,
              i.created_at, i.updated_at
            FROM inventories i JOIN resource_classes rc ON rc.id = i.resource_class_id
            WHERE i.resource_provider_id = \(bind: providerID)
            """)
        var result: [String: Inventory] = [:]
        var modified: Double?
        for row in rows {
            result[try row.decode(column: "name", as: String.self)] = try Self.inventory(from: row)
            let changed = try row.decode(column: "updated_at", as: Double?.self)
                ?? row.decode(column: "created_at", as: Double.self)
            modified = max(modified ?? changed, changed)
        }
        return (result, modified)
    }
}
