public import AllotCore
import SQLKit

extension SQLPlacementStore {
    /// Reads every provider with its inventories, usage, traits and aggregates, in one transaction (so the
    /// snapshot is consistent).
    public func snapshot() async throws -> PlacementSnapshot {
        try await database.transaction { tx in
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
                providers[index].inventories[try row.decode(column: "name", as: String.self)] = Inventory(
                    total: try row.decode(column: "total", as: Int.self),
                    reserved: try row.decode(column: "reserved", as: Int.self),
                    minUnit: try row.decode(column: "min_unit", as: Int.self),
                    maxUnit: try row.decode(column: "max_unit", as: Int.self),
                    stepSize: try row.decode(column: "step_size", as: Int.self),
                    allocationRatio: try row.decode(column: "allocation_ratio", as: Double.self))
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
    public func knownNames() async throws -> (classes: Set<String>, traits: Set<String>) {
        try await database.transaction { tx in
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
