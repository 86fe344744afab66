import AllotTracker
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The agent's and the CLI's HTTP client: answers missing a field the protocol requires are errors, and no URL
/// the client logs or reports carries its userinfo, query or fragment.
@Suite struct ServiceClientTests {
    static let uuid = "cccccccc-0000-4000-8000-0000000000c1"

    @Sendable static func json(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// A fake Placement that answers every read and write with a body lacking the generation.
    static func placementWithoutGenerations() -> Application<RouterResponder<BasicRequestContext>> {
        let router = Router()
        router.get("/") { _, _ in
            Self.json(#"{"versions": [{"id": "v1.0", "min_version": "1.0", "max_version": "1.39", "status": "CURRENT"}]}"#)
        }
        router.get("/resource_providers/:uuid") { _, _ in Self.json(#"{"uuid": "\#(uuid)", "name": "node-c"}"#) }
        router.get("/resource_providers/:uuid/traits") { _, _ in Self.json(#"{"traits": ["CUSTOM_X"]}"#) }
        router.get("/resource_providers/:uuid/inventories") { _, _ in Self.json(#"{"inventories": {}}"#) }
        router.put("/resource_providers/:uuid/inventories") { _, _ in Self.json(#"{"inventories": {}}"#) }
        router.get("/resource_providers") { _, _ in
            Self.json(#"{"resource_providers": [{"uuid": "\#(uuid)", "name": "node-c"}]}"#)
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    @Test func anAnswerWithoutAGenerationIsAnError() async throws {
        try await Self.placementWithoutGenerations().test(.live) { client in
            let port = try #require(client.port)
            let placement = try await PlacementClient.connect(url: "http://127.0.0.1:\(port)", token: nil)
            let missing = await #expect(throws: PlacementClientError.self) { _ = try await placement.provider(Self.uuid) }
            #expect(missing?.kind == .malformed)
            #expect(missing?.detail.contains("'generation'") == true, "\(String(describing: missing))")
            await #expect(throws: PlacementClientError.self) { _ = try await placement.traits(Self.uuid) }
            await #expect(throws: PlacementClientError.self) { _ = try await placement.inventories(Self.uuid) }
            await #expect(throws: PlacementClientError.self) {
                _ = try await placement.setInventories(Self.uuid, generation: 3, [:])
            }
            await #expect(throws: PlacementClientError.self) { _ = try await placement.providerGenerations() }
        }
    }

    /// `allot nodes` against a server that is down reports the URL without the password it was given.
    @Test func theCLIDoesNotPrintTheURLsPassword() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-redact-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let log = directory.appendingPathComponent("cli.log")
        let port = ServerProcess.freshPort()
        let status = await ShellScript.run(
            "'\(ServerProcess.binary.path)' nodes --token t --url 'http://operator:s3cret@127.0.0.1:\(port)/'", log: log)
        let output = ShellScript.text(log)
        #expect(status != 0)
        #expect(output.contains("127.0.0.1:\(port)"), "\(output)")
        #expect(!output.contains("s3cret"), "\(output)")
        #expect(!output.contains("operator"), "\(output)")
    }

    /// `allot agent` logs the Placement URL it cannot reach without its userinfo.
    @Test func theAgentDoesNotLogTheURLsPassword() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-redact-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try AgentTests.writeNodes(directory)
        let logURL = directory.appendingPathComponent("agent.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let process = Process()
        process.executableURL = ServerProcess.binary
        process.arguments = [
            "agent", "--placement-url", "http://operator:s3cret@127.0.0.1:\(ServerProcess.freshPort())/",
            "--placement-token", "t0ken-value", "--database", directory.appendingPathComponent("agent.sqlite").path,
            "--driver", "fake", "--nodes-file", directory.appendingPathComponent("nodes.json").path,
            "--port", String(ServerProcess.freshPort()), "--auth", "noauth", "--log-format", "text",
            "--log-level", "info",
        ]
        let handle = try FileHandle(forWritingTo: logURL)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        defer {
            process.terminate()
            process.waitUntilEnded()
        }
        var output = ""
        for _ in 0..<300 where !output.contains("retrying") {
            try await Task.sleep(for: .milliseconds(100))
            output = ShellScript.text(logURL)
        }
        #expect(output.contains("Placement not reachable; retrying"), "\(output)")
        #expect(output.contains("127.0.0.1"), "\(output)")
        #expect(!output.contains("s3cret"), "\(output)")
        #expect(!output.contains("t0ken-value"), "\(output)")
    }
}
