import AllotTracker
import Foundation
import NIOHTTP1
import Testing

/// `allot serve --tls-*` and `allot agent --ca-file/--tls-cert/--tls-key`, through the built binary, with a CA,
/// a server certificate (SAN 127.0.0.1 and localhost) and a client certificate made by the `openssl` CLI.
@Suite(.serialized) struct TLSTests {
    static let node = AgentTests.nodeA

    /// A scratch directory holding `ca.pem`, `server.pem`/`server.key`, `client.pem`/`client.key`, nodes.json.
    static func makePKI() async throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-tls-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try AgentTests.writeNodes(directory, withC: false)
        let script = """
            set -e; cd '\(directory.path)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
              -days 2 -subj '/CN=Allot test CA'
            for who in server client; do
              openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $who.key -out $who.csr \
                -subj "/CN=allot-$who"
            done
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > server.ext
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            for who in server client; do
              openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $who.pem -days 2 \
                -extfile $who.ext
            done
            """
        let log = directory.appendingPathComponent("openssl.log")
        let status = await ShellScript.run(script, log: log)
        try #require(status == 0, "openssl failed: \(ShellScript.text(log))")
        return directory
    }

    /// A process of the `allot` binary, its output in `log`.
    struct Launched {
        let process: Process
        let log: URL

        init(_ arguments: [String], log: URL) throws {
            self.log = log
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            process = Process()
            process.executableURL = ServerProcess.binary
            process.arguments = arguments + ["--log-format", "text", "--log-level", "info"]
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        var output: String { ShellScript.text(log) }

        /// Waits (up to a minute, a safety net) until the output holds `text` or the process ended.
        func wait(for text: String) async throws {
            for _ in 0..<600 where process.isRunning && !output.contains(text) {
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        /// Waits (up to a minute, a safety net) for the process to end; its exit status, `nil` if still running.
        func exitStatus() async throws -> Int32? {
            for _ in 0..<600 where process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            return process.isRunning ? nil : process.terminationStatus
        }

        func stop() {
            if process.isRunning {
                process.terminate()
                process.waitUntilEnded()
            }
        }
    }

    /// `allot serve` over HTTPS on a fresh port, once it says it serves.
    static func serve(_ directory: URL, clientCA: Bool = false) async throws -> (Launched, Int) {
        let port = ServerProcess.freshPort()
        let path = directory.path
        let server = try Launched(
            ["serve", "--database", ":memory:", "--no-agent", "--auth", "noauth", "--port", String(port),
             "--tls-cert", "\(path)/server.pem", "--tls-key", "\(path)/server.key"]
                + (clientCA ? ["--tls-client-ca", "\(path)/ca.pem"] : []),
            log: directory.appendingPathComponent("serve-\(port).log"))
        try await server.wait(for: "Serving the Placement API")
        try #require(server.process.isRunning, "\(server.output)")
        return (server, port)
    }

    /// `allot agent` against `https://127.0.0.1:port` with the fake driver; `tls` are its TLS options.
    static func agent(_ directory: URL, placementPort: Int, tls: [String]) throws -> Launched {
        let port = ServerProcess.freshPort()
        return try Launched(
            ["agent", "--placement-url", "https://127.0.0.1:\(placementPort)", "--placement-token", "admin",
             "--database", directory.appendingPathComponent("agent-\(port).sqlite").path, "--driver", "fake",
             "--nodes-file", directory.appendingPathComponent("nodes.json").path, "--compute-host", "tls-host",
             "--audit-interval", "0", "--auth", "noauth", "--port", String(port)] + tls,
            log: directory.appendingPathComponent("agent-\(port).log"))
    }

    /// The status of `GET /resource_providers/{node}` over HTTPS, read with `tls`.
    static func providerStatus(port: Int, tls: ClientTLS) async throws -> Int {
        let client = try ServiceClient(url: "https://127.0.0.1:\(port)", token: "admin", tls: tls)
        do {
            let answer = try await client.exchange(
                .GET, "/resource_providers/\(node)", headers: [("openstack-api-version", "placement 1.39")])
            try await client.shutdown()
            return answer.status
        } catch {
            try await client.shutdown()
            throw error
        }
    }

    /// Waits (up to a minute, a safety net) until the agent's node is a provider.
    static func waitForProvider(port: Int, tls: ClientTLS, agent: Launched) async throws -> Int {
        var status = 0
        for _ in 0..<600 where agent.process.isRunning {
            status = try await providerStatus(port: port, tls: tls)
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return status
    }

    @Test func anAgentTrustingTheCARegistersItsNodeOverHTTPS() async throws {
        let directory = try await Self.makePKI()
        let (server, port) = try await Self.serve(directory)
        defer { server.stop() }
        let trust = ClientTLS(caFile: directory.appendingPathComponent("ca.pem").path)
        #expect(try await Self.providerStatus(port: port, tls: trust) == 404)

        let agent = try Self.agent(directory, placementPort: port, tls: ["--ca-file", trust.caFile!])
        defer { agent.stop() }
        #expect(try await Self.waitForProvider(port: port, tls: trust, agent: agent) == 200, "\(agent.output)")
        #expect(agent.output.contains("allot.placement_url=https://127.0.0.1:\(port)"), "\(agent.output)")

        // The CLI reads the node back over HTTPS with the same --ca-file.
        let cli = directory.appendingPathComponent("cli.log")
        let status = await ShellScript.run(
            "'\(ServerProcess.binary.path)' nodes --json --token admin --url https://127.0.0.1:\(port) "
                + "--ca-file '\(trust.caFile!)'", log: cli)
        #expect(status == 0, "\(ShellScript.text(cli))")
        #expect(ShellScript.text(cli).contains(Self.node), "\(ShellScript.text(cli))")

        // Plain HTTP to the HTTPS port gets no answer.
        let plain = try ServiceClient(url: "http://127.0.0.1:\(port)", token: "admin", dedicated: true)
        let noAnswer = await #expect(throws: ServiceClientError.self) { _ = try await plain.exchange(.GET, "/") }
        #expect(noAnswer?.status == 0)
        try await plain.shutdown()
    }

    @Test func anAgentWithoutTheCAFailsAtOnceNamingTheCertificateProblem() async throws {
        let directory = try await Self.makePKI()
        let (server, port) = try await Self.serve(directory)
        defer { server.stop() }
        // No --ca-file: the system's trust store, which does not know the test CA.
        let agent = try Self.agent(directory, placementPort: port, tls: [])
        defer { agent.stop() }
        let status = try await agent.exitStatus()
        #expect(status != nil && status != 0, "\(agent.output)")
        #expect(agent.output.contains("TLS failed"), "\(agent.output)")
        #expect(agent.output.contains("CERTIFICATE_VERIFY_FAILED"), "\(agent.output)")
        let trust = ClientTLS(caFile: directory.appendingPathComponent("ca.pem").path)
        #expect(try await Self.providerStatus(port: port, tls: trust) == 404)
    }

    @Test func withAClientCAOnlyAnAgentShowingACertificateGetsIn() async throws {
        let directory = try await Self.makePKI()
        let (server, port) = try await Self.serve(directory, clientCA: true)
        defer { server.stop() }
        let ca = directory.appendingPathComponent("ca.pem").path
        let withCertificate = ClientTLS(
            caFile: ca, certificateFile: directory.appendingPathComponent("client.pem").path,
            keyFile: directory.appendingPathComponent("client.key").path)

        // Without a client certificate: the handshake is refused.
        let refused = try Self.agent(directory, placementPort: port, tls: ["--ca-file", ca])
        defer { refused.stop() }
        let status = try await refused.exitStatus()
        #expect(status != nil && status != 0, "\(refused.output)")
        #expect(refused.output.contains("CERTIFICATE_REQUIRED"), "\(refused.output)")
        let handshake = await #expect(throws: ServiceClientError.self) {
            _ = try await Self.providerStatus(port: port, tls: ClientTLS(caFile: ca))
        }
        #expect(handshake?.kind == .tls)
        #expect(try await Self.providerStatus(port: port, tls: withCertificate) == 404)

        // With one: the agent registers its node.
        let agent = try Self.agent(
            directory, placementPort: port,
            tls: ["--ca-file", ca, "--tls-cert", withCertificate.certificateFile!, "--tls-key", withCertificate.keyFile!])
        defer { agent.stop() }
        #expect(try await Self.waitForProvider(port: port, tls: withCertificate, agent: agent) == 200, "\(agent.output)")
    }

    @Test func serveRefusesTLSFilesItCannotUseNamingThem() async throws {
        let directory = try await Self.makePKI()
        let path = directory.path
        func serve(_ tls: String) async -> (Int32, String) {
            let log = directory.appendingPathComponent("refused-\(newUUID()).log")
            let status = await ShellScript.run(
                "'\(ServerProcess.binary.path)' serve --database :memory: --no-agent --auth noauth --port "
                    + "\(ServerProcess.freshPort()) \(tls)", log: log)
            return (status, ShellScript.text(log))
        }
        let onlyCertificate = await serve("--tls-cert \(path)/server.pem")
        #expect(onlyCertificate.0 != 0)
        #expect(onlyCertificate.1.contains("--tls-cert needs --tls-key"), "\(onlyCertificate.1)")

        let onlyClientCA = await serve("--tls-client-ca \(path)/ca.pem")
        #expect(onlyClientCA.0 != 0)
        #expect(onlyClientCA.1.contains("--tls-client-ca needs --tls-cert and --tls-key"), "\(onlyClientCA.1)")

        let missing = await serve("--tls-cert \(path)/missing.pem --tls-key \(path)/server.key")
        #expect(missing.0 != 0)
        #expect(missing.1.contains("\(path)/missing.pem"), "\(missing.1)")

        let notAKey = await serve("--tls-cert \(path)/server.pem --tls-key \(path)/server.csr")
        #expect(notAKey.0 != 0)
        #expect(notAKey.1.contains("\(path)/server.csr"), "\(notAKey.1)")

        let mismatched = await serve("--tls-cert \(path)/server.pem --tls-key \(path)/client.key")
        #expect(mismatched.0 != 0)
        #expect(mismatched.1.contains("the key \(path)/client.key does not match the certificate \(path)/server.pem"),
                "\(mismatched.1)")

        // The agent checks its own files the same way.
        let log = directory.appendingPathComponent("agent-refused.log")
        let agent = await ShellScript.run(
            "'\(ServerProcess.binary.path)' agent --placement-url https://127.0.0.1:1 --driver fake --nodes-file "
                + "\(path)/nodes.json --ca-file \(path)/missing-ca.pem", log: log)
        #expect(agent != 0)
        #expect(ShellScript.text(log).contains("--ca-file \(path)/missing-ca.pem"), "\(ShellScript.text(log))")
    }
}
