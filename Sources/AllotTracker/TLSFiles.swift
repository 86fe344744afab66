public import NIOSSL

/// A TLS file that cannot be used, named in the message (never its contents).
public struct TLSFileError: Error, CustomStringConvertible, Sendable {
    public var description: String

    package init(_ description: String) {
        self.description = description
    }
}

/// Reads the PEM files of TLS configurations, for servers and clients alike.
package enum TLSFiles {
    /// The certificates of a PEM file (a chain, or CA certificates).
    /// - Parameter role: what the file is for, e.g. `--tls-cert`, for the message.
    /// - Throws: ``TLSFileError`` naming the file when it cannot be read or holds no certificate.
    package static func certificates(_ path: String, role: String) throws(TLSFileError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw TLSFileError("\(role) \(path): cannot read a PEM certificate (\(error))")
        }
        guard !certificates.isEmpty else { throw TLSFileError("\(role) \(path): no certificate in the file") }
        return certificates
    }

    /// The private key of a PEM file.
    /// - Throws: ``TLSFileError`` naming the file when it cannot be read or holds no key.
    package static func privateKey(_ path: String, role: String) throws(TLSFileError) -> NIOSSLPrivateKey {
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            throw TLSFileError("\(role) \(path): cannot read a PEM private key (\(error))")
        }
    }

    /// Checks that `key` belongs to the first certificate of `configuration`'s chain, by making a context of it.
    /// - Throws: ``TLSFileError`` naming both files when they do not match.
    package static func checkKeyMatches(
        _ configuration: TLSConfiguration, certificate: String, key: String
    ) throws(TLSFileError) {
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSFileError("the key \(key) does not match the certificate \(certificate) (\(error))")
        }
    }
}

/// How a client reaches an `https://` server: which certificate authorities it trusts and which certificate it
/// shows (mutual TLS).
public struct ClientTLS: Sendable, Equatable {
    /// PEM file of the certificate authorities to trust; `nil`: the system's trust store.
    public var caFile: String?
    /// PEM file of the client certificate (chain) to show the server; `nil`: none.
    public var certificateFile: String?
    /// PEM file of the client certificate's private key.
    public var keyFile: String?

    /// Makes a client TLS configuration.
    /// - Parameters:
    ///   - caFile: `--ca-file`, default `nil` (system trust store).
    ///   - certificateFile: `--tls-cert`, default `nil` (no client certificate).
    ///   - keyFile: `--tls-key`, default `nil`; given exactly when `certificateFile` is.
    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// Whether nothing was configured (plain HTTP needs nothing; HTTPS then trusts the system store).
    public var isDefault: Bool { self == ClientTLS() }

    /// The NIOSSL configuration: the system store or `caFile`'s authorities, the server's name verified, and the
    /// client certificate when there is one.
    /// - Throws: ``TLSFileError`` naming the file that cannot be read, a certificate without its key (or the
    ///   reverse), or a key that does not match its certificate.
    public func configuration() throws(TLSFileError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .certificates(try TLSFiles.certificates(caFile, role: "--ca-file")) }
        switch (certificateFile, keyFile) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            tls.certificateChain = try TLSFiles.certificates(certificate, role: "--tls-cert").map { .certificate($0) }
            tls.privateKey = .privateKey(try TLSFiles.privateKey(key, role: "--tls-key"))
            try TLSFiles.checkKeyMatches(tls, certificate: certificate, key: key)
        case (_?, nil):
            throw TLSFileError("--tls-cert needs --tls-key (the client certificate's private key)")
        case (nil, _?):
            throw TLSFileError("--tls-key needs --tls-cert (the client certificate)")
        }
        return tls
    }
}
