import AllotCore
import AllotTracker
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// Allot's own tokens through the CLI and the HTTP API: the first-start admin token, `allot token create`,
/// digests in the tokens file, and an older plaintext file rewritten.
@Suite(.serialized) struct TokenCLITests {
    static func directory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-tokens-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Runs `allot ARGS…`; returns its exit status and output.
    static func allot(_ arguments: [String], in directory: URL) async -> (Int32, String) {
        let log = directory.appendingPathComponent("cli-\(newUUID()).log")
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        let status = await ShellScript.run("'\(ServerProcess.binary.path)' \(quoted)", log: log)
        return (status, ShellScript.text(log))
    }

    static func serve(_ database: String, _ directory: URL) async throws -> ServerProcess {
        try await ServerProcess(command: ["serve", "--database", database, "--no-agent"], logDirectory: directory,
                                auth: ["--auth", "token"])
    }

    static func request(
        _ server: ServerProcess, _ path: String, token: String, method: HTTPRequest.Method = .get, body: String? = nil
    ) async throws -> Int {
        let client = TestClient(host: "127.0.0.1", port: server.port)
        client.connect()
        defer { Task { try? await client.shutdown() } }
        var headers: HTTPFields = [HTTPField.Name("x-auth-token")!: token,
                                   HTTPField.Name("openstack-api-version")!: "placement 1.39"]
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(
            TestClient.Request(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
        return Int(response.status.code)
    }

    static func saveNodeBody(host: String) throws -> String {
        var request = LedgerRequest()
        request.computeNode = ComputeNode(
            uuid: newUUID(), hostname: "n-\(newUUID())", host: host, driver: "fake",
            inventories: ["VCPU": Inventory(total: 4)], traits: ["COMPUTE_NODE"])
        return String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
    }

    @Test func tokensAreStoredAsDigestsAndCreatedByTheCLI() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("allot.sqlite").path
        let tokensFile = database + ".tokens.json"
        var server = try await Self.serve(database, directory)
        defer { server.stop() }

        // The first-start admin token is printed while its file exists, and is in no other file in clear.
        let (shown, output) = await Self.allot(["token", "--database", database], in: directory)
        #expect(shown == 0, "\(output)")
        let admin = ShellScript.lastLine(output)
        #expect(admin.count == 64)
        let stored = try String(contentsOfFile: tokensFile, encoding: .utf8)
        #expect(!stored.contains(admin))
        #expect(stored.contains("digest"))
        #expect(try await Self.request(server, "/resource_providers", token: admin) == 200)

        // `allot token create` adds a record and prints the token once; the file holds only its digest.
        let (created, createOutput) = await Self.allot(
            ["token", "create", "--database", database, "--role", "service", "--host", "host-1", "--name", "agent-1"],
            in: directory)
        #expect(created == 0, "\(createOutput)")
        let agent = ShellScript.lastLine(createOutput)
        #expect(agent.count == 64)
        let (_, readerOutput) = await Self.allot(
            ["token", "create", "--database", database, "--role", "reader"], in: directory)
        let reader = ShellScript.lastLine(readerOutput)
        let after = try String(contentsOfFile: tokensFile, encoding: .utf8)
        #expect(!after.contains(agent) && !after.contains(reader) && !after.contains(admin))

        // After a restart the new tokens work with the roles and hosts they were given.
        server.stop()
        server = try await Self.serve(database, directory)
        #expect(try await Self.request(server, "/resource_providers", token: agent) == 200)
        #expect(try await Self.request(server, "/compute/v1/ledger/save-node", token: agent, method: .post,
                                       body: try Self.saveNodeBody(host: "host-2")) == 403)
        #expect(try await Self.request(server, "/compute/v1/ledger/save-node", token: agent, method: .post,
                                       body: try Self.saveNodeBody(host: "host-1")) == 200)
        #expect(try await Self.request(server, "/resource_providers", token: reader) == 403)
        #expect(try await Self.request(server, "/resource_providers", token: admin) == 200)
        #expect(try await Self.request(server, "/resource_providers", token: String(admin.reversed())) == 401)

        // Once the first-start file is deleted, `allot token` says so.
        let firstStart = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.contains("first-start") }
        #expect(firstStart.count == 1)
        for name in firstStart { try FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
        let (gone, goneOutput) = await Self.allot(["token", "--database", database], in: directory)
        #expect(gone != 0)
        #expect(goneOutput.contains("no longer exists"), "\(goneOutput)")
        #expect(try await Self.request(server, "/resource_providers", token: admin) == 200)
    }

    @Test func anOlderPlaintextTokensFileIsRewrittenAsDigests() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("allot.sqlite").path
        let tokensFile = database + ".tokens.json"
        let legacy = "legacy-token-0123456789"
        try """
        {"tokens": [{"token": "\(legacy)", "user": "admin", "project": "admin", "roles": ["admin"]}]}
        """.write(toFile: tokensFile, atomically: true, encoding: .utf8)
        let server = try await Self.serve(database, directory)
        defer { server.stop() }
        #expect(try await Self.request(server, "/resource_providers", token: legacy) == 200)
        let stored = try String(contentsOfFile: tokensFile, encoding: .utf8)
        #expect(!stored.contains(legacy))
        #expect(stored.contains("digest"))
        let attributes = try FileManager.default.attributesOfItem(atPath: tokensFile)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(ShellScript.text(server.logURL).contains("digests"))
        // No first-start file: nothing to print.
        let (status, output) = await Self.allot(["token", "--database", database], in: directory)
        #expect(status != 0, "\(output)")
    }
}
