import AllotCore
public import Logging
import NIOCore
import NIOPosix
import Synchronization
import PostgresKit
public import SQLKit

/// How hard SQLite works to put each commit on disk (`PRAGMA synchronous`).
public enum SQLiteSynchronous: String, Sendable, CaseIterable {
    case full = "FULL"
    case normal = "NORMAL"
}

/// The SQL dialects Allot runs on. Every dialect difference is decided by a switch on this type.
public enum SQLFlavor: Sendable, Equatable {
    case sqlite
    case postgres
}

/// An open database: one SQLite connection for writes (group commit, ``SQLiteWriter``) plus read-only ones for
/// reads (a file in WAL mode: readers never wait for the writer, nor the writer for them), each on a thread of its
/// own; or a PostgreSQL connection pool.
///
/// Every write runs inside ``transaction(_:)``: it commits completely or not at all.
public final class Database: Sendable {
    public let flavor: SQLFlavor
    private let backend: Backend
    /// Where it is (its description redacts a PostgreSQL password).
    private let location: DatabaseLocation
    private let logger: Logger
    /// PostgreSQL: when a pooled connection was last handed out (see ``leasing(_:progress:_:)``).
    let poolProgress = PoolProgress()

    /// SQLite's other connections: a few read-only ones for ``readTransaction(_:)``, each on a thread of its
    /// own, and one that checkpoints the WAL in the background (so no commit pays for copying the WAL into the
    /// database and syncing it).
    private final class Reader: Sendable {
        let connections: [ReadConnection]
        /// The read connection of ``BackgroundWork`` (audits), on a thread at nice 10.
        let background: ReadConnection
        private let turn = Atomic<Int>(0)
        let checkpointEngine: SQLiteEngine
        /// Held for every use of ``checkpointEngine`` (the background rounds, and tests driving rounds of their own).
        let checkpointGate = AsyncGate()
        /// The WAL's frames when the last round finished under the writer's gate.
        let roundFrames = Mutex<Int64>(-1)
        let checkpoints = Mutex<Task<Void, Never>?>(nil)
        /// Rounds the loop has run (tests: an idle database runs none).
        let rounds = Atomic<Int>(0)

        init(connections: [ReadConnection], background: ReadConnection, checkpointEngine: SQLiteEngine) {
            self.connections = connections
            self.background = background
            self.checkpointEngine = checkpointEngine
        }

        /// Every read connection, the background one included.
        var all: [ReadConnection] { connections + [background] }

        /// A read connection, its gate held: the background one for ``BackgroundWork``; otherwise a free one if
        /// there is one, else the next in turn.
        func acquire() async -> ReadConnection {
            if BackgroundWork.active {
                await background.gate.acquire()
                return background
            }
            for connection in connections where connection.gate.tryAcquire() { return connection }
            let connection = connections[turn.wrappingAdd(1, ordering: .relaxed).oldValue % connections.count]
            await connection.gate.acquire()
            return connection
        }

        /// How long after a commit the WAL is copied into the database. Each round ends by holding the writer for a
        /// moment (below), and a claim that arrives then waits for that round's disk sync: at 50 ms that was one
        /// claim in 65 of a single client's stream, and the one-client p99 was 1.6-2.2 ms; at 200 ms it is
        /// 1.0-1.45 ms with the same p50 (`docs/performance.md`). The WAL then holds up to 200 ms of commits (a
        /// 64-client burst: about 35 MB, under `journal_size_limit`).
        static let checkpointInterval = Duration.milliseconds(200)

        /// Checkpoints the WAL ``checkpointInterval`` after a commit so that it starts again from its beginning;
        /// with nothing committed it does nothing at all.
        ///
        /// SQLite rewinds the WAL only when a write begins while every frame in it has been copied back; under a
        /// steady stream of commits a checkpoint running beside them never catches up, the WAL grows without end
        /// and every commit appends to the file (new blocks, the inode rewritten at each sync: several times the
        /// cost of overwriting blocks already there). So each round copies what it can beside the writers, then
        /// copies the few frames committed meanwhile while holding the writer's gate (no commit can slip in), and
        /// the next commit rewinds the WAL.
        func startCheckpoints(writer: SQLiteWriter, logger: Logger) {
            let task = Task.detached { await self.runCheckpoints(writer: writer, logger: logger) }
            checkpoints.withLock { $0 = task }
        }

