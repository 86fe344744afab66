public import AllotCore
import SQLKit

/// One consumer's allocations as Placement shows them.
public struct ConsumerAllocations: Sendable {
    public var consumer: Consumer?
    /// Amounts by provider uuid, then by class.
    public var byProvider: [String: [String: Int]]
    /// The providers in the order their allocations were written (as upstream lists them).
    public var providerOrder: [String]
    /// The current generation of each provider in `byProvider`.
    public var providerGenerations: [String: Int]
    public var lastModified: Double?
}

/// The allocations against one provider, by consumer.
public struct ProviderAllocations: Sendable {
    public var provider: ResourceProvider
    public var byConsumer: [String: [String: Int]]
    public var consumerGenerations: [String: Int?]
    public var lastModified: Double?
}

extension SQLPlacementStore {
    /// A consumer's allocations (empty when the consumer is unknown).
    public func allocations(consumerUUID: String) async throws -> ConsumerAllocations {
        try await database.readTransaction { tx in
            let consumer = try await Self.consumer(uuid: consumerUUID, tx: tx)
            let rows = try await tx.rows(
                """
                SELECT rp.uuid AS rp_uuid, rp.generation, rc.name, a.used, a.created_at, a.updated_at
                FROM allocations a JOIN resource_providers rp ON rp.id = a.resource_provider_id
                JOIN resource_classes rc ON rc.id = a.resource_class_id
                WHERE a.consumer_id = \(bind: consumerUUID) ORDER BY a.id
                """)
            var result = ConsumerAllocations(
                consumer: consumer?.model, byProvider: [:], providerOrder: [], providerGenerations: [:],
                lastModified: nil)
            for row in rows {
                let provider = try row.decode(column: "rp_uuid", as: String.self)
                if result.byProvider[provider] == nil { result.providerOrder.append(provider) }
                result.byProvider[provider, default: [:]][try row.decode(column: "name", as: String.self)] =
                    try row.decode(column: "used", as: Int.self)
                result.providerGenerations[provider] = try row.decode(column: "generation", as: Int.self)
                let changed = try row.decode(column: "updated_at", as: Double?.self)
                    ?? row.decode(column: "created_at", as: Double.self)
                result.lastModified = max(result.lastModified ?? changed, changed)
            }
            return result
        }
    }

    /// The allocations against a provider, by consumer.
    /// - Throws: 404 when the provider does not exist.
    public func allocations(providerUUID: String) async throws -> ProviderAllocations {
        try await database.readTransaction { tx in
            let provider = try await tx.requireProvider(uuid: providerUUID)
            let rows = try await tx.rows(
                """
                SELECT a.consumer_id, rc.name, a.used, a.created_at, a.updated_at, c.generation FROM allocations a
                JOIN resource_classes rc ON rc.id = a.resource_class_id
                LEFT JOIN consumers c ON c.uuid = a.consumer_id
                WHERE a.resource_provider_id = \(bind: provider.id)
                """)
            var result = ProviderAllocations(
                provider: provider.model, byConsumer: [:], consumerGenerations: [:], lastModified: nil)
            for row in rows {
                result.consumerGenerations[try row.decode(column: "consumer_id", as: String.self)] =
                    try row.decode(column: "generation", as: Int?.self)
                result.byConsumer[try row.decode(column: "consumer_id", as: String.self), default: [:]][
                    try row.decode(column: "name", as: String.self)] = try row.decode(column: "used", as: Int.self)
                let changed = try row.decode(column: "updated_at", as: Double?.self)
                    ?? row.decode(column: "created_at", as: Double.self)
                result.lastModified = max(result.lastModified ?? changed, changed)
            }
            return result
        }
    }

