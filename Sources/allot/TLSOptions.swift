import AllotPlacement
import AllotTracker
import ArgumentParser

/// `allot serve`'s HTTPS options: both --tls-cert and --tls-key, or neither (plain HTTP).
struct ServerTLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-cert"), help: "Serve HTTPS with this PEM certificate (chain); needs --tls-key (env ALLOT_TLS_CERT).")
    var certificate: String = env("ALLOT_TLS_CERT") ?? ""

    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert (env ALLOT_TLS_KEY).")
    var key: String = env("ALLOT_TLS_KEY") ?? ""

    @Option(name: .customLong("tls-client-ca"), help: "Require client certificates signed by this PEM certificate authority (mutual TLS; tokens still apply; env ALLOT_TLS_CLIENT_CA).")
    var clientCA: String = env("ALLOT_TLS_CLIENT_CA") ?? ""

    /// The server's TLS, `nil` for plain HTTP.
    /// - Throws: `ValidationError` when only one of the certificate and the key is given, or --tls-client-ca
    ///   without them.
    func serverTLS() throws -> ServerTLS? {
        switch (certificate.isEmpty, key.isEmpty) {
        case (true, true):
            guard clientCA.isEmpty else { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
            return nil
        case (false, false):
            return ServerTLS(certificateFile: certificate, keyFile: key, clientCAFile: clientCA.isEmpty ? nil : clientCA)
        case (false, true):
            throw ValidationError("--tls-cert needs --tls-key (the certificate's private key)")
        case (true, false):
            throw ValidationError("--tls-key needs --tls-cert (the certificate)")
        }
    }

    /// Checks the options and reads the files, so that a bad file is reported before anything starts.
    func validateTLS() throws {
        do {
            _ = try serverTLS()?.configuration()
        } catch let error as TLSFileError {
            throw ValidationError(error.description)
        }
    }
}

/// How the agent and the CLI commands reach an `https://` server: the authorities they trust and the client
/// certificate they show.
struct ClientTLSOptions: ParsableArguments {
    @Option(name: .customLong("ca-file"), help: "Trust the server certificates this PEM certificate authority signed (default: the system's trust store; env ALLOT_CA_FILE).")
    var caFile: String = env("ALLOT_CA_FILE") ?? ""

    @Option(name: .customLong("tls-cert"), help: "Show this PEM client certificate to an https:// server (mutual TLS); needs --tls-key (env ALLOT_TLS_CERT).")
    var certificate: String = env("ALLOT_TLS_CERT") ?? ""

    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert (env ALLOT_TLS_KEY).")
    var key: String = env("ALLOT_TLS_KEY") ?? ""

    var clientTLS: ClientTLS {
        ClientTLS(
            caFile: caFile.isEmpty ? nil : caFile, certificateFile: certificate.isEmpty ? nil : certificate,
            keyFile: key.isEmpty ? nil : key)
    }

    /// Checks the options and reads the files, so that a bad file is reported before anything starts.
    func validateTLS() throws {
        do {
            _ = try clientTLS.configuration()
        } catch {
            throw ValidationError(error.description)
        }
    }
}
