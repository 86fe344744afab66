import AllotCore
import AllotStore
import SQLKit
import Testing

extension StoreTests {
    /// The allocation and consumer rows as text, in id order (what an upgrade must keep exactly).
    static func bookRows(_ database: Database) async throws -> [String] {
        try await database.withConnection { db in
            var rows: [String] = []
            for row in try await db.raw(
                "SELECT id, resource_provider_id, consumer_id, resource_class_id, used, created_at FROM allocations ORDER BY id"
            ).all() {
                rows.append("allocation \(try row.decode(column: "id", as: Int.self)) "
                    + "\(try row.decode(column: "resource_provider_id", as: Int.self)) "
                    + "\(try row.decode(column: "consumer_id", as: String.self)) "
                    + "\(try row.decode(column: "resource_class_id", as: Int.self)) "
                    + "\(try row.decode(column: "used", as: Int.self)) \(try row.decode(column: "created_at", as: Double.self))")
            }
            for row in try await db.raw("SELECT id, uuid, project_id, user_id, generation FROM consumers ORDER BY id").all() {
                rows.append("consumer \(try row.decode(column: "id", as: Int.self)) "
                    + "\(try row.decode(column: "uuid", as: String.self)) \(try row.decode(column: "project_id", as: Int.self)) "
                    + "\(try row.decode(column: "user_id", as: Int.self)) \(try row.decode(column: "generation", as: Int.self))")
            }
            return rows
        }
    }

    @Test("schema step 7 keeps every allocation, consumer, id and the change sequence of a step-6 database",
          arguments: TestBackend.all)
    func upgradeToStep7(backend: TestBackend) async throws {
        try await backend.withFreshLocation { location in
            let database = try await Database.open(location, logger: TestBackend.logger, migrate: false)
            let result = await outcome {
                try await database.migrate(through: 6)
                let store = SQLPlacementStore(database: database, logger: TestBackend.logger, now: { TestBackend.now })
                let node = try await makeComputeNode(store, name: "a", vcpu: 8, memory: 4096)
                let consumers = [newUUID(), newUUID(), newUUID()]
                for (index, consumer) in consumers.enumerated() {
                    try await store.replaceAllocations([allocation(consumer, [(node, .vcpu, index + 1), (node, .memoryMB, 128)])])
                }
                try await store.deleteAllocations(consumerUUID: consumers[1])
                var expected = try await store.changeSequence()
                if database.flavor == .sqlite {
                    // A step-6 binary counted in `placement_state`; a counter ahead of its log must not go back.
                    expected += 3
                    let ahead = expected
                    try await database.withConnection { db in
                        try await db.raw("UPDATE placement_state SET change_seq = \(bind: ahead) WHERE id = 1").run()
                    }
                }
                let before = try await Self.bookRows(database)
                let cached = try await store.searchState()

                try await database.migrate(through: 7)

                #expect(try await Self.bookRows(database) == before)
                #expect(try await store.changeSequence() == expected)
                if database.flavor == .sqlite {
                    let schema = try await database.withConnection { db in
                        try await db.raw("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all().reduce(
                            into: [String: String]()
                        ) { $0[try $1.decode(column: "name", as: String.self)] = try $1.decode(column: "sql", as: String?.self) }
                    }
                    #expect(schema["allocations"]?.contains("AUTOINCREMENT") == false)
                    #expect(schema["consumers"]?.contains("AUTOINCREMENT") == false)
                    #expect(schema["placement_changes"]?.contains("seq INTEGER PRIMARY KEY") == true)
                    let sequences = try await database.withConnection { db in
                        try await db.raw("SELECT name FROM sqlite_sequence WHERE name IN ('allocations', 'consumers')").all()
                    }
                    #expect(sequences.isEmpty)
                }
                // A snapshot cached before the upgrade agrees with a fresh read.
                let current = try await store.searchState(updating: cached)
                let fresh = try await store.searchState()
                #expect(current.sequence == fresh.sequence && current.snapshot.providers == fresh.snapshot.providers)

                // Writes go on: the next change number follows without a gap, new ids above every old one, and a
                // cached snapshot is patched again.
                let rowsBefore = before.count
                try await store.replaceAllocations([allocation(newUUID(), [(node, .vcpu, 1)])])
                #expect(try await store.changeSequence() == expected + 1)
                _ = try await expectPatchedMatchesFresh(store, current, patched: true)
                let after = try await Self.bookRows(database)
                #expect(Array(after.prefix(2)) == Array(before.prefix(2)))
                #expect(after.count == rowsBefore + 2)  // one allocation row and one consumer row more
                let ids = { (rows: [String], kind: String) in
                    rows.filter { $0.hasPrefix(kind + " ") }.compactMap { Int($0.split(separator: " ")[1]) }
                }
                #expect(ids(after, "allocation").max()! > ids(before, "allocation").max()!)
                #expect(ids(after, "consumer").max()! > ids(before, "consumer").max()!)
            }
            await database.close()
            try result.get()
        }
    }
}
