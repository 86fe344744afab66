public import AllotTracker
public import HummingbirdCore
import HummingbirdTLS
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
    public func serverBuilder() throws -> HTTPServerBuilder {
        try .tls(.http1(), tlsConfiguration: configuration())
    }

    /// HTTPS with `tls`, plain HTTP/1.1 without.
    /// - Throws: ``TLSFileError`` as ``configuration()``.
    public static func serverBuilder(_ tls: ServerTLS?) throws -> HTTPServerBuilder {
        try tls?.serverBuilder() ?? .http1()
    }
}
