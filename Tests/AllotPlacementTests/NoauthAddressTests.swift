import Foundation
import Testing

/// `--auth noauth` believes any claimed identity: it listens on loopback only unless the operator insists.
@Suite struct NoauthAddressTests {
    /// Runs `allot <arguments>` (off the cooperative pool) and returns its exit status and output; a server that
    /// starts after all is stopped after 20 s (status 124).
    private func allot(_ arguments: [String], log: URL) async -> (status: Int32, output: String) {
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        let status = await ShellScript.run("timeout 20 '\(ServerProcess.binary.path)' \(quoted)", log: log)
        return (status, ShellScript.text(log))
    }

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("allot-noauth-\(newUUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test(arguments: [["serve", "--no-agent"], ["agent", "--placement-url", "http://127.0.0.1:1"]])
    func noauthOnAnOpenAddressIsRefused(command: [String]) async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for host in ["0.0.0.0", "::", "192.0.2.1", "allot.example"] {
            let log = dir.appendingPathComponent("\(host).log")
            let result = await allot(
                command + ["--auth", "noauth", "--host", host, "--port", String(ServerProcess.freshPort()),
                           "--database", dir.appendingPathComponent("allot.sqlite").path], log: log)
            #expect(result.status != 0, "\(command[0]) --auth noauth --host \(host) started")
            #expect(result.output.contains("--i-know-noauth-is-insecure"), "\(result.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("allot.sqlite").path),
                "a refused start creates no database")
    }

    @Test func loopbackAddressesAreLoopback() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The insecure flag lets an open address through; loopback addresses never needed it.
        for (host, extra) in [("0.0.0.0", ["--i-know-noauth-is-insecure"]), ("127.0.0.1", [])] {
            let server = try await ServerProcess(
                command: ["serve", "--no-agent", "--host", host, "--database",
                          dir.appendingPathComponent("\(newUUID()).sqlite").path] + extra,
                logDirectory: dir)
            server.stop()
        }
    }
}
