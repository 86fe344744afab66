import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// What a client is told when something behind the server fails: a request id, never the upstream service's
/// address or its error text (those go to the log, and no log holds a secret: see ``SecretScan``).
@Suite struct LeakTests {
    static let placementToken = "placement-secret-token-0123456789"

    @Test func anAgentsPlacementOutageTellsTheClientNoAddress() async throws {
        let directory = try AgentTests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        SecretScan.register(Self.placementToken)
        let tokens = """
            {"tokens": [{"token": "\(Self.placementToken)", "user": "agent", "project": "service",
                         "roles": ["admin", "service"]}]}
            """
        let placement = try await ServerProcess(
            command: ["serve", "--no-agent", "--database", directory.appendingPathComponent("placement.sqlite").path],
            logDirectory: directory, auth: ["--auth", "token"], environment: ["ALLOT_TOKENS": tokens])
        defer { placement.stop() }
        try AgentTests.writeNodes(directory, withC: false)
        let agent = try await ServerProcess(
            command: [
                "agent", "--placement-url", "http://127.0.0.1:\(placement.port)", "--placement-token", Self.placementToken,
                "--ledger", "remote", "--database", directory.appendingPathComponent("agent.sqlite").path,
                "--driver", "fake", "--nodes-file", directory.appendingPathComponent("nodes.json").path,
                "--compute-host", "leak-host", "--audit-interval", "0",
            ],
            logDirectory: directory)
        defer { agent.stop() }
        let built = try await agent.request(
            "/compute/v1/instances", method: .post, body: ComputeServer.buildBody(newUUID(), node: AgentTests.nodeA))
        #expect(built.status == .created)

        placement.stop()
        let refused = try await agent.request(
            "/compute/v1/instances", method: .post, body: ComputeServer.buildBody(newUUID(), node: AgentTests.nodeA))
        #expect(refused.status == .serviceUnavailable)
        let body = refused.body.map { String(buffer: $0) } ?? ""
        let requestID = try #require(refused.headers[HTTPField.Name("x-openstack-request-id")!])
        #expect(body.contains(requestID), "the body names the request id for the operator: \(body)")
        for leak in ["127.0.0.1", ":\(placement.port)", "http://", "refused", "connect"] {
            #expect(!body.lowercased().contains(leak.lowercased()), "the 503 body holds '\(leak)': \(body)")
        }
        // The operator finds the detail in the agent's log under that request id.
        agent.stop()
        let log = ShellScript.text(agent.logURL)
        #expect(log.contains(requestID), "\(log)")
    }
}
