import AllotCore
import CSQLite3
import Logging
import SQLKit
import Synchronization

/// The SQLite writer connection, with group commit: writes that arrive while a commit is on its way to the disk
/// wait and then commit together, many writes for one `fsync`.
///
/// Each write runs in a savepoint of the batch's transaction, so one that throws rolls back alone and the others
/// still commit. A write is answered only once the `COMMIT` holding it has returned (durable with
/// `synchronous=FULL`), and the answers of a batch follow the order in which its writes ran.
///
/// There is no writer task: the first write to find nobody committing leads, that is, runs one batch (the writes
/// queued so far, itself first, at most ``batchLimit``) on the writer's own thread, answers it, and hands the lead
/// to the first write still queued. Every statement of the connection, the `COMMIT` included, runs on that
/// thread (``DedicatedThread``), never on Swift's cooperative pool.
final class SQLiteWriter: Sendable {
    let engine: SQLiteEngine
    /// Held while a batch runs, and by everything else that uses ``engine`` (``Database/withConnection(_:)``,
    /// checkpoints under the writer, ``Database/close()``).
    let gate = AsyncGate()
    let thread: DedicatedThread
    private let logger: Logger
    private let state = Mutex(State())
    /// Told after each commit (the checkpointer waits for it, so an idle database does no periodic work).
    let commits = CommitSignal()
    /// Batches committed, and writes in them (tests and metrics).
    let batchCount = Atomic<Int>(0)
    let batchedWrites = Atomic<Int>(0)
    /// WAL frames committed (a file database checkpointed in the background; 0 otherwise).
    let walFrames = WALFrameCounter()

    /// Writes waiting for a batch (tests).
    var queuedWrites: Int { state.withLock { $0.pending.count } }

    /// The most writes one transaction holds.
    static let batchLimit = 128

    private struct State {
        var pending: [Job] = []
        var leading = false
    }

    /// What a queued write is told to do when its turn comes.
    enum Turn: Sendable {
        /// Run the next batch (it holds this write).
        case lead
        /// The batch that held this write is over: its outcome is in the write's result.
        case done
    }

    /// One queued write: its body (taken, run and dropped by the leader), and the continuation its caller waits on.
    final class Job: Sendable {
        private let body: Mutex<(@Sendable (Transaction) async throws -> Void)?>
        private let turn = Mutex<CheckedContinuation<Turn, Never>?>(nil)
        /// The body's error, or the batch's when its commit failed (nil: committed).
        let failure = Mutex<(any Error)?>(nil)

        init(_ body: @escaping @Sendable (Transaction) async throws -> Void) {
            self.body = Mutex(body)
        }

        func wait(_ continuation: CheckedContinuation<Turn, Never>) { turn.withLock { $0 = continuation } }

        func tell(_ value: Turn) { turn.withLock { $0.take() }?.resume(returning: value) }

        /// Runs the body once; false when it threw (its error is kept). The body is released before this returns,
        /// which is what lets ``SQLiteWriter/write(_:)`` hand a non-escaping closure to another task.
        func run(_ transaction: Transaction) async -> Bool {
            guard let body = body.withLock({ $0.take() }) else { return false }
            do {
                try await body(transaction)
                return true
            } catch {
                failure.withLock { $0 = error }
                return false
            }
        }

        func fail(_ error: any Error) {
            _ = body.withLock { $0.take() }
            failure.withLock { $0 = $0 ?? error }
        }
    }

    init(engine: SQLiteEngine, name: String, logger: Logger) {
        self.engine = engine
        self.thread = DedicatedThread(name: name)
        self.logger = logger
    }

