import AllotCore
import AllotStore
import Foundation
import Synchronization
import Testing

extension StoreTests {
    @Test("data survives closing and reopening the database", arguments: TestBackend.shared)
    func durability(backend: TestBackend) async throws {
        try await backend.withFreshLocation { location in
            let rp = newUUID()
            let consumer = newUUID()
            let aggregate = newUUID()

            let first = try await Database.open(location, logger: TestBackend.logger)
            let writer = SQLPlacementStore(database: first, logger: TestBackend.logger, now: { TestBackend.now })
            let written = await outcome {
                _ = try await writer.createProvider(uuid: rp, name: "cn", parentUUID: nil)
                #expect(try await writer.createResourceClass(named: "CUSTOM_FPGA", failIfExists: true))
                #expect(try await writer.createTrait(named: "CUSTOM_GOLD"))
                _ = try await writer.replaceInventories(
                    providerUUID: rp, generation: 0,
                    inventories: ["VCPU": Inventory(total: 8), "CUSTOM_FPGA": Inventory(total: 1)])
                _ = try await writer.setProviderTraits(providerUUID: rp, generation: 1, traits: ["CUSTOM_GOLD"])
                _ = try await writer.setProviderAggregates(providerUUID: rp, generation: 2, aggregates: [aggregate])
                try await writer.replaceAllocations([allocation(consumer, [(rp, .vcpu, 3)], generation: .new)])
            }
            await first.close()
            try written.get()

            let second = try await Database.open(location, logger: TestBackend.logger)
            let reader = SQLPlacementStore(database: second, logger: TestBackend.logger, now: { TestBackend.now })
            let read = await outcome { () async throws -> Void in
                #expect(try await reader.provider(uuid: rp)?.generation == 4)
                #expect(
                    try await reader.inventories(providerUUID: rp).inventories
                        == ["VCPU": Inventory(total: 8), "CUSTOM_FPGA": Inventory(total: 1)])
                #expect(try await reader.providerTraits(providerUUID: rp).1 == ["CUSTOM_GOLD"])
                #expect(try await reader.providerAggregates(providerUUID: rp).1 == [aggregate])
                #expect(try await reader.allocations(consumerUUID: consumer).byProvider == [rp: ["VCPU": 3]])
                #expect(try await reader.allocations(consumerUUID: consumer).consumer?.owner == projectA)
                // Reopening migrates nothing twice and seeds nothing twice.
                #expect(
                    try await reader.resourceClasses().map(\.name) == ResourceClass.standardNames + ["CUSTOM_FPGA"])
                #expect(try await reader.traits(TraitFilter()).count == AllotCore.Trait.standardNames.count + 1)
            }
            await second.close()
            try read.get()
        }
    }

    @Test("the SQLite WAL starts again from its beginning while commits keep coming")
    func walRewindsUnderSteadyWrites() async throws {
        try await TestBackend.sqliteFile.withFreshLocation { location in
            guard case .sqliteFile(let path) = location else { return }
            let database = try await Database.open(location, logger: TestBackend.logger)
            let store = SQLPlacementStore(database: database, logger: TestBackend.logger, now: { TestBackend.now })
            let commits = 400
            let checked = await outcome { () async throws -> Void in
                // One writer commits back to back while checkpoint rounds run beside it. A checkpoint that only
                // copies frames beside the writer never catches up with it, and SQLite then never rewinds the WAL:
                // every commit would append (at least two pages each, over 3 MB here).
                let finished = WriterDone()
                let writer = Task {
                    defer { finished.value.withLock { $0 = true } }
                    for i in 0..<commits { _ = try await store.createTrait(named: "CUSTOM_T\(i)") }
                }
                var rounds = 0
                while !finished.value.withLock({ $0 }) || rounds == 0 {
                    try await database.checkpointWAL()
                    rounds += 1
                }
                try await writer.value
                let walBytes = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? 0
                #expect(walBytes > 0)
                #expect(walBytes < commits * 4096, "the WAL grew to \(walBytes) bytes over \(rounds) checkpoint rounds")
                // After a round and one more commit the WAL holds that commit alone.
                try await database.checkpointWAL()
                _ = try await store.createTrait(named: "CUSTOM_LAST")
                #expect(try await database.walFrames() < 16)
            }
            await database.close()
            try checked.get()
            // Nothing was lost on the way.
            let reopened = try await Database.open(location, logger: TestBackend.logger)
            let reader = SQLPlacementStore(database: reopened, logger: TestBackend.logger, now: { TestBackend.now })
            let read = await outcome { try await reader.traits(TraitFilter()).count }
            await reopened.close()
            #expect(try read.get() == AllotCore.Trait.standardNames.count + commits + 1)
        }
    }

    // SQLite is left out: one process per SQLite file is the supported set-up (concurrent openers in one process
    // would wait for each other's locks on the cooperative threads); replicas share PostgreSQL.
    @Test(
        "several replicas may open (and migrate) a new PostgreSQL database at the same time",
        .enabled(if: TestBackend.postgresURL != nil, "set ALLOT_TEST_POSTGRES_URL to run the suite on PostgreSQL"))
    func concurrentOpen() async throws {
        let url = try #require(TestBackend.postgresURL)
        try await TestBackend.postgres(url: url).withFreshLocation { location in
            let opened = await withTaskGroup(of: Result<Database, any Error>.self) { group in
                for _ in 0..<4 {
                    group.addTask { await outcome { try await Database.open(location, logger: TestBackend.logger) } }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            var databases: [Database] = []
            for result in opened {
                switch result {
                case .success(let database): databases.append(database)
                case .failure(let error): Issue.record("open failed: \(String(reflecting: error))")
                }
            }
            for database in databases {
                let store = SQLPlacementStore(database: database, logger: TestBackend.logger, now: { TestBackend.now })
                let checked = await outcome { () async throws -> Void in
                    #expect(try await store.resourceClasses().map(\.name) == ResourceClass.standardNames)
                    #expect(try await store.traits(TraitFilter()).count == AllotCore.Trait.standardNames.count)
                }
                await database.close()
                try checked.get()
            }
            #expect(databases.count == 4)
        }
    }

    @Test("a file that is not a database is refused with an error, and the connection is closed")
    func notADatabase() async throws {
        try await TestBackend.sqliteFile.withFreshLocation { location in
            guard case .sqliteFile(let path) = location else { return }
            try String(repeating: "not a database\n", count: 512).write(toFile: path, atomically: true, encoding: .utf8)
            await #expect(throws: (any Error).self) {
                let database = try await Database.open(location, logger: TestBackend.logger)
                await database.close()
            }
        }
    }
}

/// Set once the writer of ``StoreTests/walRewindsUnderSteadyWrites()`` is done.
private final class WriterDone: Sendable {
    let value = Mutex(false)
}
