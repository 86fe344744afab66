import AllotStore
import Foundation
import Logging
import SQLKit
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// SIGTERM on a real `allot serve`: open event streams end, and a request that never finishes cannot hold the
/// process past `--shutdown-timeout`.
@Suite(.serialized) struct ShutdownTests {
    @Test func sigtermEndsAnOpenEventStreamAndExitsZero() async throws {
        let compute = try await ComputeServer()
        defer { compute.remove() }
        let stream = try await RawConnection(port: compute.server.port)
        await stream.send("GET /compute/v1/events HTTP/1.1\r\nHost: x\r\nx-auth-token: admin\r\n"
            + "Accept: text/event-stream\r\n\r\n")
        for _ in 0..<200 where !stream.text.contains("allot tracker events") {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(stream.text.contains("allot tracker events"), "stream: \(stream.text)")
        compute.server.process.terminate()  // SIGTERM
        // The safety nets are far above the default --shutdown-timeout (15 s): a stream that holds the process
        // until then fails the status check instead.
        #expect(await stream.waitForClose(safety: .seconds(60)))
        let status = await compute.server.waitForExit(safety: .seconds(60))
        #expect(status == 0)
        let log = ShellScript.text(compute.server.logURL)
        #expect(!log.contains("Shutdown timed out"), "log: \(log)")
        await stream.close()
    }

    @Test func aRequestThatNeverEndsCannotHoldShutdownPastTheTimeout() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("allot-shutdown-\(newUUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try await ServerProcess(
            command: ["serve", "--database", dir.appendingPathComponent("allot.sqlite").path, "--no-agent",
                      "--shutdown-timeout", "1", "--request-timeout", "600"],
            logDirectory: dir, logLevel: "info")
        defer { server.stop() }
        // A body that trickles in: the request stays in progress as long as the client wants.
        let upload = try await RawConnection(port: server.port)
        let trickle = await upload.startTricklingUpload()
        defer { trickle.cancel() }
        try await Task.sleep(for: .milliseconds(500))
        server.process.terminate()  // SIGTERM
        let status = await server.waitForExit(safety: .seconds(60))
        #expect(status == 1, "the process did not exit, or not with status 1")
        let log = ShellScript.text(server.logURL)
        #expect(log.contains("Shutdown timed out"), "log: \(log)")
        await upload.close()
    }

    /// The PostgreSQL pool runs inside the service group: SIGTERM while start-up still waits for an unreachable
    /// server stops the process at once and cleanly (before, start-up ran before any signal was handled, so
    /// SIGTERM killed the process), and the database's password is in no log line.
    @Test func sigtermWhilePostgresIsUnreachableStopsStartUpCleanly() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("allot-shutdown-\(newUUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let logURL = dir.appendingPathComponent("serve.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let password = "pw-\(newUUID())"
        // Nothing listens on a fresh port of this test process.
        let url = "postgresql://allot:\(password)@127.0.0.1:\(ServerProcess.freshPort())/allot"
        let process = Process()
        process.executableURL = ServerProcess.binary
        process.arguments = [
            "serve", "--database", url, "--no-agent", "--auth", "noauth", "--port", String(ServerProcess.freshPort()),
            "--log-format", "text", "--log-level", "info",
        ]
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // "Preparing the database" is logged from inside the service group, once SIGTERM is handled.
        for _ in 0..<600 where !ShellScript.text(logURL).contains("Preparing the database") && process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(ShellScript.text(logURL).contains("Preparing the database"), "log: \(ShellScript.text(logURL))")
        try await Task.sleep(for: .milliseconds(300))
        process.terminate()  // SIGTERM, while the pool still tries to connect (it gives up after 5 s)
        for _ in 0..<1200 where process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = ShellScript.text(logURL)
        #expect(!process.isRunning)
        #expect(process.terminationReason == .exit, "killed by a signal; log: \(text)")
        #expect(process.terminationStatus == 0, "log: \(text)")
        #expect(text.contains("Stopped during start-up"), "log: \(text)")
        #expect(!text.contains("Shutdown timed out"), "log: \(text)")
        SecretScan.check(text, secrets: [password], what: "the server log")
    }

    /// A request still arriving when SIGTERM comes is answered (201) and committed on PostgreSQL: the pool, run
    /// by the group's first service, closes only after the HTTP server has finished.
    @Test(.enabled(if: NodeViewReplicaTests.postgresURL != nil, "needs ALLOT_TEST_POSTGRES_URL"))
    func aRequestInFlightAtSigtermIsCommittedBeforeThePoolCloses() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("allot-shutdown-\(newUUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try await NodeViewReplicaTests.freshPostgresDatabase()
        let server = try await ServerProcess(
            command: ["serve", "--database", url, "--no-agent"], logDirectory: dir, logLevel: "info")
        defer { server.stop() }
        let upload = try await RawConnection(port: server.port)
        let body = #"{"name": "CUSTOM_IN_FLIGHT"}"#
        await upload.send("POST /resource_classes HTTP/1.1\r\nHost: x\r\nx-auth-token: admin\r\n"
            + "openstack-api-version: placement 1.39\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body.prefix(10))
        try await Task.sleep(for: .milliseconds(500))
        server.process.terminate()  // SIGTERM with the request's body half sent
        try await Task.sleep(for: .milliseconds(500))
        await upload.send(String(body.dropFirst(10)))
        #expect(await upload.waitForClose(safety: .seconds(60)))
        #expect(upload.text.hasPrefix("HTTP/1.1 201"), "answer: \(upload.text)")
        let status = await server.waitForExit(safety: .seconds(60))
        #expect(status == 0)
        let log = ShellScript.text(server.logURL)
        #expect(log.contains("Stopped"), "log: \(log)")
        let check = try await Database.open(.postgres(url: url), logger: Logger(label: "test"), migrate: false)
        let rows = try await check.withConnection {
            try await $0.raw("SELECT name FROM resource_classes WHERE name = 'CUSTOM_IN_FLIGHT'").all()
        }
        await check.close()
        #expect(rows.count == 1)
        await upload.close()
    }
}
