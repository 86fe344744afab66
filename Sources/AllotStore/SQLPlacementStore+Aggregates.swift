public import AllotCore
import SQLKit

extension SQLPlacementStore {
    /// A provider's aggregate uuids, sorted, with the provider.
    public func providerAggregates(providerUUID: String) async throws -> (ResourceProvider, [String]) {
        try await database.readTransaction { tx in
            let provider = try await tx.requireProvider(uuid: providerUUID)
            return (provider.model, try await Self.aggregateUUIDs(providerID: provider.id, tx: tx))
        }
    }

    /// Replaces a provider's aggregates; with a generation (microversion 1.19 and later) it is checked and bumped.
    /// - Parameter generation: checked and bumped when given.
    /// - Throws: 404, 409 (generation).
    public func setProviderAggregates(
        providerUUID: String, generation: Int?, aggregates: [String]
    ) async throws -> (ResourceProvider, [String]) {
        let now = now()
        return try await database.transaction { tx in
            let provider = try await tx.lockedProvider(uuid: providerUUID, expecting: generation)
            try await tx.run("DELETE FROM resource_provider_aggregates WHERE resource_provider_id = \(bind: provider.id)")
            var seen: Set<String> = []
            for uuid in aggregates where seen.insert(uuid).inserted {
                let id = try await Self.aggregateID(uuid: uuid, tx: tx)
                try await tx.run(
                    """
                    INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id)
                    VALUES (\(bind: provider.id), \(bind: id))
                    """)
            }
            if generation != nil {
                try await tx.bumpGeneration(providerID: provider.id, expected: provider.generation, now: now)
            } else {
                try await tx.recordChange(.provider(provider.id))
            }
            let updated = try await tx.requireProvider(uuid: providerUUID)
            return (updated.model, try await Self.aggregateUUIDs(providerID: provider.id, tx: tx))
        }
    }

    /// The id of an aggregate, created on first use.
    static func aggregateID(uuid: String, tx: Transaction) async throws -> Int {
        if let row = try await tx.row("SELECT id FROM placement_aggregates WHERE uuid = \(bind: uuid)") {
            return try row.decode(column: "id", as: Int.self)
        }
        try await tx.run("INSERT INTO placement_aggregates (uuid) VALUES (\(bind: uuid)) ON CONFLICT DO NOTHING")
        guard let row = try await tx.row("SELECT id FROM placement_aggregates WHERE uuid = \(bind: uuid)") else {
            throw StoreError.corrupt("aggregate vanished after insert")
        }
        return try row.decode(column: "id", as: Int.self)
    }

    static func aggregateUUIDs(providerID: Int, tx: Transaction) async throws -> [String] {
        try await tx.rows(
            """
            SELECT pa.uuid FROM placement_aggregates pa JOIN resource_provider_aggregates rpa ON rpa.aggregate_id = pa.id
            WHERE rpa.resource_provider_id = \(bind: providerID) ORDER BY pa.id
            """
        ).map { try $0.decode(column: "uuid", as: String.self) }
    }
}