        /// The checkpoint loop itself, until the task running it is cancelled.
        func runCheckpoints(writer: SQLiteWriter, logger: Logger) async {
            while !Task.isCancelled {
                await writer.commits.wait()
                do { try await Task.sleep(for: Self.checkpointInterval) } catch { return }
                rounds.add(1, ordering: .relaxed)
                // A failed checkpoint loses nothing (the WAL keeps every commit); it is logged and tried again
                // after the next commit (a full disk fails every round until space is freed).
                do {
                    try await checkpointRound(writerGate: writer.gate)
                } catch {
                    logger.warning("WAL checkpoint failed; retrying", metadata: ["allot.error": .string("\(error)")])
                }
            }
        }

        /// One round: a passive checkpoint beside the writers (copies what no reader still needs, never waits),
        /// then one under the writer's gate for the frames committed meanwhile.
        func checkpointRound(writerGate: AsyncGate) async throws {
            let engine = checkpointEngine
            try await checkpointGate.withGate {
                let first = try await NIOThreadPool.singleton.runIfActive { try Self.checkpoint(engine) }
                // An empty WAL has nothing to rewind. Otherwise, even when this pass copied every frame it saw,
                // commits may have landed since; the writer rewinds only if none is left.
                guard first.frames > 0 else { return }
                // Nothing committed since the last round and every frame copied: the next commit rewinds anyway
                // (an idle server does not take the writer's gate 20 times a second).
                if first.checkpointed == first.frames, roundFrames.withLock({ $0 }) == first.frames { return }
                try await writerGate.withGate {
                    let second = try await NIOThreadPool.singleton.runIfActive { try Self.checkpoint(engine) }
                    roundFrames.withLock { $0 = second.frames }
                }
            }
        }

        /// One passive checkpoint: the frames in the WAL and how many of them are now in the database.
        static func checkpoint(_ engine: SQLiteEngine) throws -> (frames: Int64, checkpointed: Int64) {
            var result: (Int64, Int64) = (0, 0)
            try engine.execute("PRAGMA wal_checkpoint(PASSIVE)", []) { row in
                if case .integer(let frames) = row.values[1], case .integer(let done) = row.values[2] {
                    result = (frames, done)
                }
            }
            return result
        }

        func stopCheckpoints() async {
            guard let task = checkpoints.withLock({ $0 }) else { return }
            task.cancel()
            await task.value
        }
    }

    /// Read-only connections of an SQLite file (``readTransaction(_:)``).
    static let readConnections = 2

    /// A read-only SQLite connection, with the gate its user holds and the thread its statements run on.
    private final class ReadConnection: Sendable {
        let engine: SQLiteEngine
        let gate = AsyncGate()
        let thread: DedicatedThread

        init(engine: SQLiteEngine, name: String, nice: Int32 = 0) {
            self.engine = engine
            self.thread = DedicatedThread(name: name, nice: nice)
        }
    }

    private enum Backend: Sendable {
        case sqlite(SQLiteWriter, Reader?)
        /// The pool, and the task running its run loop when this database runs it itself (`nil`: a
        /// ``DatabaseService`` runs it, see ``openForService(_:logger:synchronous:)``).
        case postgres(PostgresClient, Task<Void, Never>?)
    }

    private init(flavor: SQLFlavor, backend: Backend, location: DatabaseLocation, logger: Logger) {
        self.flavor = flavor
        self.backend = backend
        self.location = location
        self.logger = logger
    }

