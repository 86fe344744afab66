import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Synchronization

/// A real `allot serve` process, started from the built binary, for tests that kill or replicate it.
final class ServerProcess {
    let port: Int
    let process: Process
    let logURL: URL

    /// Ports for servers of this test process: each used once, from a random start below the kernel's ephemeral
    /// range (so no outgoing connection holds one, and no two servers of this process collide).
    private static let ports = Mutex(Int.random(in: 20000...24000))

    static func freshPort() -> Int {
        ports.withLock { next in
            next += 1
            return next
        }
    }

    /// The `allot` binary built beside the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("allot")
    }

    /// Starts `allot serve --auth noauth` on a free port over `database` and waits until it answers; `extra`
    /// arguments follow (by default `--no-agent`: these tests are about Placement alone).
    convenience init(database: String, logDirectory: URL, arguments extra: [String] = ["--no-agent"]) async throws {
        try await self.init(
            command: ["serve", "--database", database] + extra, logDirectory: logDirectory)
    }

    /// Starts `allot <command…> --auth noauth --port P` (P random, or `port`) with text logs at warning level and
    /// waits until `GET /` answers; a random port another process took meanwhile is replaced by another (3 tries).
    /// `auth` replaces `--auth noauth` (e.g. `["--auth", "keystone", …]`); `environment` adds variables.
    convenience init(
        command: [String], port: Int? = nil, logDirectory: URL, auth: [String] = ["--auth", "noauth"],
        environment: [String: String] = [:], logLevel: String = "warning"
    ) async throws {
        var attempt = 1
        while true {
            do {
                try await self.init(
                    command: command, fixedPort: port ?? Self.freshPort(), logDirectory: logDirectory, auth: auth,
                    environment: environment, logLevel: logLevel)
                return
            } catch ServerProcessError.didNotStart(let log) where port == nil && attempt < 3 && log.contains("in use") {
                attempt += 1
            }
        }
    }

    private init(
        command: [String], fixedPort: Int, logDirectory: URL, auth: [String], environment: [String: String],
        logLevel: String
    ) async throws {
        self.port = fixedPort
        logURL = logDirectory.appendingPathComponent("\(command[0])-\(self.port).log")
        if !FileManager.default.fileExists(atPath: logURL.path) {
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        }
        process = Process()
        process.executableURL = Self.binary
        process.arguments = command + auth + ["--port", String(self.port), "--log-format", "text",
                                              "--log-level", logLevel]
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        for _ in 0..<300 {
            // Only this process counts: another server may hold the port (then this one has exited).
            if let answer = try? await request("/", method: .get), answer.status == .ok,
                answer.headers[.server] == "allot", process.isRunning
            {
                try await Task.sleep(for: .milliseconds(50))
                if process.isRunning { return }
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.terminate()
        throw ServerProcessError.didNotStart(String(decoding: (try? Data(contentsOf: logURL)) ?? Data(), as: UTF8.self))
    }

    /// Sends one admin request (microversion 1.39) and returns the response.
    func request(_ path: String, method: HTTPRequest.Method, body: String? = nil) async throws -> TestClient.Response {
        try await Self.request(port: port, path, method: method, body: body)
    }

    /// Sends one admin request to the server on `port`.
    static func request(
        port: Int, _ path: String, method: HTTPRequest.Method, body: String? = nil
    ) async throws -> TestClient.Response {
        let client = TestClient(host: "127.0.0.1", port: port)
        client.connect()
        defer { Task { try? await client.shutdown() } }
        var headers: HTTPFields = [HTTPField.Name("x-auth-token")!: "admin",
                                   HTTPField.Name("openstack-api-version")!: "placement 1.39"]
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(
            TestClient.Request(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
    }

    /// SIGKILL: no shutdown path runs.
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

enum ServerProcessError: Error {
    case didNotStart(String)
}
