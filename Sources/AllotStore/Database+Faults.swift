import AllotCore
import PostgresKit
import Synchronization

/// Faults of the database itself (PostgreSQL down or out of connections, a full disk, I/O errors), told apart from
/// the errors of a statement and turned into ``StoreError/unavailable(_:)`` and ``StoreError/storageFull(_:)``.
extension Database {
    /// How long a request waits for a PostgreSQL connection from the pool while no other request of this process
    /// gets one either. While PostgreSQL is down the pool keeps trying to connect (and recovers by itself once it
    /// is back) but would hold each request for up to a minute before failing it; past this wait the request
    /// fails at once with ``StoreError/unavailable(_:)``. A request that waits because every connection is busy
    /// (a burst of writers on a healthy server) keeps waiting as long as others finish: that is progress, not a
    /// fault.
    public static let connectionWait = Duration.seconds(5)

    /// When a pooled connection was last handed to a request: while that keeps happening, PostgreSQL is up and a
    /// request waiting for a connection is only queued behind others.
    final class PoolProgress: Sendable {
        private let last = Mutex(ContinuousClock.now)

        func record() { last.withLock { $0 = .now } }

        /// How long ago a connection was last handed out.
        var sinceLast: Duration { ContinuousClock.now - last.withLock { $0 } }
    }

    /// Whether a pooled connection was handed to the body, or the wait for one given up (whichever comes first).
    fileprivate final class Lease: Sendable {
        private enum State { case waiting, leased, abandoned }
        private let state = Mutex(State.waiting)

        /// Takes the connection for the body; `false` when the wait was already given up.
        func take() -> Bool {
            state.withLock { state in
                guard state == .waiting else { return false }
                state = .leased
                return true
            }
        }

        /// Gives up waiting; `false` when the body already holds a connection (it then runs to its end).
        func abandon() -> Bool {
            state.withLock { state in
                guard state == .waiting else { return false }
                state = .abandoned
                return true
            }
        }

        var wasLeased: Bool { state.withLock { $0 == .leased } }
    }

    fileprivate enum LeaseOutcome<T: Sendable>: Sendable {
        case value(T)
        case timerDone
    }

    /// Runs `body` on a pooled connection, or fails with ``StoreError/unavailable(_:)`` when none comes within
    /// ``connectionWait`` or the pool cannot connect. A body that got its connection is never cancelled by this
    /// wait: only the wait for a connection is bounded, never a statement or a `COMMIT`.
    static func leasing<T: Sendable>(
        _ client: PostgresClient, progress: PoolProgress, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withoutActuallyEscaping(body) { body in
            let lease = Lease()
            // The task group ends both children before it returns, so `body` does not outlive this call.
            return try await withThrowingTaskGroup(of: LeaseOutcome<T>.self) { group in
                group.addTask {
                    do {
                        return .value(try await client.withConnection { connection in
                            guard lease.take() else { throw CancellationError() }
                            progress.record()
                            // On the connection's own loop: each statement's answer resumes the body there.
                            return try await withTaskExecutorPreference(EventLoopExecutor(connection.eventLoop)) {
                                try await body(connection)
                            }
                        })
                    } catch {
                        if lease.wasLeased { throw error }
                        _ = lease.abandon()
                        throw StoreError.unavailable("no PostgreSQL connection (\(Self.summary(error)))")
                    }
                }
                group.addTask {
                    // Cancelled (so it ends at once) when the body returns first. Gives up only after a whole
                    // `connectionWait` in which no request of this process got a connection.
                    var wait = connectionWait
                    while true {
                        do { try await Task.sleep(for: wait) } catch { return .timerDone }
                        let idle = progress.sinceLast
                        if idle >= connectionWait || lease.wasLeased { break }
                        wait = connectionWait - idle
                    }
                    if lease.abandon() {
                        throw StoreError.unavailable("no PostgreSQL connection within \(connectionWait)")
                    }
                    return .timerDone
                }
                while let outcome = try await group.next() {
                    if case .value(let value) = outcome {
                        group.cancelAll()
                        return value
                    }
                }
                throw StoreError.unavailable("no PostgreSQL connection")  // not reached: the first child answers
            }
        }
    }

    /// A fault of the database itself as a ``StoreError``; any other error unchanged.
    static func translated(_ error: any Error) -> any Error {
        if let error = error as? SQLiteEngineError, let failure = error.storeFailure { return failure }
        if let error = error as? PSQLError, let failure = storeFailure(error) { return failure }
        // PostgreSQL's refusal of text holding U+0000 (`invalid byte sequence for encoding "UTF8": 0x00`): the
        // client's input, the 400 SQLite's bind gives too.
        if let error = error as? PSQLError, error.serverInfo?[.sqlState] == "22021" { return PlacementError.nulCharacter }
        return error
    }

    /// A PostgreSQL error that says the server cannot be reached or used now (the connection failed or was closed,
    /// the server is shutting down or starting, out of resources), or that its disk is full.
    private static func storeFailure(_ error: PSQLError) -> StoreError? {
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
            return .unavailable("PostgreSQL connection failed (\(error.code))")
        case .server:
            guard let state = error.serverInfo?[.sqlState] else { return nil }
            if state == "53100" { return .storageFull("PostgreSQL: disk full (SQLSTATE 53100)") }
            // 08: connection exception; 53: insufficient resources; 57P01–57P03: shutting down or starting;
            // 58030: I/O error.
            if state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57P") || state == "58030" {
                return .unavailable("PostgreSQL unavailable (SQLSTATE \(state))")
            }
            return nil
        default:
            return nil
        }
    }

    /// An error's kind, for logs: never its message (which may hold SQL arguments or a connection string).
    private static func summary(_ error: any Error) -> String {
        if let error = error as? PSQLError { return "\(error.code)" }
        return String(describing: type(of: error))
    }
}
