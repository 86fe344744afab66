import AllotCore
public import Logging
import SQLKit
import Synchronization

/// Placement's books in SQL: every operation is one transaction with generation checks.
///
/// Works on SQLite and PostgreSQL alike; nothing here assumes a single process.
public final class SQLPlacementStore: Sendable {
    public let database: Database
    let now: @Sendable () -> Double
    let logger: Logger

    /// - Parameters:
    ///   - database: an open, migrated database.
    ///   - now: the clock, in seconds since 1970 (injected so tests control time).
    public init(database: Database, logger: Logger, now: @escaping @Sendable () -> Double) {
        self.database = database
        self.logger = logger
        self.now = now
    }
}

/// A provider row with its parent and root resolved.
struct ProviderRow: Sendable {
    var id: Int
    var uuid: String
    var name: String
    var generation: Int
    var parentID: Int?
    var rootID: Int
    var parentUUID: String?
    var rootUUID: String
    var createdAt: Double
    var updatedAt: Double?

    var model: ResourceProvider {
        ResourceProvider(
            uuid: uuid, name: name, generation: generation, parentUUID: parentUUID, rootUUID: rootUUID,
            createdAt: createdAt, updatedAt: updatedAt ?? createdAt)
    }

    static let selectSQL = """
        SELECT rp.id, rp.uuid, rp.name, rp.generation, rp.parent_provider_id, rp.root_provider_id,
          rp.created_at, rp.updated_at, p.uuid AS parent_uuid, r.uuid AS root_uuid
        FROM resource_providers rp
        LEFT JOIN resource_providers p ON p.id = rp.parent_provider_id
        LEFT JOIN resource_providers r ON r.id = rp.root_provider_id
        """

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: Int.self)
        uuid = try row.decode(column: "uuid", as: String.self)
        name = try row.decode(column: "name", as: String.self)
        generation = try row.decode(column: "generation", as: Int.self)
        parentID = try row.decode(column: "parent_provider_id", as: Int?.self)
        rootID = try row.decode(column: "root_provider_id", as: Int?.self) ?? id
        parentUUID = try row.decode(column: "parent_uuid", as: String?.self)
        rootUUID = try row.decode(column: "root_uuid", as: String?.self) ?? uuid
        createdAt = try row.decode(column: "created_at", as: Double.self)
        updatedAt = try row.decode(column: "updated_at", as: Double?.self)
    }
}

extension Transaction {
    /// The provider with this uuid, locked for the rest of the transaction when `lock` is set.
    func provider(uuid: String, lock: Bool = false) async throws -> ProviderRow? {
        if lock, flavor == .postgres {
            try await run("SELECT id FROM resource_providers WHERE uuid = \(bind: uuid) FOR UPDATE")
        }
        return try await row("\(unsafeRaw: ProviderRow.selectSQL) WHERE rp.uuid = \(bind: uuid)").map(ProviderRow.init)
    }

    /// The provider with this uuid, or a 404 with upstream's wording.
    func requireProvider(uuid: String, lock: Bool = false) async throws -> ProviderRow {
        guard let provider = try await provider(uuid: uuid, lock: lock) else {
            throw PlacementError.lookupFailed("No resource provider with uuid \(uuid) found")
        }
        return provider
    }

    /// What a write changed, as far as cached snapshots are concerned.
    enum Change {
        /// The row (name, generation, `updated_at`), inventories, usage, traits or aggregates of one provider (by id).
        case provider(Int)
        /// Only names (resource classes, traits).
        case names
        /// Providers were added, removed or moved between trees.
        case shape

        var column: Int? {
            switch self {
            case .provider(let id): id
            case .names: 0
            case .shape: nil
            }
        }
    }

    /// The ids of the providers holding allocations of these consumers, ascending.
    func allocatedProviders(consumers: [String]) async throws -> [Int] {
        try await rows(
            """
            SELECT DISTINCT resource_provider_id FROM allocations WHERE consumer_id IN (\(binds: consumers))
            ORDER BY resource_provider_id
            """
        ).map { try $0.decode(column: "resource_provider_id", as: Int.self) }
    }

    /// How many change rows are kept: a cached snapshot older than that is read afresh.
    static let changeHistory = 8192

    /// The change sequence now, as column `change_seq`. On SQLite it is the change log's last row (its rowid):
    /// keeping it there instead of in the counter row saves that row's page at every commit, and the one writer
    /// numbers the rows without gaps. On PostgreSQL the counter row stays: its row lock orders concurrent writers'
    /// numbers. The log's newest row is never pruned.
    static func changeSequenceQuery(_ flavor: SQLFlavor) -> SQLQueryString {
        switch flavor {
        case .sqlite: "SELECT COALESCE(MAX(seq), 0) AS change_seq FROM placement_changes"
        case .postgres: "SELECT change_seq FROM placement_state WHERE id = 1"
        }
    }