    /// Opens the database and brings its schema up to date.
    /// - Parameter migrate: apply schema migrations (default); `false` only connects (administration, tests).
    /// - Throws: ``StoreError/connection(_:)`` when it cannot be opened; migration errors as they come.
    /// - Parameter synchronous: SQLite only: `full` (default) syncs the disk at every commit, so a committed
    ///   write survives a power loss; `normal` (WAL) survives a crash of the process (`kill -9`) but the last
    ///   commits may roll back after a power loss or an OS crash, for about a tenth of the CPU per commit.
    /// - Parameter backgroundCheckpoints: SQLite file only: checkpoint the WAL every ``Reader/checkpointInterval``
    ///   on a task of the database's own (default); off, the caller runs them (``runBackgroundWork()``, as
    ///   ``DatabaseService`` does in a service group) or drives the rounds itself (tests: ``checkpointWAL()``).
    public static func open(
        _ location: DatabaseLocation, logger: Logger, migrate: Bool = true, synchronous: SQLiteSynchronous = .full,
        backgroundCheckpoints: Bool = true
    ) async throws -> Database {
        let database = try await make(
            location, logger: logger, synchronous: synchronous, checkpointTask: backgroundCheckpoints, poolTask: true)
        do {
            try await database.prepare(migrate: migrate)
        } catch {
            // An unclosed SQLite connection must not be dropped, nor a pool left running.
            await database.close()
            throw error
        }
        return database
    }

    /// Opens the database for a process whose `ServiceGroup` runs its background work (``DatabaseService``
    /// calls ``runBackgroundWork()``): the WAL checkpoints of an SQLite file, and the run loop of the PostgreSQL
    /// pool, so that the pool lives inside the group and closes after the services that use it.
    ///
    /// Nothing is reached over the network here and the schema is not touched: call ``prepare(migrate:)`` once
    /// the background work is running (a PostgreSQL pool answers nothing before).
    /// - Throws: ``StoreError/connection(_:)`` when an SQLite file cannot be opened or a URL is invalid.
    public static func openForService(
        _ location: DatabaseLocation, logger: Logger, synchronous: SQLiteSynchronous = .full
    ) async throws -> Database {
        try await make(location, logger: logger, synchronous: synchronous, checkpointTask: false, poolTask: false)
    }

    /// Checks that the database answers, then (with `migrate`) brings its schema up to date.
    /// - Throws: ``StoreError/connection(_:)`` when PostgreSQL cannot be reached (the message names the server
    ///   without its password); migration errors as they come.
    public func prepare(migrate: Bool = true) async throws {
        if case .postgres = backend {
            do {
                try await withConnection { try await $0.raw("SELECT 1").run() }
            } catch {
                throw StoreError.connection("cannot connect to PostgreSQL at \(location)")
            }
        }
        if migrate { try await Migrator.migrate(self) }
    }

    /// Applies the schema steps up to `version` only (tests of an upgrade from an older schema).
    package func migrate(through version: Int) async throws {
        try await Migrator.migrate(self, through: version)
    }

