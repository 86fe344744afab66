public import AllotStore
public import Hummingbird
public import Logging
import NIOCore

/// Builds the HTTP application: the same factory serves `allot serve` and the tests.
/// - Parameters:
///   - host: the address to listen on (default `127.0.0.1`).
///   - port: the port (default 8778, Placement's; 0 picks a free one).
///   - metricsText: renders `/metrics`; `nil` disables that endpoint.
///   - requestTimeout: how long a request may take to arrive (its headers, then its whole body), and how long a
///     connection may stay idle between requests; the server then closes it. `nil` (default): no limit. A
///     response being produced (an event stream) is never cut.
public func buildApplication(
    store: SQLPlacementStore, configuration: PlacementConfiguration, host: String = "127.0.0.1", port: Int = 8778,
    logger: Logger, metricsText: (@Sendable () async -> String)? = nil, compute: ComputeService? = nil,
    requestTimeout: Duration? = nil, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> Application<PlacementResponder> {
    let idleTimeout = requestTimeout.map { timeout in
        TimeAmount.nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }
    return Application(
        responder: PlacementResponder(store: store, configuration: configuration, metricsText: metricsText, compute: compute),
        server: .http1(configuration: .init(
            additionalChannelHandlers: idleTimeout.map { [RequestReadTimeoutHandler(timeout: $0)] } ?? [],
            idleTimeout: idleTimeout)),
        configuration: .init(address: .hostname(host, port: port), serverName: "allot"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
        logger: logger)
}
