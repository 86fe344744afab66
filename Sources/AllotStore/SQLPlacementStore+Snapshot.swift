public import AllotCore
import SQLKit

/// What the candidate search reads, with the change sequence it was read at.
public struct SearchState: Sendable {
    public var sequence: Int
    public var snapshot: PlacementSnapshot
    public var classes: Set<String>
    public var traits: Set<String>
    /// Snapshot index of each provider, by database id.
    var indexByID: [Int: Int]
    /// When this state was patched from an older one: the snapshot indexes of the providers re-read (every other
    /// provider is unchanged). `nil` when it was read afresh.
    public var changedIndexes: [Int]?

    /// Whether this state was patched from an older one rather than read afresh.
    public var patched: Bool { changedIndexes != nil }
}

extension SQLPlacementStore {
    /// The current change sequence (bumped by every write transaction).
    public func changeSequence() async throws -> Int {
        let flavor = database.flavor
        // A single statement needs no transaction of its own; it reads as a transaction does.
        return try await database.withReadConnection { db in try await Transaction(db: db, flavor: flavor).changeSequence() }
    }

    /// Reads the snapshot, the known names and the change sequence in one transaction (so they agree).
    ///
    /// Given an older state, it re-reads only the providers changed since (from `placement_changes`) and patches
    /// them in; it reads everything afresh when the history no longer reaches back that far, when providers were
    /// added, removed or moved, or when so many changed that a full read is as cheap.
    public func searchState(updating cached: SearchState? = nil) async throws -> SearchState {
        try await database.readTransaction { tx in
            let sequence = try await tx.changeSequence()
            if let cached, cached.sequence == sequence { return cached }
            let names = try await Self.knownNames(tx: tx)
            if let cached, cached.sequence < sequence,
                let patched = try await Self.patch(cached, to: sequence, tx: tx)
            {
                return SearchState(
                    sequence: sequence, snapshot: patched.snapshot, classes: names.classes, traits: names.traits,
                    indexByID: cached.indexByID, changedIndexes: patched.changed)
            }
            let (snapshot, indexByID) = try await Self.snapshot(tx: tx)
            return SearchState(
                sequence: sequence, snapshot: snapshot, classes: names.classes, traits: names.traits,
                indexByID: indexByID, changedIndexes: nil)
        }
    }

    /// `cached`'s snapshot with the providers changed up to `sequence` re-read, or `nil` when that is not possible.
    static func patch(
        _ cached: SearchState, to sequence: Int, tx: Transaction
    ) async throws -> (snapshot: PlacementSnapshot, changed: [Int])? {
        let changes = try await tx.rows(
            """
            SELECT seq, provider_id FROM placement_changes WHERE seq > \(bind: cached.sequence)
            AND seq <= \(bind: sequence) ORDER BY seq
            """)
        guard changes.count == sequence - cached.sequence else { return nil }
        var changed: Set<Int> = []
        for change in changes {
            guard let provider = try change.decode(column: "provider_id", as: Int?.self) else { return nil }
            if provider > 0 { changed.insert(provider) }
        }
        var providers = cached.snapshot.providers
        guard changed.count <= max(256, providers.count / 8) else { return nil }
        if changed.isEmpty { return (cached.snapshot, []) }
        let ids = changed.sorted()
        let rows = try await tx.rows(
            """
            SELECT id, name, generation, parent_provider_id, root_provider_id, created_at, updated_at
            FROM resource_providers WHERE id IN (\(binds: ids))
            """)
        guard rows.count == ids.count else { return nil }
        for row in rows {
            let id = try row.decode(column: "id", as: Int.self)
            guard let index = cached.indexByID[id] else { return nil }
            let parentID = try row.decode(column: "parent_provider_id", as: Int?.self)
            let parent = parentID.flatMap { cached.indexByID[$0] }
            let root = cached.indexByID[try row.decode(column: "root_provider_id", as: Int?.self) ?? id]
            guard (parentID == nil) == (parent == nil), parent == providers[index].parent, root == providers[index].root
            else { return nil }
            providers[index].generation = try row.decode(column: "generation", as: Int.self)
            providers[index].name = try row.decode(column: "name", as: String.self)
            providers[index].updatedAt = try Self.lastChange(row)
            providers[index].inventories = [:]
            providers[index].used = [:]
            providers[index].traits = []
            providers[index].orderedTraits = []
            providers[index].aggregates = []
        }
        try await fill(&providers, indexByID: cached.indexByID, only: ids, tx: tx)
        return (PlacementSnapshot(providers: providers), ids.map { cached.indexByID[$0]! })
    }

