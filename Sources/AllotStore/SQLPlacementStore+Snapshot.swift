public import AllotCore
import SQLKit

/// What the candidate search reads, with the change sequence it was read at.
public struct SearchState: Sendable {
    public var sequence: Int
    public var snapshot: PlacementSnapshot
    public var classes: Set<String>
    public var traits: Set<String>
}

extension SQLPlacementStore {
    /// The current change sequence (bumped by every write transaction).
    public func changeSequence() async throws -> Int {
        try await database.withConnection { db in
            guard let row = try await db.raw("SELECT change_seq FROM placement_state WHERE id = 1").first() else {
                throw StoreError.corrupt("placement_state row missing")
            }
            return try row.decode(column: "change_seq", as: Int.self)
        }
    }

    /// Reads the snapshot, the known names and the change sequence in one transaction (so they agree).
    public func searchState() async throws -> SearchState {
        try await database.transaction { tx in
            guard let row = try await tx.row("SELECT change_seq FROM placement_state WHERE id = 1") else {
                throw StoreError.corrupt("placement_state row missing")
            }
            let names = try await Self.knownNames(tx: tx)
            return SearchState(
                sequence: try row.decode(column: "change_seq", as: Int.self), snapshot: try await Self.snapshot(tx: tx),
                classes: names.classes, traits: names.traits)
        }
    }

    /// Reads every provider with its inventories, usage, traits and aggregates.
    static func snapshot(tx: Transaction) async throws -> PlacementSnapshot {
        do {
            let rows = try await tx.rows(
                "SELECT id, uuid, generation, parent_provider_id, root_provider_id FROM resource_providers ORDER BY id")
            var indexByID: [Int: Int] = [:]
            var raw: [(uuid: String, generation: Int, parent: Int?, root: Int)] = []
            for (index, row) in rows.enumerated() {
                let id = try row.decode(column: "id", as: Int.self)
                indexByID[id] = index
                raw.append((try row.decode(column: "uuid", as: String.self),
                            try row.decode(column: "generation", as: Int.self),
                            try row.decode(column: "parent_provider_id", as: Int?.self),
                            try row.decode(column: "root_provider_id", as: Int?.self) ?? id))
            }
            var providers = raw.enumerated().map { index, item in
                PlacementSnapshot.Provider(
                    uuid: item.uuid, generation: item.generation, parent: item.parent.flatMap { indexByID[$0] },
                    root: indexByID[item.root] ?? index)
            }
            for row in try await tx.rows(
                """
                SELECT i.resource_provider_id, rc.name, i.total, i.reserved, i.min_unit, i.max_unit, i.step_size,
                  i.allocation_ratio
                FROM inventories i JOIN resource_classes rc ON rc.id = i.resource_class_id
                """)
            {
                guard let index = indexByID[try row.decode(column: "resource_provider_id", as: Int.self)] else { continue }
                providers[index].inventories[try row.decode(column: "name", as: String.self)] = try Self.inventory(from: row)
            }
            for row in try await tx.rows(
                """
                SELECT a.resource_provider_id, rc.name, CAST(SUM(a.used) AS BIGINT) AS used FROM allocations a
                JOIN resource_classes rc ON rc.id = a.resource_class_id GROUP BY a.resource_provider_id, rc.name
                """)
            {
                guard let index = indexByID[try row.decode(column: "resource_provider_id", as: Int.self)] else { continue }
                providers[index].used[try row.decode(column: "name", as: String.self)] =
                    try row.decode(column: "used", as: Int.self)
            }
            for row in try await tx.rows(
                """
                SELECT rpt.resource_provider_id, t.name FROM resource_provider_traits rpt JOIN traits t ON t.id = rpt.trait_id
                ORDER BY t.id
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
                JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id
                """)
            {
                guard let index = indexByID[try row.decode(column: "resource_provider_id", as: Int.self)] else { continue }
                providers[index].aggregates.insert(try row.decode(column: "uuid", as: String.self))
            }
            return PlacementSnapshot(providers: providers)
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
