import AllotStore
import Foundation
import Logging
import PostgresKit
import Testing

/// A database the storage suite runs on: SQLite in memory, SQLite in a temporary file, or PostgreSQL.
///
/// PostgreSQL is used only when `ALLOT_TEST_POSTGRES_URL` is set; each test then gets a database of its own,
/// created on that server and dropped afterwards, so tests stay independent and may run in parallel.
enum TestBackend: Sendable, CustomTestStringConvertible {
    case sqliteMemory
    case sqliteFile
    case postgres(url: String)

    /// The server URL from the environment, or `nil` when PostgreSQL tests are to be skipped.
    static let postgresURL: String? = {
        guard let url = ProcessInfo.processInfo.environment["ALLOT_TEST_POSTGRES_URL"], !url.isEmpty else {
            return nil
        }
        return url
    }()

    /// Every backend this run can use.
    static let all: [TestBackend] = [.sqliteMemory, .sqliteFile] + (postgresURL.map { [.postgres(url: $0)] } ?? [])

    /// The backends whose database outlives a connection (a second `Database.open` sees the same data).
    static let shared: [TestBackend] = all.filter { if case .sqliteMemory = $0 { false } else { true } }

    var testDescription: String {
        switch self {
        case .sqliteMemory: "SQLite in memory"
        case .sqliteFile: "SQLite file"
        case .postgres: "PostgreSQL"
        }
    }

    static let logger: Logger = {
        var logger = Logger(label: "allot.store.tests")
        logger.logLevel = .error
        return logger
    }()

    /// A fixed clock: tests compare timestamps with it.
    static let now: Double = 1_700_000_000

    /// Runs `body` with a fresh, empty database location on this backend, and removes the database afterwards.
    func withFreshLocation<T: Sendable>(_ body: (DatabaseLocation) async throws -> T) async throws -> T {
        switch self {
        case .sqliteMemory:
            return try await body(.sqliteMemory)
        case .sqliteFile:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("allot-store-test-\(UUID().uuidString).sqlite").path
            let result = await outcome { try await body(.sqliteFile(path)) }
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                try FileManager.default.removeItem(atPath: path + suffix)
            }
            return try result.get()
        case .postgres(let url):
            await PostgresTestDatabases.slots.acquire()
            let result = await outcome {
                let name = "allot_test_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
                try await PostgresTestDatabases.run("CREATE DATABASE \(name)", serverURL: url)
                let inner = await outcome {
                    try await body(.postgres(url: try PostgresTestDatabases.url(url, database: name)))
                }
                try await PostgresTestDatabases.run("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", serverURL: url)
                return try inner.get()
            }
            await PostgresTestDatabases.slots.release()
            return try result.get()
        }
    }

    /// Runs `body` with a store on a fresh database of this backend, then closes and removes the database.
    func withStore<T: Sendable>(_ body: (SQLPlacementStore) async throws -> T) async throws -> T {
        try await withDatabase { database in
            try await body(SQLPlacementStore(database: database, logger: Self.logger, now: { Self.now }))
        }
    }

    /// Runs `body` with a fresh database of this backend, open and migrated, then closes and removes it (also when
    /// `body` throws).
    func withDatabase<T: Sendable>(_ body: (Database) async throws -> T) async throws -> T {
        try await withFreshLocation { location in
            let database = try await Database.open(location, logger: Self.logger)
            let result = await outcome { try await body(database) }
            await database.close()
            return try result.get()
        }
    }
}

/// Creation and removal of one PostgreSQL database per test, over a short-lived administrative connection.
enum PostgresTestDatabases {
    /// At most this many PostgreSQL tests at once, so parallel tests stay well below the server's connection limit.
    static let slots = AsyncSemaphore(limit: 4)

    /// The server URL with its database name replaced by `database`.
    static func url(_ serverURL: String, database: String) throws -> String {
        guard var components = URLComponents(string: serverURL) else { throw TestSetupError.badURL }
        components.path = "/" + database
        guard let url = components.string else { throw TestSetupError.badURL }
        return url
    }

    /// Runs one statement outside any transaction (`CREATE DATABASE` cannot run in one).
    static func run(_ statement: String, serverURL: String) async throws {
        let configuration = try SQLPostgresConfiguration(url: serverURL).coreConfiguration
        let connection = try await PostgresConnection.connect(
            configuration: configuration, id: 0, logger: TestBackend.logger)
        let result = await outcome {
            let rows = try await connection.query("\(unescaped: statement)", logger: TestBackend.logger)
            for try await _ in rows {}
        }
        try await connection.close()
        try result.get()
    }
}

enum TestSetupError: Error {
    case badURL
}

/// A counting semaphore for async code.
actor AsyncSemaphore {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { available = limit }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}

/// The outcome of an async throwing body, captured so that clean-up can run before an error is rethrown.
func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}
