public import Logging
public import ServiceLifecycle

/// Services that can start only once something the group's earlier services provide is ready: `prepare` runs
/// first (connect to the database, migrate, build what the services need), then the services it returns run as
/// one inner `ServiceGroup`.
///
/// `allot serve` and `allot agent` put it after ``DatabaseService``: a PostgreSQL pool run by that service is
/// only usable once the group runs, and the group's reverse-order shutdown then stops every service started here
/// before the database closes.
///
/// A graceful shutdown of this service during `prepare` cancels `prepare` (SIGTERM while PostgreSQL is not
/// reachable yet ends the process at once, cleanly); afterwards it shuts the inner group down gracefully, in its
/// reverse order.
public struct StagedServices: Service {
    private let logger: Logger
    private let prepare: @Sendable () async throws -> [any Service]

    public init(logger: Logger, prepare: @escaping @Sendable () async throws -> [any Service]) {
        self.logger = logger
        self.prepare = prepare
    }

    public func run() async throws {
        let services: [any Service]
        do {
            services = try await cancelWhenGracefulShutdown { try await prepare() }
        } catch where Task.isShuttingDownGracefully {
            // Stopped before anything started: the error only says that start-up was interrupted.
            logger.info("Stopped during start-up", metadata: ["allot.error": .string("\(error)")])
            return
        }
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        // A nested group does not hear its parent's graceful shutdown by itself: pass it on.
        try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return true
            }
            tasks.addTask {
                // Throws when cancelled, which is how this watcher ends after the group has ended by itself.
                guard (try? await gracefulShutdown()) != nil else { return false }
                await group.triggerGracefulShutdown()
                return false
            }
            while let groupEnded = try await tasks.next() {
                if groupEnded { tasks.cancelAll() }
            }
        }
    }
}
