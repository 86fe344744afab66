import AllotCore
import AllotStore
import Foundation
import SQLKit
import Synchronization
import Testing

/// SQLite's group commit (SQLiteWriter) and its read connections, seen through `Database`. The time limit only
/// turns a deadlock (a read waiting for a write) into a failure.
@Suite(.timeLimit(.minutes(2))) struct GroupCommitTests {
    struct Refused: Error {}

    /// Writes queued while the writer is busy commit as one batch; the one that throws rolls back alone (its
    /// savepoint), the others land; a statement error (a duplicate key) does the same.
    @Test func writesQueuedBehindTheWriterCommitTogetherAndOneThatFailsFailsAlone() async throws {
        try await TestBackend.sqliteFile.withDatabase { database in
            try await database.withConnection {
                try await $0.raw("CREATE TABLE gc_rows (id INTEGER PRIMARY KEY, tag TEXT NOT NULL)").run()
                try await $0.raw("INSERT INTO gc_rows (id, tag) VALUES (1000, 'taken')").run()
            }
            let before = database.writeBatches
            let writes = 20
            let (refused, duplicate) = (7, 12)
            await database.holdWriter()
            let answers = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for index in 0..<writes {
                    group.addTask {
                        do {
                            try await database.transaction { tx in
                                try await tx.run("INSERT INTO gc_rows (id, tag) VALUES (\(bind: index), 'w')")
                                if index == refused { throw Refused() }
                                if index == duplicate {
                                    try await tx.run("INSERT INTO gc_rows (id, tag) VALUES (1000, 'again')")
                                }
                            }
                            return (index, true)
                        } catch {
                            return (index, false)
                        }
                    }
                }
                // Every write waits behind the held writer before it is let go.
                while database.queuedWrites < writes { try await Task.sleep(for: .milliseconds(5)) }
                database.releaseWriter()
                var answers: [Int: Bool] = [:]
                for try await (index, landed) in group { answers[index] = landed }
                return answers
            }
            let after = database.writeBatches
            #expect(after.batches - before.batches == 1, "batches: \(before) -> \(after)")
            #expect(after.writes - before.writes == writes)
            let failed = Set(answers.filter { !$0.value }.keys)
            #expect(failed == [refused, duplicate])
            let stored = try await database.readTransaction { tx in
                try await tx.rows("SELECT id FROM gc_rows WHERE id < 1000 ORDER BY id").map {
                    try $0.decode(column: "id", as: Int.self)
                }
            }
            #expect(stored == (0..<writes).filter { !failed.contains($0) })
        }
    }

    /// Claims on one node that reach the writer together commit in one transaction, each checked against the
    /// claims before it there (their views are shared inside the transaction): exactly as many land as fit, the
    /// others are refused alone, and Placement's usage and the ledger agree afterwards.
    @Test func claimsInOneBatchAreCheckedAgainstEachOther() async throws {
        try await TestBackend.sqliteFile.withDatabase { database in
            let ledger = SQLComputeLedger(database: database, logger: TestBackend.logger, now: { TestBackend.now })
            typealias Node = ComputeLedgerReplicaTests
            try await ledger.saveNode(Node.node(cells: false))  // 8 VCPU; each build takes 2
            _ = try await ledger.commit(Node.build(0))  // committed alone: the ledger remembers the node's view
            let before = database.writeBatches
            let claims = 6
            await database.holdWriter()
            let outcomes = try await withThrowingTaskGroup(of: (Int, ComputeError?).self) { group in
                for n in 1...claims {
                    group.addTask {
                        do {
                            _ = try await ledger.commit(Node.build(n))
                            return (n, nil)
                        } catch let error as ComputeError {
                            return (n, error)
                        }
                    }
                }
                while database.queuedWrites < claims { try await Task.sleep(for: .milliseconds(5)) }
                database.releaseWriter()
                var outcomes: [Int: ComputeError?] = [:]
                for try await (n, error) in group { outcomes[n] = error }
                return outcomes
            }
            #expect(database.writeBatches.batches - before.batches == 1)
            let landed = outcomes.filter { $0.value == nil }.keys.sorted()
            #expect(landed.count == 3, "landed: \(landed)")
            for (n, error) in outcomes {
                guard let error else { continue }
                guard case .doesNotFit(_, "VCPU", 2, 0) = error else {
                    Issue.record("claim \(n): \(error)")
                    continue
                }
            }
            let used = try await database.readTransaction { tx in
                try await tx.row(
                    """
                    SELECT SUM(a.used) AS used FROM allocations a JOIN resource_classes rc ON rc.id = a.resource_class_id
                    WHERE rc.name = 'VCPU'
                    """)?.decode(column: "used", as: Int.self)
            }
            #expect(used == 8)
            let view = try #require(try await ledger.nodeLedgers(uuids: [Node.node]).values.first)
            #expect(view.ledger.usage["VCPU"] == 8)
            #expect(Set(view.ledger.instances.keys) == Set(([0] + landed).map(Node.instance)))
        }
    }

    /// A read runs on a read connection while a write transaction is open (and does not see it).
    @Test func readsDuringALongWriteAreNotBlocked() async throws {
        try await TestBackend.sqliteFile.withDatabase { database in
            try await database.withConnection {
                try await $0.raw("CREATE TABLE gc_rows (id INTEGER PRIMARY KEY)").run()
            }
            let (inside, enteredWrite) = AsyncStream.makeStream(of: Void.self)
            let (finish, letWriteFinish) = AsyncStream.makeStream(of: Void.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await database.transaction { tx in
                        try await tx.run("INSERT INTO gc_rows (id) VALUES (1)")
                        enteredWrite.yield()
                        for await _ in finish { break }  // held open until the reads are done
                    }
                }
                for await _ in inside { break }
                let seen = try await database.readTransaction { tx in try await tx.rows("SELECT id FROM gc_rows") }
                #expect(seen.isEmpty, "a read saw an uncommitted write")
                let count = try await database.withReadConnection { db in
                    try await db.raw("SELECT count(*) AS n FROM gc_rows").first()?.decode(column: "n", as: Int.self)
                }
                #expect(count == 0)
                letWriteFinish.yield()
                try await group.waitForAll()
            }
            let after = try await database.readTransaction { tx in try await tx.rows("SELECT id FROM gc_rows") }
            #expect(after.count == 1)
        }
    }

    /// Reads made as background work (the tracker's audits) run on a read connection of their own, on a thread at
    /// nice 10: they never take the CPU from requests at request priority, and a long one keeps no request's read
    /// waiting for a connection.
    @Test func backgroundReadsRunAtLowPriorityOnTheirOwnConnection() async throws {
        try await TestBackend.sqliteFile.withDatabase { database in
            @Sendable func niceOfThisThread() -> Int32 { getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) }
            @Sendable func policyOfThisThread() -> Int32 {
                var policy: Int32 = -1
                var parameters = sched_param()
                _ = pthread_getschedparam(pthread_self(), &policy, &parameters)
                return policy
            }
            let normal = try await database.withReadConnection { _ in (niceOfThisThread(), policyOfThisThread()) }
            let background = try await BackgroundWork.$active.withValue(true) {
                try await database.readTransaction { _ in (niceOfThisThread(), policyOfThisThread()) }
            }
            #expect(background.0 == min(normal.0 + 10, 19))
            // SCHED_OTHER on both: an idle-class thread could starve while claims wait on what the audit holds.
            #expect(normal.1 == 0)
            #expect(background.1 == 0)
            // A background read held open: requests' reads still get both of their connections at once.
            let (inside, entered) = AsyncStream.makeStream(of: Void.self)
            let (finish, letFinish) = AsyncStream.makeStream(of: Void.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await BackgroundWork.$active.withValue(true) {
                        try await database.withReadConnection { _ in
                            entered.yield()
                            for await _ in finish { break }
                        }
                    }
                }
                for await _ in inside { break }
                async let first = database.readTransaction { tx in try await tx.rows("SELECT 1 AS n").count }
                async let second = database.withReadConnection { db in
                    try await db.raw("SELECT 1 AS n").first()?.decode(column: "n", as: Int.self)
                }
                #expect(try await first == 1)
                #expect(try await second == 1)
                letFinish.yield()
                try await group.waitForAll()
            }
        }
    }

    /// The checkpointer runs after commits and not otherwise: an idle database does no periodic work.
    @Test func anIdleDatabaseRunsNoCheckpointRounds() async throws {
        try await TestBackend.sqliteFile.withDatabase { database in
            try await database.transaction { tx in
                try await tx.run("CREATE TABLE gc_rows (id INTEGER PRIMARY KEY)")
            }
            // Commits wake the checkpointer (each round comes 200 ms after one); wait until the rounds that the
            // commits so far (the migrations', the one above) asked for have run: 300 ms without a new one.
            var seen = database.checkpointRounds
            var quiet = 0
            for _ in 0..<200 where quiet < 12 {
                try await Task.sleep(for: .milliseconds(25))
                let now = database.checkpointRounds
                quiet = now == seen ? quiet + 1 : 0
                seen = now
            }
            #expect(seen >= 1, "no checkpoint round after a commit")
            #expect(quiet >= 12, "checkpoint rounds kept coming with nothing committed")
            // Idle for 5 checkpoint intervals: not one more round.
            try await Task.sleep(for: .seconds(1))
            #expect(database.checkpointRounds == seen)
        }
    }
}