    /// Opens the connections (SQLite) or builds the pool (PostgreSQL, not connected yet).
    /// - Parameters:
    ///   - checkpointTask: an SQLite file checkpoints its WAL on a task of its own (else ``runBackgroundWork()``).
    ///   - poolTask: a PostgreSQL pool runs on a task of its own until ``close()`` (else ``runBackgroundWork()``).
    private static func make(
        _ location: DatabaseLocation, logger: Logger, synchronous: SQLiteSynchronous, checkpointTask: Bool,
        poolTask: Bool
    ) async throws -> Database {
        let database: Database
        switch location {
        case .sqliteFile, .sqliteMemory:
            var path = ":memory:"
            if case .sqliteFile(let file) = location { path = file }
            let engine: SQLiteEngine
            do {
                engine = try SQLiteEngine(path: path)
            } catch {
                throw StoreError.connection("cannot open SQLite database \(location)")
            }
            // A file gets a second connection for reads (WAL lets it read while the first one writes); an
            // in-memory database is private to its one connection.
            var reader: Reader?
            if case .sqliteFile = location {
                do {
                    let connections = try (0..<Self.readConnections).map { index in
                        ReadConnection(engine: try SQLiteEngine(path: path), name: "allot-sqlite-read-\(index)")
                    }
                    reader = Reader(
                        connections: connections,
                        background: ReadConnection(
                            engine: try SQLiteEngine(path: path), name: "allot-sqlite-read-background", nice: 10),
                        checkpointEngine: try SQLiteEngine(path: path))
                } catch {
                    engine.close()
                    throw StoreError.connection("cannot open SQLite database \(location)")
                }
            }
            let writer = SQLiteWriter(engine: engine, name: "allot-sqlite-writer", logger: logger)
            database = Database(flavor: .sqlite, backend: .sqlite(writer, reader), location: location, logger: logger)
            let db = SQLiteEngineDatabase(engine: engine, logger: logger)
            do {
                if case .sqliteFile = location {
                    try await db.raw("PRAGMA journal_mode=WAL").run()
                }
                try await db.raw("PRAGMA synchronous=\(unsafeRaw: synchronous.rawValue)").run()
                try await db.raw("PRAGMA busy_timeout=10000").run()
                // Temporary tables, indexes and sorts in memory: with the default (a file), a claim's statements
                // created, unlinked and closed a file in /var/tmp each time (7 system calls and an inode).
                try await db.raw("PRAGMA temp_store=MEMORY").run()
                try await db.raw("PRAGMA cache_size=-65536").run()
                if let reader {
                    for connection in reader.all {
                        let readDB = SQLiteEngineDatabase(engine: connection.engine, logger: logger)
                        try await readDB.raw("PRAGMA busy_timeout=10000").run()
                        try await readDB.raw("PRAGMA query_only=1").run()
                        try await readDB.raw("PRAGMA temp_store=MEMORY").run()
                    }
                    try await SQLiteEngineDatabase(engine: reader.checkpointEngine, logger: logger)
                        .raw("PRAGMA busy_timeout=10000").run()
                    // Checkpoints run in the background instead of inside the commit that fills the WAL.
                    try await db.raw("PRAGMA wal_autocheckpoint=0").run()
                    engine.countWALFrames(into: writer.walFrames)
                    // A burst may leave a long WAL behind: cut it back when it rewinds.
                    try await db.raw("PRAGMA journal_size_limit=67108864").run()
                    if checkpointTask { reader.startCheckpoints(writer: writer, logger: logger) }
                }
            } catch {
                await database.close()
                // The first statement is where SQLite finds out the file is not a database (or is unreadable).
                if let failure = error as? SQLiteEngineError {
                    throw StoreError.connection("cannot open SQLite database \(location): \(failure.message)")
                }
                throw error
            }
        case .postgres(let url):
            let configuration: SQLPostgresConfiguration
            do {
                configuration = try SQLPostgresConfiguration(url: url)
            } catch {
                throw StoreError.connection("invalid PostgreSQL URL \(location)")
            }
            let client = PostgresClient(configuration: .init(from: configuration.coreConfiguration), backgroundLogger: logger)
            // Run here, the pool's run loop lives exactly as long as this Database: `close()` cancels it.
            let task = poolTask ? Task { await client.run() } : nil
            database = Database(flavor: .postgres, backend: .postgres(client, task), location: location, logger: logger)
        }
        return database
    }

    /// Runs the database's background work in the calling task until it is cancelled: on an SQLite file opened
    /// with `backgroundCheckpoints: false` or by ``openForService(_:logger:synchronous:)``, the WAL checkpoints;
    /// on PostgreSQL opened by ``openForService(_:logger:synchronous:)``, the pool's run loop (until cancelled or
    /// shut down gracefully); otherwise it returns at once. `allot serve` and `allot agent` run it as a service of
    /// their group (``DatabaseService``).
    public func runBackgroundWork() async {
        switch backend {
        case .sqlite(let writer, let reader?):
            await reader.runCheckpoints(writer: writer, logger: logger)
        case .postgres(let client, nil):
            // Ends when the calling task is cancelled or its service is shut down gracefully: the pool closes.
            await client.run()
        case .sqlite(_, nil), .postgres(_, _?):
            return
        }
    }

