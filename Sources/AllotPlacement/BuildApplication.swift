public import AllotStore
public import Hummingbird
public import HummingbirdCore
public import Logging

/// Builds the HTTP application: the same factory serves `allot serve` and the tests.
/// - Parameters:
///   - host: the address to listen on (default `127.0.0.1`).
///   - store: the Placement API's store; `nil` serves only the compute API (`allot agent`).
///   - port: the port (default 8778, Placement's; 0 picks a free one).
///   - metricsText: renders `/metrics`; `nil` disables that endpoint.
///   - server: plain HTTP/1.1 (default) or HTTPS, with the request timeout (``ServerTLS/serverBuilder(_:requestTimeout:)``).
public func buildApplication(
    store: SQLPlacementStore?, configuration: PlacementConfiguration, host: String = "127.0.0.1", port: Int = 8778,
    logger: Logger, metricsText: (@Sendable () async -> String)? = nil, compute: ComputeService? = nil,
    server: HTTPServerBuilder = .http1(),
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> Application<PlacementResponder> {
    Application(
        responder: PlacementResponder(store: store, configuration: configuration, metricsText: metricsText, compute: compute),
        server: server,
        configuration: .init(address: .hostname(host, port: port), serverName: "allot"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
        logger: logger)
}
