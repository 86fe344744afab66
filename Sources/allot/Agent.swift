import AllotCore
import AllotPlacement
import AllotStore
import AllotTracker
import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `allot agent`: the resource tracker of one host, reporting to a separate Placement service.
struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the resource tracker for this host against a separate Placement service (upstream OpenStack's or Allot's).",
        discussion: """
            The agent registers this host's compute nodes in Placement (providers, inventories, traits) and serves \
            the compute API (/compute/v1: claims, moves, audits, events) on --host/--port; `allot claim --url \
            http://HOST:PORT` talks to it.

            Against an `allot serve` (--ledger auto or remote) the agent keeps its books in the server's compute \
            ledger: each claim commits the ledger rows and the Placement allocations in one transaction there, \
            every agent of the cloud shares that one ledger, and moves between hosts are single transactions.

            Against upstream OpenStack Placement (--ledger auto or local) it keeps the compute ledger (instances, \
            migrations) in a local SQLite file (--database): every claim is checked against it, committed \
            locally, then written to Placement with consumer generations; when Placement refuses it, the local \
            part is undone and the claim fails with allot.placement_refused. Audits keep Placement's providers and \
            allocations in line with the ledger. Needs Placement microversion 1.28 or later.

            Every option can also be set in the environment as ALLOT_<OPTION>; the command line wins.
            """)

    @Option(help: "Placement's endpoint, e.g. http://controller:8778 (env ALLOT_PLACEMENT_URL).")
    var placementURL: String = env("ALLOT_PLACEMENT_URL") ?? ""

    @OptionGroup(title: "TLS to Placement")
    var tls: ClientTLSOptions

    @Option(help: "Token sent to Placement as X-Auth-Token (env ALLOT_PLACEMENT_TOKEN; prefer it over the command line, which others can read).")
    var placementToken: String = env("ALLOT_PLACEMENT_TOKEN") ?? ""

    @Option(help: "Address the compute API listens on (env ALLOT_HOST).")
    var host: String = env("ALLOT_HOST") ?? "127.0.0.1"

    @Option(help: "Port of the compute API (env ALLOT_PORT).")
    var port: Int = env("ALLOT_PORT").flatMap(Int.init) ?? 8779

    @Option(help: "Where the compute ledger lives: 'auto' (the server's when it is an allot serve, else local), 'remote' or 'local' (env ALLOT_LEDGER).")
    var ledger: LedgerChoice = env("ALLOT_LEDGER").flatMap(LedgerChoice.init(rawValue:)) ?? .auto

    @Option(help: "The agent's local SQLite ledger, used with a local ledger (env ALLOT_DATABASE).")
    var database: String = env("ALLOT_DATABASE") ?? "./allot-agent.sqlite"

    @Option(help: "Authentication of the compute API: 'token' (default), 'keystone' (see --keystone-url) or 'noauth' (development only; env ALLOT_AUTH).")
    var auth: Serve.AuthChoice = env("ALLOT_AUTH").flatMap(Serve.AuthChoice.init(rawValue:)) ?? .token

    @OptionGroup(title: "Keystone (--auth keystone)")
    var keystone: KeystoneOptions

    @Option(help: "JSON token file of the compute API (default: beside the database; env ALLOT_TOKENS_FILE).")
    var tokensFile: String = env("ALLOT_TOKENS_FILE") ?? ""

    @Option(help: "Log format: 'auto' (text lines when standard error is a terminal, JSON lines otherwise), 'json' or 'text' (env ALLOT_LOG_FORMAT).")
    var logFormat: Serve.LogFormat = env("ALLOT_LOG_FORMAT").flatMap(Serve.LogFormat.init(rawValue:)) ?? .auto

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env ALLOT_LOG_LEVEL).")
    var logLevel: String = env("ALLOT_LOG_LEVEL") ?? "info"

    @Option(help: "SQLite durability of the local ledger: 'full' or 'normal' (env ALLOT_SQLITE_SYNCHRONOUS).")
    var sqliteSynchronous: Serve.SynchronousChoice =
        env("ALLOT_SQLITE_SYNCHRONOUS").flatMap(Serve.SynchronousChoice.init(rawValue:)) ?? .full

    @Flag(help: "Allow --auth noauth on an address other than loopback (env ALLOT_I_KNOW_NOAUTH_IS_INSECURE=1).")
    var iKnowNoauthIsInsecure = env("ALLOT_I_KNOW_NOAUTH_IS_INSECURE") == "1"

    @Option(help: "Seconds a request to the compute API may take to arrive, and a connection may stay idle, before the agent closes it (env ALLOT_REQUEST_TIMEOUT).")
    var requestTimeout: Int = env("ALLOT_REQUEST_TIMEOUT").flatMap(Int.init) ?? 30

    @OptionGroup(title: "Tracker")
    var tracker: TrackerOptions

    @OptionGroup(title: "Console (read-only, this host's nodes)")
    var console: ConsoleOptions

    func validate() throws {
        guard let url = URL(string: placementURL), url.scheme == "http" || url.scheme == "https",
            url.host != nil
        else {
            throw ValidationError("--placement-url must be an http(s) URL (e.g. http://controller:8778)")
        }
        guard url.query == nil, url.fragment == nil else {
            throw ValidationError("--placement-url must not hold a query or a fragment (the token goes in --placement-token)")
        }
        try tls.validateTLS()
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
        try Serve.checkNoauthAddress(auth, host: host, insecure: iKnowNoauthIsInsecure)
        guard requestTimeout > 0 else { throw ValidationError("--request-timeout must be a positive number of seconds") }
        guard (0...65535).contains(port) else { throw ValidationError("port must be between 0 and 65535") }
        guard !database.hasPrefix("postgres") else {
            throw ValidationError("the agent keeps its ledger in a local SQLite file; give --database a path")
        }
        try tracker.validateTracker()
    }

    func run() async throws {
        bootstrapLogging(format: logFormat, level: logLevel)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "allot")
        let service = try ServiceClient(
            url: placementURL, token: placementToken.isEmpty ? nil : placementToken, tls: tls.clientTLS)
        do {
            try await run(service: service, logger: logger, registry: registry)
        } catch {
            try await service.shutdown()
            throw error
        }
        try await service.shutdown()
    }

    private func run(service: ServiceClient, logger: Logger, registry: PrometheusCollectorRegistry) async throws {
        let placement = try await connect(service, logger: logger)
        logger.info("Placement reached", metadata: [
            "allot.placement_url": .stringConvertible(placement.redactedURL),
            "allot.microversion": .string("\(placement.version)"),
        ])
        let remote: Bool
        switch self.ledger {
        case .local: remote = false
        case .remote, .auto:
            let offered = try await RemoteLedger.isOffered(by: placement)
            if self.ledger == .remote, !offered {
                throw ValidationError(
                    "--ledger remote: \(placement.redactedURL) keeps no compute ledger (it is not an allot serve); use --ledger local")
            }
            remote = offered
        }
        // With the server's ledger nothing is kept here: the (unused) local store lives in memory.
        let location = DatabaseLocation(parsing: remote ? ":memory:" : database)
        // The database's background work (WAL checkpoints, a PostgreSQL pool's run loop) runs as the first
        // service of the group; everything that uses the database starts from the second, once it answers.
        let db = try await Database.openForService(location, logger: logger, synchronous: sqliteSynchronous.mode)
        let trackerConfiguration = try tracker.configuration()
        let driver = tracker.makeDriver()
        let configuration = PlacementConfiguration(
            auth: try await Serve.authMode(
                auth, tokensFile: tokensFile.isEmpty ? nil : tokensFile, database: database, keystone: keystone,
                logger: logger),
            console: !console.noConsole, consoleDirectory: console.directory)
        let (host, port, requestTimeout) = (self.host, self.port, self.requestTimeout)
        let stages = StagedServices(logger: logger) {
            logger.info("Preparing the database")
            try await db.prepare()
            let now: @Sendable () -> Double = { Date().timeIntervalSince1970 }
            let ledger: any LedgerBackend
            if remote {
                logger.info("Using the server's compute ledger", metadata: [
                    "allot.placement_url": .stringConvertible(placement.redactedURL),
                ])
                ledger = RemoteLedger(client: placement)
            } else {
                logger.info("Opening the local ledger", metadata: ["allot.database": .string(location.description)])
                ledger = PlacementLedger(
                    local: SQLComputeLedger(database: db, logger: logger, now: now), placement: placement, logger: logger)
            }
            let agent = Tracker(
                configuration: trackerConfiguration, driver: driver, ledger: ledger,
                events: EventBus(logger: Logger(label: "allot.tracker")), logger: logger)
            await startAgent(agent, logger: logger)
            // No Placement store: the agent serves the compute API only (Placement is the separate service above).
            let app = buildApplication(
                store: nil, configuration: configuration, host: host,
                port: port, logger: logger, metricsText: { registry.emitToString() },
                compute: ComputeService(ledger: ledger, tracker: agent),
                server: ServerTLS.http1(requestTimeout: .seconds(requestTimeout)),
                onServerRunning: { port in
                    logger.info("Serving the compute API", metadata: ["allot.port": .stringConvertible(port)])
                })
            // Stopped in reverse order: the event streams end first, so an open one cannot hold up the server's
            // stop.
            return [app, AuditService(tracker: agent), EventStreamsService(events: agent.events)]
        }
        let group = ServiceGroup(configuration: .init(
            // The outer group stops in reverse order too: all of the above first, the database last.
            services: [
                .init(service: DatabaseService(database: db)),
                .init(service: stages, successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await db.close()
            throw error
        }
        await db.close()
        logger.info("Stopped")
    }

    enum LedgerChoice: String, ExpressibleByArgument, CaseIterable {
        case auto, remote, local
    }

    /// Reaches Placement, retrying with a growing, jittered pause (up to 30 s) while it does not answer or answers
    /// 5xx; a Placement that answers but is too old, or whose TLS fails (an untrusted certificate), is an error at
    /// once.
    private func connect(_ service: ServiceClient, logger: Logger) async throws -> PlacementClient {
        try await Retry().run(
            isRetryable: { ($0 as? ServiceClientError)?.isTransient ?? false },
            willRetry: { error, _, pause in
                logger.warning("Placement not reachable; retrying", metadata: [
                    "allot.error": .string("\(error)"), "allot.retry_in_s": .stringConvertible(
                        Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18),
                ])
            },
            { try await PlacementClient.connect(service) })
    }
}