    /// The current change sequence, read in this transaction.
    func changeSequence() async throws -> Int {
        guard let row = try await row(Self.changeSequenceQuery(flavor)) else {
            throw StoreError.corrupt("placement_state row missing")
        }
        return try row.decode(column: "change_seq", as: Int.self)
    }

    /// Records that the books changed, so that cached snapshots (in any replica) are refreshed.
    ///
    /// On PostgreSQL the change is numbered when the transaction ends (``numberChanges()``): the counter row's lock,
    /// which every writer takes, is then held from there to the commit only, not across the rest of the
    /// transaction's statements (each a round trip to the server).
    func recordChange(_ change: Change) async throws {
        switch flavor {
        case .sqlite:
            guard let row = try await row(
                """
                INSERT INTO placement_changes (seq, provider_id)
                SELECT COALESCE(MAX(seq), 0) + 1, \(bind: change.column) FROM placement_changes RETURNING seq
                """)
            else { throw StoreError.corrupt("placement_changes insert returned nothing") }
            try await pruneChanges(through: try row.decode(column: "seq", as: Int.self), count: 1)
        case .postgres:
            if let shared {
                shared.changes.withLock { $0.append(change.column) }
            } else {
                try await numberChanges([change.column])
            }
        }
    }

    /// Numbers the changes this transaction recorded and logs them (PostgreSQL; called just before `COMMIT`):
    /// one statement that moves the counter on by their count, under its row lock, and inserts their rows.
    func numberChanges() async throws {
        guard let pending = shared?.changes.withLock({ changes in defer { changes = [] }; return changes }),
            !pending.isEmpty
        else { return }
        try await numberChanges(pending)
    }

    private func numberChanges(_ columns: [Int?]) async throws {
        var values = SQLQueryString("")
        for (index, column) in columns.enumerated() {
            values.appendInterpolation(unsafeRaw: index == 0 ? "(" : ", (")
            values.appendInterpolation(bind: index + 1)
            values.appendInterpolation(unsafeRaw: "::bigint, ")
            values.appendInterpolation(bind: column)
            values.appendInterpolation(unsafeRaw: "::bigint)")
        }
        guard let row = try await row(
            """
            WITH counter AS (
              UPDATE placement_state SET change_seq = change_seq + \(bind: columns.count) WHERE id = 1 RETURNING change_seq)
            INSERT INTO placement_changes (seq, provider_id)
            SELECT counter.change_seq - \(bind: columns.count) + changes.ordinal, changes.provider_id
            FROM counter, (VALUES \(values)) AS changes (ordinal, provider_id)
            RETURNING (SELECT change_seq FROM counter) AS change_seq
            """)
        else {
            throw StoreError.corrupt("placement_state row missing")
        }
        try await pruneChanges(through: try row.decode(column: "change_seq", as: Int.self), count: columns.count)
    }

    /// Drops change rows older than ``changeHistory`` each time the sequence passes a multiple of 1024.
    private func pruneChanges(through last: Int, count: Int) async throws {
        guard last / 1024 > (last - count) / 1024 else { return }
        try await run("DELETE FROM placement_changes WHERE seq <= \(bind: last - Self.changeHistory)")
    }

    /// The provider, locked, after checking the generation the client sent (when it sent one).
    /// - Throws: 404 when absent, `placement.concurrent_update` when the generation moved on.
    func lockedProvider(uuid: String, expecting generation: Int?) async throws -> ProviderRow {
        let provider = try await requireProvider(uuid: uuid, lock: true)
        if let generation, generation != provider.generation {
            throw PlacementError.concurrentUpdate(
                "Resource provider's generation already changed. Please update the generation and try again.")
        }
        return provider
    }

    /// Bumps a provider's generation if it still is `expected`.
    /// - Returns: the new generation.
    /// - Throws: `placement.concurrent_update` when another write got there first.
    @discardableResult
    func bumpGeneration(providerID: Int, expected: Int, now: Double) async throws -> Int {
        let updated = try await row(
            """
            UPDATE resource_providers SET generation = generation + 1, updated_at = \(bind: now)
            WHERE id = \(bind: providerID) AND generation = \(bind: expected) RETURNING generation
            """)
        guard let updated else {
            throw PlacementError.concurrentUpdate(
                "resource provider generation conflict: the resource provider was updated by another request; "
                    + "please retry")
        }
        try await recordChange(.provider(providerID))
        return try updated.decode(column: "generation", as: Int.self)
    }

