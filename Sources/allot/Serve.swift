import AllotCore
import AllotKeystone
import AllotPlacement
import AllotStore
import AllotTracker
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `allot serve`: the Placement API over SQLite or PostgreSQL.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Placement-compatible API, the compute API and the resource tracker for this host.",
        discussion: """
            Every option can also be set in the environment as ALLOT_<OPTION> (e.g. ALLOT_DATABASE, ALLOT_PORT);
            the command line wins. SIGTERM or SIGINT stop the service gracefully: open event streams end, requests
            under way finish (for at most --shutdown-timeout), then the database closes.
            """)

    @Option(help: "Address to listen on (env ALLOT_HOST).")
    var host: String = env("ALLOT_HOST") ?? "127.0.0.1"

    @Option(help: "Port to listen on (env ALLOT_PORT).")
    var port: Int = env("ALLOT_PORT").flatMap(Int.init) ?? 8778

    @OptionGroup(title: "TLS")
    var tls: ServerTLSOptions

    @Option(help: "SQLite file path, ':memory:', or a postgres:// URL (env ALLOT_DATABASE).")
    var database: String = env("ALLOT_DATABASE") ?? "./allot.sqlite"

    @Option(help: "Authentication: 'token' (Allot's own tokens, default), 'keystone' (an OpenStack cloud's Keystone, see --keystone-url) or 'noauth' (development only; env ALLOT_AUTH).")
    var auth: AuthChoice = env("ALLOT_AUTH").flatMap(AuthChoice.init(rawValue:)) ?? .token

    @Flag(help: "Allow --auth noauth on an address other than loopback (anyone who can reach it may then act as anyone; env ALLOT_I_KNOW_NOAUTH_IS_INSECURE=1).")
    var iKnowNoauthIsInsecure = env("ALLOT_I_KNOW_NOAUTH_IS_INSECURE") == "1"

    @OptionGroup(title: "Keystone (--auth keystone)")
    var keystone: KeystoneOptions

    @Option(help: "JSON token file (default: beside the database; env ALLOT_TOKENS_FILE). ALLOT_TOKENS may hold the JSON itself.")
    var tokensFile: String = env("ALLOT_TOKENS_FILE") ?? ""

    @OptionGroup(title: "Policy")
    var policyOptions: PolicyOptions

    @Option(help: "An origin allowed by CORS (repeatable; none: CORS off).")
    var corsAllowedOrigin: [String] = []

    @Option(help: "A request header CORS allows (repeatable).")
    var corsAllowHeader: [String] = []

    @Option(help: "Largest request body in bytes.")
    var maxBodyBytes: Int = 1 << 20

    @Option(help: "Seconds a request may take to arrive (its headers, then its whole body), and a connection may stay idle between requests, before the server closes it; producing the response is not limited (env ALLOT_REQUEST_TIMEOUT).")
    var requestTimeout: Int = env("ALLOT_REQUEST_TIMEOUT").flatMap(Int.init) ?? 30

    @Option(help: "Seconds a graceful stop (SIGTERM, SIGINT) may take; after them the server logs 'Shutdown timed out', cuts the remaining requests and exits with status 1 (env ALLOT_SHUTDOWN_TIMEOUT).")
    var shutdownTimeout: Int = env("ALLOT_SHUTDOWN_TIMEOUT").flatMap(Int.init) ?? 15

    @Option(help: "Stop generating allocation candidates after this many (default: no cap).")
    var maxAllocationCandidates: Int?

    @Option(help: "Order of allocation candidates across trees: 'depth-first' (every candidate of one tree, then the next) or 'breadth-first' (one candidate of each tree in turn, so a cap or limit spans many trees).")
    var allocationCandidatesStrategy: StrategyChoice = .depthFirst

    @Flag(help: "Visit trees in a random order and shuffle the allocation candidates, so a limit returns a random sample (upstream's randomize_allocation_candidates).")
    var randomizeAllocationCandidates = false

    @Option(help: "Log format: 'auto' (text lines when standard error is a terminal, JSON lines otherwise), 'json' or 'text' (env ALLOT_LOG_FORMAT).")
    var logFormat: LogFormat = env("ALLOT_LOG_FORMAT").flatMap(LogFormat.init(rawValue:)) ?? .auto

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env ALLOT_LOG_LEVEL).")
    var logLevel: String = env("ALLOT_LOG_LEVEL") ?? "info"

    @Option(help: "SQLite: 'full' syncs every commit to disk (survives power loss); 'normal' survives a crash of the process but the last commits may roll back after a power loss, for much less CPU per write (env ALLOT_SQLITE_SYNCHRONOUS).")
    var sqliteSynchronous: SynchronousChoice = env("ALLOT_SQLITE_SYNCHRONOUS").flatMap(SynchronousChoice.init(rawValue:)) ?? .full

    @Flag(help: "Do not run the embedded resource tracker agent for this host (the compute API then only reads and writes the ledger).")
    var noAgent = false

    @OptionGroup(title: "Embedded agent")
    var tracker: TrackerOptions

    @OptionGroup(title: "Console")
    var console: ConsoleOptions

    enum AuthChoice: String, ExpressibleByArgument { case token, keystone, noauth }
    enum SynchronousChoice: String, ExpressibleByArgument, CaseIterable {
        case full, normal
        var mode: SQLiteSynchronous { self == .full ? .full : .normal }
    }
    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case auto, json, text

        /// The format written: `auto` is text for a person at a terminal, JSON lines for a file, a pipe or a
        /// log collector.
        func resolved(stderrIsTerminal: Bool) -> LogFormat {
            self == .auto ? (stderrIsTerminal ? .text : .json) : self
        }
    }
    enum StrategyChoice: String, ExpressibleByArgument, CaseIterable {
        case depthFirst = "depth-first"
        case breadthFirst = "breadth-first"

        var strategy: GenerationStrategy { self == .depthFirst ? .depthFirst : .breadthFirst }
    }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
        guard (0...65535).contains(port) else { throw ValidationError("port must be between 0 and 65535") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        guard requestTimeout > 0 else { throw ValidationError("--request-timeout must be a positive number of seconds") }
        guard shutdownTimeout > 0 else { throw ValidationError("--shutdown-timeout must be a positive number of seconds") }
        if let maxAllocationCandidates, maxAllocationCandidates < 1 {
            throw ValidationError("--max-allocation-candidates must be at least 1")
        }
        try Self.checkNoauthAddress(auth, host: host, insecure: iKnowNoauthIsInsecure)
        if !noAgent { try tracker.validateTracker() }
        if auth == .keystone { _ = try keystone.configuration() }
        _ = try policyOptions.policy()
        try tls.validateTLS()
    }

    func run() async throws {
        bootstrapLogging(format: logFormat, level: logLevel)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "allot")
        let location = DatabaseLocation(parsing: database)
        let authMode = try await Self.authMode(
            auth, tokensFile: tokensFile.isEmpty ? nil : tokensFile, database: database, keystone: keystone,
            logger: logger)
        let configuration = try PlacementConfiguration(
            auth: authMode,
            policy: policyOptions.policy(),
            corsAllowedOrigins: corsAllowedOrigin,
            corsAllowHeaders: corsAllowHeader, maxBodyBytes: maxBodyBytes,
            maxAllocationCandidates: maxAllocationCandidates, candidateStrategy: allocationCandidatesStrategy.strategy,
            randomizeCandidates: randomizeAllocationCandidates, console: !console.noConsole,
            consoleDirectory: console.directory)
        logger.info("Opening database", metadata: ["allot.database": .string(location.description)])
        // The database's background work (WAL checkpoints, the PostgreSQL pool's run loop) runs as the first
        // service of the group; everything that uses the database starts from the second, once it answers.
        let db = try await Database.openForService(location, logger: logger, synchronous: sqliteSynchronous.mode)
        let serverTLS = try tls.serverTLS()
        let server = try ServerTLS.serverBuilder(serverTLS, requestTimeout: .seconds(requestTimeout))
        let agentParts = noAgent ? nil : (configuration: try tracker.configuration(), driver: tracker.makeDriver())
        let (host, port) = (self.host, self.port)
        let stages = StagedServices(logger: logger) {
            logger.info("Preparing the database")
            try await db.prepare()
            let store = SQLPlacementStore(database: db, logger: logger, now: { Date().timeIntervalSince1970 })
            let ledger = SQLComputeLedger(database: db, logger: logger, now: { Date().timeIntervalSince1970 })
            var agentServices: [any Service] = []
            var agent: Tracker?
            if let agentParts {
                let events = EventBus(logger: Logger(label: "allot.tracker"))
                let embedded = Tracker(
                    configuration: agentParts.configuration, driver: agentParts.driver, ledger: ledger,
                    events: events, logger: logger)
                await startAgent(embedded, logger: logger)
                agent = embedded
                agentServices = [AuditService(tracker: embedded), EventStreamsService(events: events)]
            }
            let app = buildApplication(
                store: store, configuration: configuration, host: host, port: port, logger: logger,
                metricsText: { registry.emitToString() }, compute: ComputeService(ledger: ledger, tracker: agent),
                server: server,
                onServerRunning: { port in
                    logger.info("Serving the Placement API", metadata: [
                        "allot.port": .stringConvertible(port), "allot.tls": .stringConvertible(serverTLS != nil),
                        "allot.tls.client_certificates": .stringConvertible(serverTLS?.clientCAFile != nil),
                    ])
                })
            // Stopped in reverse order: event streams end first, then the audits, then the HTTP server finishes
            // its requests.
            return [app] + agentServices
        }
        // The outer group stops in reverse order too: all of the above first, the database last.
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(service: DatabaseService(database: db)),
                .init(service: stages, successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            logger: logger)
        // A service that ignores cancellation after --shutdown-timeout ends the process (a crash) 5 s later.
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        let stopped: Bool
        do {
            stopped = try await Self.run(group, shutdownTimeout: .seconds(shutdownTimeout), logger: logger)
        } catch {
            await db.close()
            throw error
        }
        await db.close()
        guard stopped else { throw ExitCode(1) }
        logger.info("Stopped")
    }

    /// Refuses `--auth noauth` on an address other than loopback unless the operator said they know: noauth
    /// believes every caller's claimed identity, so anyone who can reach the port would be an admin.
    static func checkNoauthAddress(_ auth: AuthChoice, host: String, insecure: Bool) throws {
        guard auth == .noauth, !insecure, !isLoopback(host) else { return }
        throw ValidationError(
            "--auth noauth believes whatever identity a caller claims; it listens only on a loopback address "
                + "(127.0.0.1, ::1, localhost), not on '\(host)', unless --i-know-noauth-is-insecure is given")
    }

    /// Whether `host` (a listening address) is reachable from this machine only.
    static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare.lowercased() == "localhost" || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Runs `group` until it ends; SIGTERM or SIGINT shuts it down gracefully, and `shutdownTimeout` later
    /// cancels what is left of it.
    /// - Returns: `false` when the graceful shutdown timed out (the remaining work was cancelled).
    static func run(_ group: ServiceGroup, shutdownTimeout: Duration, logger: Logger) async throws -> Bool {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        return try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return true
            }
            tasks.addTask {
                var iterator = signals.makeAsyncIterator()
                guard let signal = await iterator.next() else { return true }
                logger.info("Stopping", metadata: ["allot.signal": .string("\(signal)")])
                await group.triggerGracefulShutdown()
                try await Task.sleep(for: shutdownTimeout)
                logger.error("Shutdown timed out; cancelling the remaining work", metadata: [
                    "allot.shutdown_timeout": .stringConvertible(shutdownTimeout),
                ])
                return false
            }
            // The group ending first is a normal stop; the timer ending first cancels the group.
            let first = try await tasks.next() ?? true
            tasks.cancelAll()
            return first
        }
    }

    /// The authentication of an API server: tokens from `tokensFile` (or `ALLOT_TOKENS`), a new admin token
    /// beside the database when there is no file yet, or none at all.
    static func authMode(
        _ auth: AuthChoice, tokensFile: String?, database: String, keystone: KeystoneOptions, logger: Logger
    ) async throws -> AuthMode {
        switch auth {
        case .noauth:
            logger.warning("Authentication is off (noauth): any caller may claim any identity; the token admin is admin")
            return .noauth
        case .keystone:
            let validator = try keystone.validator()
            logger.info("Tokens are validated by Keystone", metadata: [
                "allot.keystone.url": .string(validator.configuration.identityURL),
                "allot.keystone.user": .string(validator.configuration.username),
            ])
            return .keystone(validator)
        case .token:
            break
        }
        if let inline = env("ALLOT_TOKENS") {
            return .tokens(try TokenFile.parse(Data(inline.utf8), origin: "ALLOT_TOKENS"))
        }
        let path = tokensFile ?? TokenFile.defaultPath(forDatabase: database)
        if FileManager.default.fileExists(atPath: path) {
            let loaded = try await TokenFile.load(path: path)
            if loaded.rewrittenPlaintext > 0 {
                logger.warning("The tokens file held tokens in clear; it was rewritten with their SHA-256 digests", metadata: [
                    "allot.tokens_file": .string(path), "allot.tokens.rewritten": .stringConvertible(loaded.rewrittenPlaintext),
                ])
            }
            return .tokens(loaded.records)
        }
        _ = try await TokenFile.createAdmin(path: path)
        let records = try await TokenFile.load(path: path).records
        logger.notice("Created an admin token; `allot token` prints it until its first-start file is deleted", metadata: [
            "allot.tokens_file": .string(path), "allot.first_start_file": .string(TokenFile.firstStartPath(for: path)),
        ])
        return .tokens(records)
    }

}

