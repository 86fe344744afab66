public import AllotCore
import SQLKit

/// A named thing with the time it last changed (traits, resource classes).
public struct NamedRecord: Sendable, Equatable {
    public var name: String
    public var lastModified: Double
}

/// How `GET /traits` narrows the list.
public struct TraitFilter: Sendable {
    public var startsWith: String?
    public var names: [String]?
    /// `true`: only traits some provider has; `false`: only traits no provider has.
    public var associated: Bool?
    public init(startsWith: String? = nil, names: [String]? = nil, associated: Bool? = nil) {
        self.startsWith = startsWith
        self.names = names
        self.associated = associated
    }
}

extension SQLPlacementStore {
    /// The traits that pass `filter`, sorted by name.
    public func traits(_ filter: TraitFilter) async throws -> [NamedRecord] {
        try await database.readTransaction { tx in
            var query = SQLQueryString("SELECT t.name, t.created_at, t.updated_at FROM traits t WHERE 1 = 1")
            if let names = filter.names {
                guard !names.isEmpty else { return [] }
                query.appendInterpolation(" AND t.name IN (\(binds: names))" as SQLQueryString)
            }
            if let prefix = filter.startsWith {
                query.appendInterpolation(
                    " AND SUBSTR(t.name, 1, CAST(\(bind: prefix.count) AS INTEGER)) = \(bind: prefix)" as SQLQueryString)
            }
            if let associated = filter.associated {
                query.appendInterpolation(
                    unsafeRaw: associated
                        ? " AND t.id IN (SELECT trait_id FROM resource_provider_traits)"
                        : " AND t.id NOT IN (SELECT trait_id FROM resource_provider_traits)")
            }
            query.appendInterpolation(unsafeRaw: " ORDER BY t.name")
            return try await tx.rows(query).map(Self.namedRecord)
        }
    }

    /// The trait with this name, or `nil`.
    public func trait(named name: String) async throws -> NamedRecord? {
        try await database.readTransaction { tx in
            try await tx.row("SELECT name, created_at, updated_at FROM traits WHERE name = \(bind: name)")
                .map(Self.namedRecord)
        }
    }

    /// Creates a custom trait.
    /// - Returns: `true` when created, `false` when it already existed.
    public func createTrait(named name: String) async throws -> Bool {
        let now = now()
        return try await database.transaction { tx in
            if try await tx.row("SELECT id FROM traits WHERE name = \(bind: name)") != nil { return false }
            try await tx.run(
                "INSERT INTO traits (name, created_at, updated_at) VALUES (\(bind: name), \(bind: now), NULL)")
            try await tx.recordChange(.names)
            return true
        }
    }

    /// Deletes a custom trait.
    /// - Throws: 400 for a standard trait, 404 when absent, 409 when a provider has it.
    public func deleteTrait(named name: String) async throws {
        try await database.transaction { tx in
            guard let row = try await tx.row("SELECT id FROM traits WHERE name = \(bind: name)") else {
                throw PlacementError.notFound("No such trait(s): \(name).")
            }
            if !Trait.isCustomName(name) {
                throw PlacementError.badRequest("Cannot delete standard trait \(name).")
            }
            let id = try row.decode(column: "id", as: Int.self)
            if try await tx.row("SELECT trait_id FROM resource_provider_traits WHERE trait_id = \(bind: id) LIMIT 1") != nil {
                throw PlacementError.conflict("The trait \(name) is in use by a resource provider.")
            }
            try await tx.run("DELETE FROM traits WHERE id = \(bind: id)")
            try await tx.recordChange(.names)
        }
    }

    /// A provider's traits, sorted, with the provider.
    public func providerTraits(providerUUID: String) async throws -> (ResourceProvider, [String]) {
        try await database.readTransaction { tx in
            let provider = try await tx.requireProvider(uuid: providerUUID)
            return (provider.model, try await Self.traitNames(providerID: provider.id, tx: tx))
        }
    }

    /// Replaces a provider's traits, checking its generation.
    /// - Throws: 404, 409 (generation), 400 (unknown traits).
    public func setProviderTraits(
        providerUUID: String, generation: Int?, traits: [String]
    ) async throws -> (ResourceProvider, [String]) {
        let now = now()
        return try await database.transaction { tx in
            let provider = try await tx.lockedProvider(uuid: providerUUID, expecting: generation)
            let found = try await tx.traitIDs(traits)
            if !found.missing.isEmpty {
                // Upstream's handler words this one itself.
                throw PlacementError.badRequest("No such trait \(found.missing.joined(separator: ", "))")
            }
            let before = try await Self.traitNames(providerID: provider.id, tx: tx)
            if Set(before) != Set(traits) {
                try await Self.replaceTraits(providerID: provider.id, traitIDs: Array(found.ids.values), tx: tx)
                try await tx.bumpGeneration(providerID: provider.id, expected: provider.generation, now: now)
            }
            let updated = try await tx.requireProvider(uuid: providerUUID)
            return (updated.model, try await Self.traitNames(providerID: provider.id, tx: tx))
        }
    }

    static func replaceTraits(providerID: Int, traitIDs: [Int], tx: Transaction) async throws {
        try await tx.run("DELETE FROM resource_provider_traits WHERE resource_provider_id = \(bind: providerID)")
        for id in Set(traitIDs).sorted() {
            try await tx.run(
                "INSERT INTO resource_provider_traits (resource_provider_id, trait_id) VALUES (\(bind: providerID), \(bind: id))")
        }
    }

    static func traitNames(providerID: Int, tx: Transaction) async throws -> [String] {
        try await tx.rows(
            """
            SELECT t.name FROM traits t JOIN resource_provider_traits rpt ON rpt.trait_id = t.id
            WHERE rpt.resource_provider_id = \(bind: providerID) ORDER BY t.name
            """
        ).map { try $0.decode(column: "name", as: String.self) }
    }

    static func namedRecord(_ row: any SQLRow) throws -> NamedRecord {
        NamedRecord(
            name: try row.decode(column: "name", as: String.self),
            lastModified: try row.decode(column: "updated_at", as: Double?.self)
                ?? row.decode(column: "created_at", as: Double.self))
    }
}