    /// Runs `body` in a savepoint of the next batch and returns its value once the batch has committed.
    /// - Throws: what `body` threw (its savepoint rolled back, the rest of the batch unharmed), or the error of
    ///   the batch's `BEGIN` or `COMMIT` (then nothing of it was committed).
    func write<T: Sendable>(_ body: @Sendable (Transaction) async throws -> T) async throws -> T {
        let result = Mutex<T?>(nil)
        let failure: (any Error)? = await withoutActuallyEscaping(body) { body in
            let job = Job { transaction in
                let value = try await body(transaction)
                result.withLock { $0 = value }
            }
            let turn = await withCheckedContinuation { continuation in
                job.wait(continuation)
                enqueue(job)
            }
            if turn == .lead { await lead() }
            return job.failure.withLock { $0 }
        }
        if let failure { throw failure }
        guard let value = result.withLock({ $0.take() }) else { throw SQLiteEngineError.closed }
        return value
    }

    private func enqueue(_ job: Job) {
        let lead = state.withLock { state in
            state.pending.append(job)
            if state.leading { return false }
            state.leading = true
            return true
        }
        if lead { job.tell(.lead) }
    }

    /// Runs one batch on the writer's thread, answers it, and passes the lead on (or lays it down).
    private func lead() async {
        // The batch is taken once the gate is held: writes that arrive while a checkpoint or a
        // `withConnection` holds it join this batch.
        await gate.acquire()
        let batch = state.withLock { state in
            let count = min(state.pending.count, Self.batchLimit)
            defer { state.pending.removeFirst(count) }
            return Array(state.pending.prefix(count))
        }
        await withTaskExecutorPreference(thread) { await runBatch(batch) }
        gate.release()
        commits.signal()
        batchCount.add(1, ordering: .relaxed)
        batchedWrites.add(batch.count, ordering: .relaxed)
        let next = state.withLock { state in
            if state.pending.isEmpty { state.leading = false }
            return state.pending.first
        }
        // The leader's own write is the first of its batch; its caller reads the outcome when this returns.
        for job in batch.dropFirst() { job.tell(.done) }
        next?.tell(.lead)
    }

    /// The batch's transaction: a savepoint per write; a write whose rollback fails, or that leaves SQLite without
    /// a transaction (an I/O error or a full disk ends it), fails with the writes before it, and the writes after
    /// it start a new transaction.
    private func runBatch(_ batch: [Job]) async {
        let db = SQLiteEngineDatabase(engine: engine, logger: logger)
        var remaining = batch[...]
        while !remaining.isEmpty {
            do {
                try await db.raw("BEGIN IMMEDIATE").run()
            } catch {
                for job in remaining { job.fail(error) }
                return
            }
            // What the writes of this transaction share dies with it (a broken one starts afresh).
            let transaction = Transaction(db: db, flavor: .sqlite, shared: TransactionShared())
            var ran: [Job] = []
            while let job = remaining.first {
                remaining = remaining.dropFirst()
                do {
                    try await db.raw("SAVEPOINT allot_write").run()
                    if await job.run(transaction) {
                        try await db.raw("RELEASE allot_write").run()
                        ran.append(job)
                    } else {
                        guard engine.inTransaction else { throw SQLiteEngineError.transactionEnded }
                        try await db.raw("ROLLBACK TO allot_write").run()
                        try await db.raw("RELEASE allot_write").run()
                    }
                } catch {
                    // The transaction is broken: what ran in it is lost, and none of it was answered.
                    let cause = (job.failure.withLock { $0 }) ?? error
                    for failed in ran + [job] { failed.fail(cause) }
                    ran = []
                    if engine.inTransaction { try? await db.raw("ROLLBACK").run() }
                    break
                }
            }
            guard !ran.isEmpty || engine.inTransaction else { continue }
            do {
                try await db.raw("COMMIT").run()
            } catch {
                if engine.inTransaction { try? await db.raw("ROLLBACK").run() }
                for job in ran { job.fail(error) }
            }
        }
    }
}

/// A wake-up for one waiter: ``signal()`` before ``wait()`` is remembered (once), so no commit goes unnoticed.
final class CommitSignal: Sendable {
    private struct State {
        var signalled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter.take() { return waiter }
            state.signalled = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns after the next signal (at once if one came since the last wait), or when the task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    if state.signalled || Task.isCancelled {
                        state.signalled = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
    }
}