    /// Closes the connection or pool. Calls after this fail.
    public func close() async {
        switch backend {
        case .sqlite(let writer, let reader):
            _ = try? await writer.gate.withGate { writer.engine.close() }
            writer.thread.stop()
            if let reader {
                await reader.stopCheckpoints()
                _ = try? await reader.checkpointGate.withGate { reader.checkpointEngine.close() }
                for connection in reader.all {
                    _ = try? await connection.gate.withGate { connection.engine.close() }
                    connection.thread.stop()
                }
            }
        case .postgres(_, let task):
            // A pool run by a DatabaseService closes when that service's run ends.
            task?.cancel()
        }
    }

    /// Runs one checkpoint round now (SQLite file only; the background task runs one every
    /// ``Reader/checkpointInterval``). For tests.
    package func checkpointWAL() async throws {
        guard case .sqlite(let writer, let reader?) = backend else { return }
        try await reader.checkpointRound(writerGate: writer.gate)
    }

    /// SQLite: batches committed so far, and the writes they held (group commit; zeros elsewhere). For tests.
    package var writeBatches: (batches: Int, writes: Int) {
        guard case .sqlite(let writer, _) = backend else { return (0, 0) }
        return (writer.batchCount.load(ordering: .relaxed), writer.batchedWrites.load(ordering: .relaxed))
    }

    /// SQLite file: the WAL frames (changed 4 KiB pages) its commits have written so far; `nil` elsewhere. The
    /// benchmarks report it per claim: each frame is a write before the commit's disk sync.
    public var walFramesCommitted: Int? {
        guard case .sqlite(let writer, _?) = backend else { return nil }
        return writer.walFrames.total
    }

    /// SQLite: writes waiting for their batch now (0 elsewhere). For tests.
    package var queuedWrites: Int {
        guard case .sqlite(let writer, _) = backend else { return 0 }
        return writer.queuedWrites
    }

    /// SQLite: takes the writer connection, so that writes queue up until ``releaseWriter()``. For tests.
    package func holdWriter() async {
        guard case .sqlite(let writer, _) = backend else { return }
        await writer.gate.acquire()
    }

    /// SQLite: gives back the writer connection taken by ``holdWriter()``. For tests.
    package func releaseWriter() {
        guard case .sqlite(let writer, _) = backend else { return }
        writer.gate.release()
    }

    /// SQLite file: checkpoint rounds run so far by the background loop. For tests.
    package var checkpointRounds: Int {
        guard case .sqlite(_, let reader?) = backend else { return 0 }
        return reader.rounds.load(ordering: .relaxed)
    }

    /// Frames in the SQLite WAL now (0 for other databases). For tests.
    package func walFrames() async throws -> Int64 {
        guard case .sqlite(_, let reader?) = backend else { return 0 }
        let engine = reader.checkpointEngine
        return try await reader.checkpointGate.withGate {
            try await NIOThreadPool.singleton.runIfActive { try Reader.checkpoint(engine).frames }
        }
    }

