import AllotCore
import SQLKit

extension SQLPlacementStore {
    /// Every resource class, standard first (in id order), then custom.
    public func resourceClasses() async throws -> [NamedRecord] {
        try await database.readTransaction { tx in
            try await tx.rows("SELECT name, created_at, updated_at FROM resource_classes ORDER BY id")
                .map(Self.namedRecord)
        }
    }

    /// The class with this name, or `nil`.
    public func resourceClass(named name: String) async throws -> NamedRecord? {
        try await database.readTransaction { tx in
            try await tx.row("SELECT name, created_at, updated_at FROM resource_classes WHERE name = \(bind: name)")
                .map(Self.namedRecord)
        }
    }

    /// Creates a custom class.
    /// - Returns: `true` when created, `false` when it existed and `failIfExists` is false.
    /// - Throws: 409 when it exists and `failIfExists` is set.
    public func createResourceClass(named name: String, failIfExists: Bool) async throws -> Bool {
        let now = now()
        return try await database.transaction { tx in
            if try await tx.resourceClassID(name) != nil {
                if failIfExists {
                    // Upstream gives no error code here (unlike duplicate provider names).
                    throw PlacementError.conflict("Conflicting resource class already exists: \(name)")
                }
                return false
            }
            try await Self.insertCustomClass(name, now: now, tx: tx)
            return true
        }
    }

    /// Renames a custom class (microversions 1.2 to 1.6).
    /// - Throws: 400 for a standard class, 404 when absent, 409 when the new name is taken.
    public func renameResourceClass(from old: String, to new: String) async throws {
        let now = now()
        try await database.transaction { tx in
            guard let id = try await tx.resourceClassID(old) else {
                throw PlacementError.lookupFailed("No such resource class \(old).")
            }
            if ResourceClass.standardSet.contains(old) {
                throw PlacementError.badRequest("Cannot update standard resource class \(old)")
            }
            if try await tx.resourceClassID(new) != nil {
                throw PlacementError.conflict("Resource class already exists: \(new)")
            }
            try await tx.run(
                "UPDATE resource_classes SET name = \(bind: new), updated_at = \(bind: now) WHERE id = \(bind: id)")
            try await tx.recordChange(.names)
        }
    }

    /// Deletes a custom class.
    /// - Throws: 400 for a standard class, 404 when absent, 409 when inventories or allocations use it.
    public func deleteResourceClass(named name: String) async throws {
        try await database.transaction { tx in
            guard let id = try await tx.resourceClassID(name) else {
                throw PlacementError.lookupFailed("No such resource class \(name).")
            }
            if ResourceClass.standardSet.contains(name) {
                throw PlacementError.badRequest(
                    "Error in delete resource class: Cannot delete standard resource class \(name).")
            }
            let inInventory = try await tx.row(
                "SELECT id FROM inventories WHERE resource_class_id = \(bind: id) LIMIT 1")
            let inAllocation = try await tx.row(
                "SELECT id FROM allocations WHERE resource_class_id = \(bind: id) LIMIT 1")
            if inInventory != nil || inAllocation != nil {
                throw PlacementError.conflict(
                    "Error in delete resource class: Cannot delete resource class \(name). Class is in use in inventory.")
            }
            try await tx.run("DELETE FROM resource_classes WHERE id = \(bind: id)")
            try await tx.recordChange(.names)
        }
    }

    static func insertCustomClass(_ name: String, now: Double, tx: Transaction) async throws {
        let maxID = try await tx.row("SELECT MAX(id) AS m FROM resource_classes")?.decode(column: "m", as: Int?.self)
        let id = max((maxID ?? 0) + 1, 10000)
        do {
            try await tx.run(
                "INSERT INTO resource_classes (id, name, created_at, updated_at) VALUES (\(bind: id), \(bind: name), \(bind: now), NULL)")
            try await tx.recordChange(.names)
        } catch where isUniqueViolation(error) {
            throw PlacementError.conflict("Conflicting resource class already exists: \(name)")
        }
    }
}