/// Sends logs to standard error as JSON lines or text (`auto`: text when standard error is a terminal), from
/// `level` up.
func bootstrapLogging(format chosen: Serve.LogFormat, level text: String) {
    let level = Logger.Level(rawValue: text) ?? .info
    let format = chosen.resolved(stderrIsTerminal: isatty(STDERR_FILENO) == 1)
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler = format == .json
            ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// Restores an agent's nodes from its ledger and runs its first audit, before the API accepts a claim; a driver
/// or Placement failure in that audit is logged and retried by the periodic audits.
func startAgent(_ tracker: Tracker, logger: Logger) async {
    do {
        let report = try await tracker.start()
        logger.info("Agent started", metadata: [
            "allot.nodes": .stringConvertible(report.nodes), "allot.added": .stringConvertible(report.added.count),
        ])
    } catch {
        logger.error("Agent start failed; periodic audits will retry", metadata: ["allot.error": .string("\(error)")])
    }
}

/// Runs a tracker's periodic audits (and those its driver's change signals call for) until the service group shuts
/// down.
struct AuditService: Service {
    let tracker: Tracker

    func run() async throws {
        if tracker.configuration.auditInterval > 0 || tracker.driver.changes != nil {
            await cancelWhenGracefulShutdown {
                await tracker.runPeriodicAudits()
            }
        } else {
            // No periodic audits: the service only has to live as long as the group.
            try? await gracefulShutdown()
        }
    }
}

/// Ends the tracker's event streams when the service group shuts down (before the HTTP server waits for its open
/// requests: an open `GET /compute/v1/events` would otherwise hold it forever).
struct EventStreamsService: Service {
    let events: EventBus

    func run() async throws {
        // Returns on graceful shutdown, or throws when the group is cancelled: either way the streams end.
        try? await gracefulShutdown()
        events.finishStreams()
    }
}

/// An environment variable, if set and not empty.
func env(_ name: String) -> String? {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
    return value
}