    /// Runs `body` on one connection outside any explicit transaction (reads).
    /// - Throws: whatever `body` throws; ``StoreError/unavailable(_:)`` or ``StoreError/storageFull(_:)`` when
    ///   the database cannot be reached or written (see ``transaction(_:)``).
    public func withConnection<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            switch backend {
            case .sqlite(let writer, _):
                // On the writer's thread, like the writes; autocommit writes made here wake the checkpointer too.
                defer { writer.commits.signal() }
                return try await writer.gate.withGate {
                    try await withTaskExecutorPreference(writer.thread) {
                        try await body(SQLiteEngineDatabase(engine: writer.engine, logger: logger))
                    }
                }
            case .postgres(let client, _):
                return try await Self.leasing(client, progress: poolProgress) { connection in
                    try await body(connection.sql(queryLogLevel: nil))
                }
            }
        } catch {
            throw Self.translated(error)
        }
    }

    /// Runs `body` on a connection that only reads, outside any explicit transaction (each statement sees the
    /// latest commit). On an SQLite file it is one of the read connections, on its own thread, so it never waits
    /// for the writer; elsewhere it is ``withConnection(_:)``. `body` must not write.
    public func withReadConnection<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        guard case .sqlite(_, let reader?) = backend else { return try await withConnection(body) }
        return try await onReadConnection(reader, body)
    }

    /// Runs `body` on a free (else the next) read connection of `reader`, on that connection's thread.
    private func onReadConnection<T: Sendable>(
        _ reader: Reader, _ body: @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        do {
            let connection = await reader.acquire()
            defer { connection.gate.release() }
            return try await withTaskExecutorPreference(connection.thread) {
                try await body(SQLiteEngineDatabase(engine: connection.engine, logger: logger))
            }
        } catch {
            throw Self.translated(error)
        }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    ///
    /// On PostgreSQL a serialization failure or deadlock retries the whole body (up to 5 times), so `body`
    /// must not have effects outside the database.
    /// - Throws: whatever `body` throws; for faults of the database itself (nothing was committed, except that a
    ///   connection lost during `COMMIT` leaves it unknown): ``StoreError/unavailable(_:)`` when it cannot be
    ///   reached or used now (PostgreSQL down or no connection within ``connectionWait``, an SQLite I/O error),
    ///   ``StoreError/storageFull(_:)`` when its disk is full.
    public func transaction<T: Sendable>(_ body: @Sendable (Transaction) async throws -> T) async throws -> T {
        do {
            switch backend {
            case .sqlite(let writer, _):
                return try await writer.write(body)
            case .postgres(let client, _):
                var attempt = 0
                while true {
                    attempt += 1
                    do {
                        return try await Self.leasing(client, progress: poolProgress) { connection in
                            try await Self.runTransaction(connection.sql(queryLogLevel: nil), flavor: .postgres, body)
                        }
                    } catch let error as PSQLError where attempt < 5 && Self.isRetryable(error) {
                        continue
                    }
                }
            }
        } catch {
            throw Self.translated(error)
        }
    }

    /// Runs `body` in a transaction that only reads: one consistent snapshot. On an SQLite file it uses a read
    /// connection (``withReadConnection(_:)``), so it neither waits for a write in progress nor holds one up;
    /// elsewhere it is a ``transaction(_:)``. `body` must not write (SQLite refuses: `query_only`).
    public func readTransaction<T: Sendable>(_ body: @Sendable (Transaction) async throws -> T) async throws -> T {
        guard case .sqlite(_, let reader?) = backend else { return try await transaction(body) }
        return try await onReadConnection(reader) { db in try await Self.runTransaction(db, flavor: .sqlite, body) }
    }

    /// One transaction on one connection: a PostgreSQL write, or a read on an SQLite read connection (SQLite's
    /// writes go through ``SQLiteWriter``'s batches). Rolled back when `body` throws.
    private static func runTransaction<T: Sendable>(
        _ db: any SQLDatabase, flavor: SQLFlavor, _ body: @Sendable (Transaction) async throws -> T
    ) async throws -> T {
        try await db.raw("BEGIN").run()
        do {
            // PostgreSQL numbers the transaction's changes last, so that the counter's lock is held briefly.
            let transaction = Transaction(db: db, flavor: flavor, shared: flavor == .postgres ? TransactionShared() : nil)
            let result = try await body(transaction)
            try await transaction.numberChanges()
            try await db.raw("COMMIT").run()
            return result
        } catch {
            do { try await db.raw("ROLLBACK").run() } catch { /* the connection is gone; nothing was committed */ }
            throw error
        }
    }

    private static func isRetryable(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }
}

/// The work of one transaction: queries on its connection, and the dialect to write them in.
public struct Transaction: Sendable {
    public let db: any SQLDatabase
    public let flavor: SQLFlavor
    /// What the writes already done in this transaction learned, for the next ones in it (SQLite's group commit
    /// runs many writes in one transaction; elsewhere each write has a transaction of its own, and `nil` here).
    let shared: TransactionShared?

