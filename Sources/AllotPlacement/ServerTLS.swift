import AllotCore
public import AllotTracker
public import HummingbirdCore
import HummingbirdTLS
import NIOCore
public import NIOSSL

/// The TLS of `allot serve`: its certificate and key, and optionally the certificate authority whose client
/// certificates it requires (mutual TLS). Token or Keystone authentication still applies on top.
public struct ServerTLS: Sendable, Equatable {
    /// PEM file of the server's certificate (chain).
    public var certificateFile: String
    /// PEM file of the certificate's private key.
    public var keyFile: String
    /// PEM file of the certificate authorities whose client certificates are accepted; `nil`: no client
    /// certificate is asked for.
    public var clientCAFile: String?

    /// Makes a server TLS configuration.
    /// - Parameters:
    ///   - certificateFile: `--tls-cert` (`ALLOT_TLS_CERT`).
    ///   - keyFile: `--tls-key` (`ALLOT_TLS_KEY`).
    ///   - clientCAFile: `--tls-client-ca` (`ALLOT_TLS_CLIENT_CA`), default `nil`.
    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }

    /// Reads the files and checks that the key is the certificate's.
    /// - Throws: ``TLSFileError`` naming the file that cannot be read, or both when they do not match.
    public func configuration() throws(TLSFileError) -> TLSConfiguration {
        let chain = try TLSFiles.certificates(certificateFile, role: "--tls-cert")
        let key = try TLSFiles.privateKey(keyFile, role: "--tls-key")
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                           privateKey: .privateKey(key))
        if let clientCAFile {
            tls.trustRoots = .certificates(try TLSFiles.certificates(clientCAFile, role: "--tls-client-ca"))
            // A server verifying peers asks for a client certificate and refuses the handshake without one.
            tls.certificateVerification = .noHostnameVerification
        }
        try TLSFiles.checkKeyMatches(tls, certificate: certificateFile, key: keyFile)
        return tls
    }

    /// The HTTP/1.1-over-TLS server of ``buildApplication(store:configuration:host:port:logger:metricsText:compute:server:onServerRunning:)``.
    /// - Throws: ``TLSFileError`` as ``configuration()``.
    public func serverBuilder(requestTimeout: Duration? = nil) throws -> HTTPServerBuilder {
        let tls = try configuration()
        return HTTPServerBuilder { responder in
            EventLoopBoundChannel(base: try TLSChannel(
                HTTP1Channel(responder: responder, configuration: Self.http1Configuration(requestTimeout)),
                tlsConfiguration: tls))
        }
    }

    /// HTTPS with `tls`, plain HTTP/1.1 without.
    /// - Parameter requestTimeout: how long a request may take to arrive (its headers, then its whole body), and
    ///   how long a connection may stay idle between requests; the server then closes it. `nil`: no limit. A
    ///   response being produced (an event stream) is never cut.
    /// - Throws: ``TLSFileError`` as ``configuration()``.
    public static func serverBuilder(_ tls: ServerTLS?, requestTimeout: Duration? = nil) throws -> HTTPServerBuilder {
        try tls?.serverBuilder(requestTimeout: requestTimeout) ?? http1(requestTimeout: requestTimeout)
    }

    /// Plain HTTP/1.1 with the request timeout, each connection's task on its event loop
    /// (``EventLoopBoundChannel``).
    public static func http1(requestTimeout: Duration?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            EventLoopBoundChannel(base: HTTP1Channel(responder: responder, configuration: http1Configuration(requestTimeout)))
        }
    }

    /// HTTP/1.1 with the request timeout: the read timeout handler, and the same idle timeout.
    static func http1Configuration(_ requestTimeout: Duration?) -> HTTP1Channel.Configuration {
        let idleTimeout = requestTimeout.map { timeout in
            TimeAmount.nanoseconds(timeout.nanoseconds)
        }
        return .init(
            additionalChannelHandlers: idleTimeout.map { [RequestReadTimeoutHandler(timeout: $0)] } ?? [],
            idleTimeout: idleTimeout)
    }
}
