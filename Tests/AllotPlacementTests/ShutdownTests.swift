import Foundation
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
}