    /// The id of a resource class by name, or `nil`.
    func resourceClassID(_ name: String) async throws -> Int? {
        try await row("SELECT id FROM resource_classes WHERE name = \(bind: name)")?.decode(column: "id", as: Int.self)
    }

    /// Ids for every named class; names that do not exist are returned in `missing`.
    func resourceClassIDs(_ names: some Collection<String>) async throws -> (ids: [String: Int], missing: [String]) {
        guard !names.isEmpty else { return ([:], []) }
        let rows = try await rows(
            "SELECT id, name FROM resource_classes WHERE name IN (\(binds: Array(Set(names)).sorted()))")
        var ids: [String: Int] = [:]
        for row in rows { ids[try row.decode(column: "name", as: String.self)] = try row.decode(column: "id", as: Int.self) }
        return (ids, names.filter { ids[$0] == nil })
    }

    /// Ids for every named trait; names that do not exist are returned in `missing`.
    func traitIDs(_ names: some Collection<String>) async throws -> (ids: [String: Int], missing: [String]) {
        guard !names.isEmpty else { return ([:], []) }
        let rows = try await rows("SELECT id, name FROM traits WHERE name IN (\(binds: Array(Set(names)).sorted()))")
        var ids: [String: Int] = [:]
        for row in rows { ids[try row.decode(column: "name", as: String.self)] = try row.decode(column: "id", as: Int.self) }
        return (ids, names.filter { ids[$0] == nil }.sorted())
    }

    /// What a provider's allocations add up to, by class name (classes with no allocation are left out).
    func providerUsage(providerID: Int) async throws -> [String: Int] {
        var result: [String: Int] = [:]
        for row in try await rows(
            """
            SELECT rc.name, u.used FROM (SELECT resource_class_id, CAST(SUM(used) AS BIGINT) AS used FROM allocations
            WHERE resource_provider_id = \(bind: providerID) GROUP BY resource_class_id) u
            JOIN resource_classes rc ON rc.id = u.resource_class_id
            """)
        {
            result[try row.decode(column: "name", as: String.self)] = try row.decode(column: "used", as: Int.self)
        }
        return result
    }

    /// Deletes a provider's row with its inventories, traits and aggregate links (the caller checks that nothing is
    /// allocated there and records the change).
    func deleteProviderRows(id: Int) async throws {
        try await run("DELETE FROM inventories WHERE resource_provider_id = \(bind: id)")
        try await run("DELETE FROM resource_provider_traits WHERE resource_provider_id = \(bind: id)")
        try await run("DELETE FROM resource_provider_aggregates WHERE resource_provider_id = \(bind: id)")
        try await run("DELETE FROM resource_providers WHERE id = \(bind: id)")
    }

    /// Creates the custom resource classes and traits among these names that do not exist yet (Nova's report
    /// client does the same for what a compute node reports).
    /// - Throws: ``ComputeError/invalidRequest(_:)`` for a missing class that is not custom.
    func createCustomNames(classes: some Collection<String>, traits: Set<String>, now: Double) async throws {
        for name in try await resourceClassIDs(classes).missing.sorted() {
            guard ResourceClass.isCustomName(name) else { throw ComputeError.invalidRequest("no such resource class \(name)") }
            try await SQLPlacementStore.insertCustomClass(name, now: now, tx: self)
        }
        for name in try await traitIDs(traits).missing where Trait.isCustomName(name) {
            try await run("INSERT INTO traits (name, created_at, updated_at) VALUES (\(bind: name), \(bind: now), NULL)")
            try await recordChange(.names)
        }
    }

    /// Id and generation of the providers with these uuids, locked in id order (PostgreSQL), by uuid.
    func lockedProviderGenerations(_ uuids: Set<String>) async throws -> [String: (id: Int, generation: Int)] {
        guard !uuids.isEmpty else { return [:] }
        var result: [String: (id: Int, generation: Int)] = [:]
        for row in try await rows(
            "SELECT id, uuid, generation FROM resource_providers WHERE uuid IN (\(binds: uuids.sorted())) ORDER BY id\(unsafeRaw: forUpdate)")
        {
            result[try row.decode(column: "uuid", as: String.self)] =
                (try row.decode(column: "id", as: Int.self), try row.decode(column: "generation", as: Int.self))
        }
        return result
    }

    /// Inserts a row and returns its new id.
    func insertReturningID(_ query: SQLQueryString) async throws -> Int {
        var query = query
        query.appendInterpolation(unsafeRaw: " RETURNING id")
        guard let row = try await row(query) else { throw StoreError.corrupt("insert returned no id") }
        return try row.decode(column: "id", as: Int.self)
    }
}