    /// Reads every provider with its inventories, usage, traits and aggregates.
    static func snapshot(tx: Transaction) async throws -> (PlacementSnapshot, [Int: Int]) {
        // In id order: snapshot indexes then sort as ids do, which is the order `GET /resource_providers` lists
        // (a patch never adds, removes or reorders providers).
        let rows = try await tx.rows(
            """
            SELECT id, uuid, name, generation, parent_provider_id, root_provider_id, created_at, updated_at
            FROM resource_providers ORDER BY id
            """)
        var indexByID: [Int: Int] = [:]
        var raw: [(uuid: String, name: String, updatedAt: Double, generation: Int, parent: Int?, root: Int)] = []
        for (index, row) in rows.enumerated() {
            let id = try row.decode(column: "id", as: Int.self)
            indexByID[id] = index
            raw.append((try row.decode(column: "uuid", as: String.self),
                        try row.decode(column: "name", as: String.self),
                        try Self.lastChange(row),
                        try row.decode(column: "generation", as: Int.self),
                        try row.decode(column: "parent_provider_id", as: Int?.self),
                        try row.decode(column: "root_provider_id", as: Int?.self) ?? id))
        }
        var providers = raw.enumerated().map { index, item in
            PlacementSnapshot.Provider(
                uuid: item.uuid, name: item.name, updatedAt: item.updatedAt, generation: item.generation,
                parent: item.parent.flatMap { indexByID[$0] }, root: indexByID[item.root] ?? index)
        }
        try await fill(&providers, indexByID: indexByID, only: nil, tx: tx)
        return (PlacementSnapshot(providers: providers), indexByID)
    }

    /// A provider row's last change as the API reports it: `updated_at`, or `created_at` for a row never updated
    /// (as `ProviderRow.model`).
    static func lastChange(_ row: any SQLRow) throws -> Double {
        try row.decode(column: "updated_at", as: Double?.self) ?? row.decode(column: "created_at", as: Double.self)
    }

    /// Reads the inventories, usage, traits and aggregates of every provider, or of the providers `only` names
    /// (database ids), into `providers`.
    static func fill(
        _ providers: inout [PlacementSnapshot.Provider], indexByID: [Int: Int], only ids: [Int]?, tx: Transaction
    ) async throws {
        func restrict(_ column: String, where isFirst: Bool) -> SQLQueryString {
            guard let ids else { return "" }
            return "\(unsafeRaw: isFirst ? "WHERE" : "AND") \(unsafeRaw: column) IN (\(binds: ids))"
        }
        for row in try await tx.rows(
            """
            SELECT i.resource_provider_id, rc.name, i.total, i.reserved, i.min_unit, i.max_unit, i.step_size,
              i.allocation_ratio
            FROM inventories i JOIN resource_classes rc ON rc.id = i.resource_class_id
            \(restrict("i.resource_provider_id", where: true))
            """)
        {
            guard let index = indexByID[try row.decode(column: "resource_provider_id", as: Int.self)] else { continue }
            providers[index].inventories[try row.decode(column: "name", as: String.self)] = try Self.inventory(from: row)
        }
        for row in try await tx.rows(
            """
            SELECT a.resource_provider_id, rc.name, CAST(SUM(a.used) AS BIGINT) AS used FROM allocations a
            JOIN resource_classes rc ON rc.id = a.resource_class_id \(restrict("a.resource_provider_id", where: true))
            GROUP BY a.resource_provider_id, rc.name
            """)
        {
            guard let index = indexByID[try row.decode(column: "resource_provider_id", as: Int.self)] else { continue }
            providers[index].used[try row.decode(column: "name", as: String.self)] =
                try row.decode(column: "used", as: Int.self)
        }
        for row in try await tx.rows(
            """
            SELECT rpt.resource_provider_id, t.name FROM resource_provider_traits rpt JOIN traits t ON t.id = rpt.trait_id
            \(restrict("rpt.resource_provider_id", where: true)) ORDER BY t.id
            """)
        {
            guard let index = indexByID[try row.decode(column: "resource_provider_id", as: Int.self)] else { continue }
            let name = try row.decode(column: "name", as: String.self)
            providers[index].traits.insert(name)
            providers[index].orderedTraits.append(name)
        }
        for row in try await tx.rows(
            """
            SELECT rpa.resource_provider_id, pa.uuid FROM resource_provider_aggregates rpa
            JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id \(restrict("rpa.resource_provider_id", where: true))
            """)
        {
            guard let index = indexByID[try row.decode(column: "resource_provider_id", as: Int.self)] else { continue }
            providers[index].aggregates.insert(try row.decode(column: "uuid", as: String.self))
        }
    }
}

extension SQLPlacementStore {
    /// Every resource class name and trait name that exists.
    static func knownNames(tx: Transaction) async throws -> (classes: Set<String>, traits: Set<String>) {
        do {
            let classes = try await tx.rows("SELECT name FROM resource_classes").map {
                try $0.decode(column: "name", as: String.self)
            }
            let traits = try await tx.rows("SELECT name FROM traits").map {
                try $0.decode(column: "name", as: String.self)
            }
            return (Set(classes), Set(traits))
        }
    }
}