    /// Replaces the allocations of every consumer in `requests`, as upstream does it.
    ///
    /// First the consumers are made to exist (generations checked, missing ones created at generation 0, committed
    /// on their own), then the providers are looked up (an unknown one is a 400 that leaves the consumers created);
    /// then, in one transaction, the consumers' owners are updated, their old allocations removed, every new amount
    /// checked against the inventories' unit rules and free capacity and written; consumers whose records were
    /// wiped are deleted. When that fails, the consumers created by this write are deleted again.
    /// - Throws: 400 (unknown provider or class), 409 (capacity, missing inventory, consumer generation).
    /// - Parameter unknownClassPrefix: how the refusal of an unknown class begins (upstream words `PUT` and `POST`
    ///   differently).
    public func replaceAllocations(
        _ requests: [ConsumerAllocationRequest], unknownClassPrefix: String = "Unable to allocate inventory: "
    ) async throws {
        let now = now()
        let ensured = try await ensureConsumers(requests, now: now)
        do {
            try await database.transaction { tx in
                try await AllocationWriter(tx: tx, now: now, unknownClassPrefix: unknownClassPrefix)
                    .replace(requests, consumers: ensured)
            }
        } catch {
            try await deleteCreatedConsumers(ensured)
            throw error
        }
    }

    /// The first phases of an allocation write, committed on their own: `before` (checks that must refuse before
    /// any consumer is made), the consumers, then the providers' existence.
    func ensureConsumers(
        _ requests: [ConsumerAllocationRequest], now: Double,
        before: (@Sendable (Transaction) async throws -> Void)? = nil
    ) async throws -> [String: EnsuredConsumer] {
        let (ensured, refusal) = try await database.transaction { tx in
            try await before?(tx)
            let ensured = try await AllocationWriter.ensureConsumers(requests, tx: tx, now: now)
            return (ensured, try await AllocationWriter.unknownProvider(requests, tx: tx))
        }
        if let refusal { throw refusal }
        return ensured
    }

    /// Deletes the consumers a failed write created (when they still hold nothing).
    func deleteCreatedConsumers(_ ensured: [String: EnsuredConsumer]) async throws {
        let created = ensured.filter(\.value.created).keys.sorted()
        guard !created.isEmpty else { return }
        try await database.transaction { tx in
            try await tx.run(
                """
                DELETE FROM consumers WHERE uuid IN (\(binds: created))
                  AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.consumer_id = consumers.uuid)
                """)
        }
    }

    /// Deletes all of a consumer's allocations and the consumer.
    /// - Throws: 404 when it has none.
    public func deleteAllocations(consumerUUID: String) async throws {
        try await database.transaction { tx in
            let providers = try await tx.allocatedProviders(consumers: [consumerUUID])
            guard !providers.isEmpty else {
                throw PlacementError.notFound("No allocations for consumer '\(consumerUUID)'")
            }
            try await tx.run("DELETE FROM allocations WHERE consumer_id = \(bind: consumerUUID)")
            try await tx.run("DELETE FROM consumers WHERE uuid = \(bind: consumerUUID)")
            for provider in providers { try await tx.recordChange(.provider(provider)) }
        }
    }

    /// A consumer row, with its project, user and type resolved.
    static func consumer(uuid: String, tx: Transaction, lock: Bool = false) async throws -> ConsumerRow? {
        if lock, tx.flavor == .postgres {
            try await tx.run("SELECT id FROM consumers WHERE uuid = \(bind: uuid) FOR UPDATE")
        }
        return try await tx.row(
            """
            SELECT c.id, c.uuid, c.generation, c.created_at, c.updated_at, p.external_id AS project,
              u.external_id AS user_external, ct.name AS consumer_type
            FROM consumers c JOIN projects p ON p.id = c.project_id JOIN users u ON u.id = c.user_id
            LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id
            WHERE c.uuid = \(bind: uuid)
            """
        ).map(ConsumerRow.init)
    }
}

/// A consumer as stored.
struct ConsumerRow: Sendable {
    var id: Int
    var uuid: String
    var generation: Int
    var owner: ConsumerOwner
    var updatedAt: Double

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: Int.self)
        uuid = try row.decode(column: "uuid", as: String.self)
        generation = try row.decode(column: "generation", as: Int.self)
        owner = ConsumerOwner(
            projectID: try row.decode(column: "project", as: String.self),
            userID: try row.decode(column: "user_external", as: String.self),
            consumerType: try row.decode(column: "consumer_type", as: String?.self))
        updatedAt = try row.decode(column: "updated_at", as: Double?.self)
            ?? row.decode(column: "created_at", as: Double.self)
    }

    var model: Consumer { Consumer(uuid: uuid, owner: owner, generation: generation, updatedAt: updatedAt) }
}
