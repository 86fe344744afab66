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
            // Rounds are driven here, not by the background task, so that nothing else touches the WAL.
            let database = try await Database.open(location, logger: TestBackend.logger, backgroundCheckpoints: false)
            let store = SQLPlacementStore(database: database, logger: TestBackend.logger, now: { TestBackend.now })
            let checked = await outcome { () async throws -> Int in
                // One writer commits back to back; a checkpoint round runs while it does. A checkpoint that only
                // copies frames beside the writer never catches up with it, and SQLite then never rewinds the WAL
                // (every commit appends). The round ends with every frame copied, so the next commit rewinds.
                let progress = WriterProgress()
                let writer = Task {
                    var i = 0
                    while !progress.stop.withLock({ $0 }) {
                        _ = try await store.createTrait(named: "CUSTOM_T\(i)")
                        i += 1
                        progress.commits.withLock { $0 = i }
                    }
                    return i
                }
                while progress.commits.withLock({ $0 }) < 300 { try await Task.sleep(for: .milliseconds(1)) }
                let before = try await database.walFrames()
                let atStart = progress.commits.withLock { $0 }
                try await database.checkpointWAL()
                progress.stop.withLock { $0 = true }
                let total = try await writer.value
                let frames = try await database.walFrames()
                // The WAL holds what the commits since the round wrote (a trait takes a few pages), not everything
                // since the start (without a rewind it only grows).
                #expect(before >= 300, "\(before) frames before the round")
                #expect(frames < before)
                #expect(frames <= Int64(total - atStart) * 8, "\(frames) frames after \(total - atStart) commits")
                return total
            }
            await database.close()
            let commits = try checked.get()
            // Nothing was lost on the way.
            let reopened = try await Database.open(location, logger: TestBackend.logger)
            let reader = SQLPlacementStore(database: reopened, logger: TestBackend.logger, now: { TestBackend.now })
            let read = await outcome { try await reader.traits(TraitFilter()).count }
            await reopened.close()
            #expect(try read.get() == AllotCore.Trait.standardNames.count + commits)
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
            guard case .sqliteFile(let path) = location else {
                Issue.record("the SQLite file backend gave \(location), not a file")
                return
            }
            let garbage = String(repeating: "not a database\n", count: 512)
            try garbage.write(toFile: path, atomically: true, encoding: .utf8)
            let error = await #expect(throws: StoreError.self) {
                let database = try await Database.open(location, logger: TestBackend.logger)
                await database.close()
            }
            #expect("\(error.map { "\($0)" } ?? "")".contains(path), "the error names the file")
            // Nothing of the failed open stays open on the file, and the file is left as it was.
            #expect(openDescriptors(of: path).isEmpty, "descriptors left open: \(openDescriptors(of: path))")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == garbage)
        }
    }
}

/// This process's open file descriptors that refer to `path` (or its `-wal`/`-shm` companions), from /proc.
private func openDescriptors(of path: String) -> [String] {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.compactMap { fd in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") else {
            return nil
        }
        return target.hasPrefix(path) ? target : nil
    }
}

/// The writer of ``StoreTests/walRewindsUnderSteadyWrites()``: commits so far, and whether to stop.
private final class WriterProgress: Sendable {
    let commits = Mutex(0)
    let stop = Mutex(false)
}
