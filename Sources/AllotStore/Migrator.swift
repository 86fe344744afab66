import Foundation
import AllotCore
import SQLKit

/// Versioned, append-only schema migrations, applied in order at start-up, each in its own transaction.
enum Migrator {
    /// One schema step. Never edit a published step: add a new one.
    struct Step: Sendable {
        let version: Int
        let statements: @Sendable (SQLFlavor) -> [String]
    }

    static let steps: [Step] = [
        Step(version: 1, statements: schemaV1),
        Step(version: 2, statements: { _ in
            [
                // A counter every write transaction bumps, so in-memory snapshots (also in other replicas) know
                // when they are stale.
                "CREATE TABLE placement_state (id BIGINT PRIMARY KEY, change_seq BIGINT NOT NULL)",
                "INSERT INTO placement_state (id, change_seq) VALUES (1, 0)",
            ]
        }),
        Step(version: 3, statements: { _ in
            [
                // What each change sequence number changed, so a cached snapshot can re-read only those providers:
                // a provider id, 0 for names only (classes, traits), NULL for the shape (providers added, removed,
                // moved). Old rows are pruned; a snapshot older than the oldest row is read afresh.
                "CREATE TABLE placement_changes (seq BIGINT PRIMARY KEY, provider_id BIGINT)"
            ]
        }),
        Step(version: 4, statements: { _ in
            [
                // The compute ledger. A node's uuid is its resource provider's uuid; ledger_generation moves on
                // every claim or move touching the node, so an agent knows when its view is stale.
                """
                CREATE TABLE compute_nodes (
                  uuid VARCHAR(36) PRIMARY KEY, hostname VARCHAR(255) NOT NULL, host VARCHAR(255) NOT NULL,
                  driver VARCHAR(32) NOT NULL, inventories TEXT NOT NULL, traits TEXT NOT NULL, stats TEXT NOT NULL,
                  usage TEXT NOT NULL, disabled INTEGER NOT NULL, ledger_generation BIGINT NOT NULL,
                  created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX compute_nodes_host ON compute_nodes (host)",
                """
                CREATE TABLE instances (
                  uuid VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL,
                  node VARCHAR(36) NOT NULL, flavor TEXT NOT NULL, boot_from_volume INTEGER NOT NULL,
                  vm_state VARCHAR(32) NOT NULL, task_state VARCHAR(255), os_type VARCHAR(255),
                  created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX instances_node ON instances (node, vm_state)",
                """
                CREATE TABLE migrations (
                  uuid VARCHAR(36) PRIMARY KEY, instance_uuid VARCHAR(36) NOT NULL, kind VARCHAR(32) NOT NULL,
                  status VARCHAR(32) NOT NULL, in_progress INTEGER NOT NULL, source_node VARCHAR(36) NOT NULL,
                  dest_node VARCHAR(36) NOT NULL, old_flavor TEXT NOT NULL, new_flavor TEXT NOT NULL,
                  created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX migrations_instance ON migrations (instance_uuid, in_progress)",
                "CREATE INDEX migrations_source ON migrations (source_node, in_progress)",
                "CREATE INDEX migrations_dest ON migrations (dest_node, in_progress)",
            ]
        }),
        Step(version: 5, statements: { _ in
            [
                // A node's NUMA cells and PCI devices as its driver reports them, and how claims may use them
                // (JSON; NULL when none).
                "ALTER TABLE compute_nodes ADD COLUMN topology TEXT",
                "ALTER TABLE compute_nodes ADD COLUMN host_config TEXT",
                // What an instance holds of its node's topology (NUMA placement, PCI devices), and a move's
                // context: the source's (held for a revert) and the destination's.
                "ALTER TABLE instances ADD COLUMN host_claim TEXT",
                "ALTER TABLE migrations ADD COLUMN old_claim TEXT",
                "ALTER TABLE migrations ADD COLUMN new_claim TEXT",
                // Who holds what of each node's topology now, kept with the records in every claim's transaction.
                """
                CREATE TABLE host_claims (
                  consumer VARCHAR(36) NOT NULL, node VARCHAR(36) NOT NULL, claim TEXT NOT NULL,
                  PRIMARY KEY (consumer, node))
                """,
                "CREATE INDEX host_claims_node ON host_claims (node)",
            ]
        }),
        Step(version: 6, statements: { _ in
            [
                // Every allocation write sums what its providers hold of each class: with `used` in the index the
                // sum reads the index alone instead of one table row per allocation (measured on SQLite with
                // 2,500 allocations on a provider: 3.5 ms -> 1.1 ms per sum). The same prefix serves every
                // query the old index did.
                "CREATE INDEX allocations_provider_class_used ON allocations (resource_provider_id, resource_class_id, used)",
                "DROP INDEX allocations_provider_class",
            ]
        }),
        Step(version: 7, statements: { flavor in
            // SQLite only: fewer B-tree pages written per claim. Each page a transaction changes is one more frame
            // in the WAL at its commit (a 4 KiB write, copied again at the sync): measured on this store's
            // machine, a 16-page commit costs 2.3x a one-page one (`scripts/wal-pages.py`). A build wrote 16; these
            // changes take 3 away:
            // - `placement_changes.seq` becomes the rowid (it had an index of its own beside the table), and its
            //   last row the change sequence (the `placement_state` counter row is no longer written);
            // - `consumers` and `allocations` lose AUTOINCREMENT, whose `sqlite_sequence` row every insert
            //   rewrote. New ids are still the largest plus one (never below a live row's id); only the id of
            //   a deleted last row may be used again, and nothing refers to these ids across transactions.
            // Same columns in the same order; the data is copied as it is.
            guard flavor == .sqlite else { return [] }
            return [
                "CREATE TABLE placement_changes_7 (seq INTEGER PRIMARY KEY, provider_id BIGINT)",
                "INSERT INTO placement_changes_7 (seq, provider_id) SELECT seq, provider_id FROM placement_changes",
                "DROP TABLE placement_changes",
                "ALTER TABLE placement_changes_7 RENAME TO placement_changes",
                // The log's last row now carries the change sequence (`Transaction.changeSequenceQuery`): a
                // counter ahead of the log gets a row of its own (provider NULL: cached snapshots read afresh).
                """
                INSERT INTO placement_changes (seq, provider_id) SELECT change_seq, NULL FROM placement_state
                WHERE id = 1 AND change_seq > (SELECT COALESCE(MAX(seq), 0) FROM placement_changes)
                """,
                """
                CREATE TABLE consumers_7 (id INTEGER PRIMARY KEY, uuid VARCHAR(36) NOT NULL UNIQUE, project_id BIGINT NOT NULL,
                  user_id BIGINT NOT NULL, consumer_type_id BIGINT, generation BIGINT NOT NULL,
                  created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)
                """,
                "INSERT INTO consumers_7 SELECT id, uuid, project_id, user_id, consumer_type_id, generation, created_at, "
                    + "updated_at FROM consumers",
                "DROP TABLE consumers",
                "ALTER TABLE consumers_7 RENAME TO consumers",
                "CREATE INDEX consumers_project_user ON consumers (project_id, user_id)",
                """
                CREATE TABLE allocations_7 (id INTEGER PRIMARY KEY, resource_provider_id BIGINT NOT NULL,
                  consumer_id VARCHAR(36) NOT NULL, resource_class_id BIGINT NOT NULL, used BIGINT NOT NULL,
                  created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)
                """,
                "INSERT INTO allocations_7 SELECT id, resource_provider_id, consumer_id, resource_class_id, used, "
                    + "created_at, updated_at FROM allocations",
                "DROP TABLE allocations",
                "ALTER TABLE allocations_7 RENAME TO allocations",
                "CREATE INDEX allocations_provider_class_used ON allocations (resource_provider_id, resource_class_id, used)",
                "CREATE INDEX allocations_consumer ON allocations (consumer_id)",
            ]
        }),
    ]

    /// Applies every step not yet applied, then makes sure every standard class and trait is present.
    /// - Throws: ``StoreError/migration(_:)`` when a step fails.
    /// - Parameter last: stop after this schema step (tests of an upgrade from an older schema); `nil`: all.
    static func migrate(_ database: Database, through last: Int? = nil) async throws {
        let idColumn = database.flavor == .sqlite
            ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        try await database.transaction { tx in
            try await serialiseStartUps(tx)
            try await tx.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
        }
        for step in steps where step.version <= last ?? .max {
            try await database.transaction { tx in
                if database.flavor == .postgres {
                    // Serialise concurrent start-ups of several replicas.
                    try await tx.run("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                }
                let done = try await tx.row("SELECT version FROM schema_migrations WHERE version = \(bind: step.version)")
                guard done == nil else { return }
                for statement in step.statements(database.flavor) {
                    let sql = statement.replacingOccurrences(of: "{ID}", with: idColumn)
                    do {
                        try await tx.run("\(unsafeRaw: sql)")
                    } catch {
                        throw StoreError.migration("step \(step.version): \(String(reflecting: error))")
                    }
                }
                try await tx.run(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: step.version), \(bind: 0.0))")
            }
        }
        try await seedStandardNames(database)
    }

    /// Inserts any standard resource class or trait missing from the tables (new os-* releases add names).
    static func seedStandardNames(_ database: Database) async throws {
        try await database.transaction { tx in
            try await serialiseStartUps(tx)
            let present = Set(try await tx.rows("SELECT name FROM resource_classes WHERE id < 10000").map {
                try $0.decode(column: "name", as: String.self)
            })
            for (index, name) in ResourceClass.standardNames.enumerated() where !present.contains(name) {
                try await tx.run(
                    "INSERT INTO resource_classes (id, name, created_at, updated_at) VALUES (\(bind: index), \(bind: name), \(bind: 0.0), NULL)"
                )
            }
            let traits = Set(try await tx.rows("SELECT name FROM traits").map {
                try $0.decode(column: "name", as: String.self)
            })
            let missing = Trait.standardNames.filter { !traits.contains($0) }
            for chunk in stride(from: 0, to: missing.count, by: 200) {
                let names = missing[chunk..<min(chunk + 200, missing.count)]
                var query = SQLQueryString("INSERT INTO traits (name, created_at, updated_at) VALUES ")
                var first = true
                for name in names {
                    query.appendInterpolation(unsafeRaw: first ? "" : ", ")
                    query.appendInterpolation(unsafeRaw: "(")
                    query.appendInterpolation(bind: name)
                    query.appendInterpolation(unsafeRaw: ", 0, NULL)")
                    first = false
                }
                try await tx.run(query)
            }
        }
    }

    /// On PostgreSQL, waits until no other replica is creating the schema or seeding names (the lock ends with the
    /// transaction). `CREATE TABLE IF NOT EXISTS` and "insert what is missing" are not safe concurrently otherwise.
    static func serialiseStartUps(_ tx: Transaction) async throws {
        if tx.flavor == .postgres {
            try await tx.run("SELECT pg_advisory_xact_lock(7274058)")
        }
    }

    @Sendable static func schemaV1(_ flavor: SQLFlavor) -> [String] {
        [
            """
            CREATE TABLE resource_classes (id BIGINT PRIMARY KEY, name VARCHAR(255) NOT NULL UNIQUE,
              created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE traits (id {ID}, name VARCHAR(255) NOT NULL UNIQUE,
              created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE resource_providers (id {ID}, uuid VARCHAR(36) NOT NULL UNIQUE,
              name VARCHAR(200) NOT NULL UNIQUE, generation BIGINT NOT NULL,
              root_provider_id BIGINT, parent_provider_id BIGINT,
              created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)
            """,
            "CREATE INDEX resource_providers_root ON resource_providers (root_provider_id)",
            "CREATE INDEX resource_providers_parent ON resource_providers (parent_provider_id)",
            """
            CREATE TABLE inventories (id {ID}, resource_provider_id BIGINT NOT NULL, resource_class_id BIGINT NOT NULL,
              total BIGINT NOT NULL, reserved BIGINT NOT NULL, min_unit BIGINT NOT NULL, max_unit BIGINT NOT NULL,
              step_size BIGINT NOT NULL, allocation_ratio DOUBLE PRECISION NOT NULL,
              created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION,
              UNIQUE (resource_provider_id, resource_class_id))
            """,
            "CREATE INDEX inventories_class ON inventories (resource_class_id)",
            "CREATE TABLE placement_aggregates (id {ID}, uuid VARCHAR(36) NOT NULL UNIQUE)",
            """
            CREATE TABLE resource_provider_aggregates (resource_provider_id BIGINT NOT NULL, aggregate_id BIGINT NOT NULL,
              PRIMARY KEY (resource_provider_id, aggregate_id))
            """,
            "CREATE INDEX rp_aggregates_aggregate ON resource_provider_aggregates (aggregate_id)",
            """
            CREATE TABLE resource_provider_traits (resource_provider_id BIGINT NOT NULL, trait_id BIGINT NOT NULL,
              PRIMARY KEY (resource_provider_id, trait_id))
            """,
            "CREATE INDEX rp_traits_trait ON resource_provider_traits (trait_id)",
            "CREATE TABLE projects (id {ID}, external_id VARCHAR(255) NOT NULL UNIQUE)",
            "CREATE TABLE users (id {ID}, external_id VARCHAR(255) NOT NULL UNIQUE)",
            """
            CREATE TABLE consumer_types (id {ID}, name VARCHAR(255) NOT NULL UNIQUE,
              created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE consumers (id {ID}, uuid VARCHAR(36) NOT NULL UNIQUE, project_id BIGINT NOT NULL,
              user_id BIGINT NOT NULL, consumer_type_id BIGINT, generation BIGINT NOT NULL,
              created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)
            """,
            "CREATE INDEX consumers_project_user ON consumers (project_id, user_id)",
            """
            CREATE TABLE allocations (id {ID}, resource_provider_id BIGINT NOT NULL, consumer_id VARCHAR(36) NOT NULL,
              resource_class_id BIGINT NOT NULL, used BIGINT NOT NULL,
              created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)
            """,
            "CREATE INDEX allocations_provider_class ON allocations (resource_provider_id, resource_class_id)",
            "CREATE INDEX allocations_consumer ON allocations (consumer_id)",
        ]
    }
}
