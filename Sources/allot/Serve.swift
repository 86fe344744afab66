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
            the command line wins. SIGTERM or SIGINT stop the service gracefully.
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

    @Option(help: "Stop generating allocation candidates after this many (default: no cap).")
    var maxAllocationCandidates: Int?

    @Option(help: "Order of allocation candidates across trees: 'depth-first' (every candidate of one tree, then the next) or 'breadth-first' (one candidate of each tree in turn, so a cap or limit spans many trees).")
    var allocationCandidatesStrategy: StrategyChoice = .depthFirst

    @Flag(help: "Visit trees in a random order and shuffle the allocation candidates, so a limit returns a random sample (upstream's randomize_allocation_candidates).")
    var randomizeAllocationCandidates = false

    @Option(help: "Log format: 'json' or 'text' (env ALLOT_LOG_FORMAT).")
    var logFormat: LogFormat = env("ALLOT_LOG_FORMAT").flatMap(LogFormat.init(rawValue:)) ?? .json

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env ALLOT_LOG_LEVEL).")
    var logLevel: String = env("ALLOT_LOG_LEVEL") ?? "info"

    @Option(help: "SQLite: 'full' syncs every commit to disk (survives power loss); 'normal' survives a crash of the process but the last commits may roll back after a power loss, for much less CPU per write (env ALLOT_SQLITE_SYNCHRONOUS).")
    var sqliteSynchronous: SynchronousChoice = env("ALLOT_SQLITE_SYNCHRONOUS").flatMap(SynchronousChoice.init(rawValue:)) ?? .full

    @Flag(help: "Do not run the embedded resource tracker agent for this host (the compute API then only reads and writes the ledger).")
    var noAgent = false

    @OptionGroup(title: "Embedded agent")
    var tracker: TrackerOptions

    enum AuthChoice: String, ExpressibleByArgument { case token, keystone, noauth }
    enum SynchronousChoice: String, ExpressibleByArgument, CaseIterable {
        case full, normal
        var mode: SQLiteSynchronous { self == .full ? .full : .normal }
    }
    enum LogFormat: String, ExpressibleByArgument { case json, text }
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
        if let maxAllocationCandidates, maxAllocationCandidates < 1 {
            throw ValidationError("--max-allocation-candidates must be at least 1")
        }
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
        let configuration = try PlacementConfiguration(
            auth: Self.authMode(
                auth, tokensFile: tokensFile.isEmpty ? nil : tokensFile, database: database, keystone: keystone,
                logger: logger),
            policy: policyOptions.policy(),
            corsAllowedOrigins: corsAllowedOrigin,
            corsAllowHeaders: corsAllowHeader, maxBodyBytes: maxBodyBytes,
            maxAllocationCandidates: maxAllocationCandidates, candidateStrategy: allocationCandidatesStrategy.strategy,
            randomizeCandidates: randomizeAllocationCandidates)
        logger.info("Opening database", metadata: ["allot.database": .string(location.description)])
        let db = try await Database.open(location, logger: logger, synchronous: sqliteSynchronous.mode)
        let store = SQLPlacementStore(database: db, logger: logger, now: { Date().timeIntervalSince1970 })
        let ledger = SQLComputeLedger(database: db, logger: logger, now: { Date().timeIntervalSince1970 })
        var services: [any Service] = []
        var agent: Tracker?
        if !noAgent {
            let events = EventBus(logger: Logger(label: "allot.tracker"))
            let embedded = Tracker(
                configuration: try tracker.configuration(), driver: tracker.makeDriver(), ledger: ledger, events: events,
                logger: logger)
            await startAgent(embedded, logger: logger)
            agent = embedded
            services.append(AuditService(tracker: embedded))
        }
        let serverTLS = try tls.serverTLS()
        let app = buildApplication(
            store: store, configuration: configuration, host: host, port: port, logger: logger,
            metricsText: { registry.emitToString() }, compute: ComputeService(ledger: ledger, tracker: agent),
            server: try ServerTLS.serverBuilder(serverTLS),
            onServerRunning: { port in
                logger.info("Serving the Placement API", metadata: [
                    "allot.port": .stringConvertible(port), "allot.tls": .stringConvertible(serverTLS != nil),
                    "allot.tls.client_certificates": .stringConvertible(serverTLS?.clientCAFile != nil),
                ])
            })
        let group = ServiceGroup(
            configuration: .init(services: [app] + services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await db.close()
            throw error
        }
        await db.close()
        logger.info("Stopped")
    }

    /// The authentication of an API server: tokens from `tokensFile` (or `ALLOT_TOKENS`), a new admin token
    /// beside the database when there is no file yet, or none at all.
    static func authMode(
        _ auth: AuthChoice, tokensFile: String?, database: String, keystone: KeystoneOptions, logger: Logger
    ) throws -> AuthMode {
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
            return .tokens(try TokenFile.load(path: path))
        }
        let record = try TokenFile.createAdmin(path: path)
        logger.notice("Created an admin token; `allot token` prints it", metadata: ["allot.tokens_file": .string(path)])
        return .tokens([record])
    }

}

/// Sends logs to standard error as JSON lines or text, from `level` up.
func bootstrapLogging(format: Serve.LogFormat, level text: String) {
    let level = Logger.Level(rawValue: text) ?? .info
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

/// Runs a tracker's periodic audits until the service group shuts down.
struct AuditService: Service {
    let tracker: Tracker

    func run() async throws {
        if tracker.configuration.auditInterval > 0 {
            await cancelWhenGracefulShutdown {
                await tracker.runPeriodicAudits()
            }
        } else {
            // No periodic audits: the service only has to live as long as the group.
            try? await gracefulShutdown()
        }
    }
}

/// An environment variable, if set and not empty.
func env(_ name: String) -> String? {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
    return value
}
