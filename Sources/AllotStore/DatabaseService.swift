public import ServiceLifecycle

/// A database's life as a service of the process's `ServiceGroup`: it runs the background work (SQLite's WAL
/// checkpoints; the PostgreSQL pool's run loop, for a database from ``Database/openForService(_:logger:synchronous:)``)
/// until the group shuts down, then closes the database.
///
/// Put it first in the group's services: the group shuts services down in reverse order, so the database closes
/// after the HTTP server has finished its last request. A pool run here answers nothing before this service runs:
/// the services that use it start from a later service of the group (see ``StagedServices``).
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
