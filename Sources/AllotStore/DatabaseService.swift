public import ServiceLifecycle

/// A database's life as a service of the process's `ServiceGroup`: it runs the background work (SQLite's WAL
/// checkpoints, when the database was opened with `backgroundCheckpoints: false`) until the group shuts down, then
/// closes the database (the PostgreSQL pool with it).
///
/// Put it first in the group's services: the group shuts services down in reverse order, so the database closes
/// after the HTTP server has finished its last request.
public struct DatabaseService: Service {
    public let database: Database

    public init(database: Database) {
        self.database = database
    }

    public func run() async throws {
        let database = database
        // Cancelled on graceful shutdown; a database without background work just waits for it.
        try? await cancelWhenGracefulShutdown {
            await database.runBackgroundWork()
            try await gracefulShutdown()
        }
        await database.close()
    }
}