    init(db: any SQLDatabase, flavor: SQLFlavor, shared: TransactionShared? = nil) {
        self.db = db
        self.flavor = flavor
        self.shared = shared
    }

    /// Runs a statement and returns its rows.
    public func rows(_ query: SQLQueryString) async throws -> [any SQLRow] {
        try await db.raw(query).all()
    }

    /// Runs a statement and returns its first row, if any.
    public func row(_ query: SQLQueryString) async throws -> (any SQLRow)? {
        try await db.raw(query).first()
    }

    /// Runs a statement for its effect.
    public func run(_ query: SQLQueryString) async throws {
        try await db.raw(query).run()
    }

    /// ` FOR UPDATE` on PostgreSQL (row locks), nothing on SQLite (the transaction already holds the write lock).
    public var forUpdate: String { flavor == .postgres ? " FOR UPDATE" : "" }
}

/// Shared by the writes of one transaction (one `BEGIN` to its `COMMIT`). SQLite: the provider views of the claims
/// already in it, each at the generation its claim wrote. A claim later in the same transaction then finds the
/// usage it must check without summing the provider's allocations again (a burst on a few nodes puts many claims
/// on one node in each transaction, and those sums grow with the allocations there). A write publishes only once
/// its body has succeeded; a savepoint rolled back after that breaks the whole transaction, and with it this
/// object. Every view is used only at the generation read in the transaction, so none outlives what it describes.
final class TransactionShared: Sendable {
    let views = Mutex<[String: ProviderView]>([:])
    /// PostgreSQL: the changes recorded so far (their `placement_changes.provider_id`), numbered at the end.
    let changes = Mutex<[Int?]>([])
}

/// Failures of the storage layer itself (not of a client's request). Messages never hold credentials.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    case connection(String)
    case migration(String)
    case corrupt(String)
    /// A bind value that is not a single SQL value (a struct, an array): a programming error, refused.
    case unsupportedBind(String)
    /// The database cannot be reached or used now (PostgreSQL down, no pooled connection in time, an I/O error):
    /// the request may succeed later, unchanged.
    case unavailable(String)
    /// The database's disk is full: writes fail until space is freed; reads still work.
    case storageFull(String)

    public var description: String {
        switch self {
        case .connection(let message): return "database connection failed: \(message)"
        case .migration(let message): return "schema migration failed: \(message)"
        case .corrupt(let message): return "unexpected database content: \(message)"
        case .unsupportedBind(let type): return "a value of type \(type) is not a single SQL value"
        case .unavailable(let message): return "database unavailable: \(message)"
        case .storageFull(let message): return "database storage full: \(message)"
        }
    }
}

extension PostgresClient.Configuration {
    /// Translates PostgresKit's URL-derived configuration into the pool's.
    init(from configuration: PostgresConnection.Configuration) {
        let tls: PostgresClient.Configuration.TLS =
            switch (configuration.tls.isEnforced, configuration.tls.isAllowed) {
            case (true, _): configuration.tls.sslContext.map { .require($0.configuration) } ?? .disable
            case (_, true): configuration.tls.sslContext.map { .prefer($0.configuration) } ?? .disable
            default: .disable
            }
        if let host = configuration.host, let port = configuration.port {
            self.init(
                host: host, port: port, username: configuration.username, password: configuration.password,
                database: configuration.database, tls: tls)
        } else {
            self.init(
                unixSocketPath: configuration.unixSocketPath ?? "/tmp/.s.PGSQL.5432",
                username: configuration.username, password: configuration.password,
                database: configuration.database)
        }
        self.options.maximumConnections = 20
    }
}

/// Whether an error is a unique-constraint violation, in either dialect.
package func isUniqueViolation(_ error: any Error) -> Bool {
    if let error = error as? SQLiteEngineError {
        return error.isUniqueViolation
    }
    if let error = error as? PSQLError {
        return error.serverInfo?[.sqlState] == "23505"
    }
    return false
}
