import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// A real `allot serve` process, started from the built binary, for tests that kill or replicate it.
final class ServerProcess {
    let port: Int
    let process: Process
    let logURL: URL
    /// The secrets this server was given (see ``SecretScan``).
    private(set) var secrets: Set<String> = []

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
        secrets = SecretScan.secrets(
            arguments: process.arguments ?? [],
            environment: environment.merging(ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("ALLOT_") }) { a, _ in a })
        try process.run()
        for _ in 0..<300 {
            // Only this process counts: another server may hold the port (then this one has exited).
            if let answer = try? await request("/", method: .get), answer.status == .ok,
                answer.headers[.server] == "allot", process.isRunning,
                Self.listens(pid: process.processIdentifier, port: fixedPort)
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

    /// Whether process `pid` holds the socket listening on TCP `port` of 127.0.0.1: the answer on the port may come
    /// from another `allot serve` (a script's) that took it while this one was still starting up.
    static func listens(pid: Int32, port: Int) -> Bool {
        let hexPort = String(format: "%04X", port)
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return false }
        // Rows: sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …; 0A is LISTEN.
        let inodes = table.split(separator: "\n").dropFirst().compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, fields[1].hasSuffix(":" + hexPort), fields[3] == "0A" else { return nil }
            return String(fields[9])
        }
        guard !inodes.isEmpty,
            let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        else { return false }
        let sockets = Set(descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") })
        return inodes.contains { sockets.contains("socket:[\($0)]") }
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
        let response = try await client.execute(
            TestClient.Request(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
        if response.status.code >= 400, let answer = response.body {
            SecretScan.check(String(buffer: answer), secrets: [], what: "the \(response.status.code) body of \(method) \(path)")
        }
        return response
    }

    /// SIGKILL: no shutdown path runs.
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilEnded()
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilEnded()
        }
        SecretScan.check(log: logURL, secrets: secrets)
    }
}

/// Waiting for a child without `waitUntilExit()`. Foundation learns of a child's exit on a thread of its own, and in
/// the full suite (a loaded machine, dozens of children) that came up to minutes late, while `waitUntilExit()` spun
/// one of the cooperative pool's two threads: every other test of the process stalled behind it (a server then
/// closed a test client's idle connection: "I/O on closed channel").
extension Process {
    /// Whether the child has ended, as the kernel sees it: gone, or a zombie not yet reaped by Foundation.
    var hasEnded: Bool {
        if !isRunning { return true }
        guard let stat = try? String(contentsOfFile: "/proc/\(processIdentifier)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        let state = stat[stat.index(after: close)...].first { $0 != " " }
        return state == "Z" || state == "X"
    }

    /// Blocks until a child that was told to stop has ended (milliseconds; `limit` is a safety net), sleeping
    /// between looks rather than spinning.
    func waitUntilEnded(limit: Duration = .seconds(60)) {
        let deadline = ContinuousClock.now + limit
        while !hasEnded && ContinuousClock.now < deadline { usleep(5_000) }
    }

    /// Waits, without holding a thread, until the child has ended; then its exit status.
    func exitStatus() async -> Int32 {
        while true {
            if let status = endedStatus { return status }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The exit status (or the signal that ended it, as `terminationStatus` gives it) once the child has ended,
    /// `nil` while it runs. Read from the kernel without reaping the child (`waitid` with `WNOWAIT`, which leaves
    /// it to Foundation), so it does not wait for Foundation's thread to notice the exit.
    var endedStatus: Int32? {
        if !isRunning { return terminationStatus }
        var info = siginfo_t()
        // WNOHANG: 0 with no pid filled in while the child runs; -1 (ECHILD) once Foundation has reaped it, and
        // then `isRunning` answers on the next look.
        guard waitid(P_PID, id_t(processIdentifier), &info, WEXITED | WNOHANG | WNOWAIT) == 0,
            info._sifields._sigchld.si_pid == processIdentifier
        else { return nil }
        return info._sifields._sigchld.si_status
    }
}

/// Every server run of the suite is checked for leaked secrets: when it stops, its whole log; and every error
/// body a test reads through ``ServerProcess/request(port:_:method:body:)``. A secret is any value the server
/// was given after an option naming a token, password or key, any password in a URL it was given, any
/// environment value whose name says TOKEN, PASSWORD or SECRET, and anything a test registers.
enum SecretScan {
    private static let registered = Mutex<Set<String>>([])

    /// Adds secrets (a token a test sends, a password it sets) to every later check.
    static func register(_ values: String...) {
        registered.withLock { $0.formUnion(values.filter(isSecretShaped)) }
    }

    /// Short values ("admin", noauth's user:project pairs) are names, not secrets: they appear in answers.
    static func isSecretShaped(_ value: String) -> Bool { value.count >= 12 }

    /// The secrets in a server's command line and environment.
    static func secrets(arguments: [String], environment: [String: String]) -> Set<String> {
        var found = Set<String>()
        let secretOption = /^--(.*-)?(token|password|secret)$/
        for (index, argument) in arguments.enumerated() {
            if index > 0, arguments[index - 1].contains(secretOption), !argument.hasPrefix("--"),
                !arguments[index - 1].hasPrefix("--tls-key")  // a key's path is not the key
            {
                found.insert(argument)
            }
            if let password = urlPassword(argument) { found.insert(password) }
        }
        for (name, value) in environment {
            if name.contains(/TOKEN|PASSWORD|SECRET/) { found.insert(value) }
            if let password = urlPassword(value) { found.insert(password) }
        }
        return found.filter(isSecretShaped)
    }

    /// The password of a `scheme://user:password@host` URL.
    static func urlPassword(_ text: String) -> String? {
        guard let url = URLComponents(string: text), url.host != nil, let password = url.password, !password.isEmpty
        else { return nil }
        return password.removingPercentEncoding ?? password
    }

    static func all(_ own: Set<String>) -> Set<String> { own.union(registered.withLock { $0 }) }

    /// Records an issue for each secret `text` holds (named by its first characters only).
    static func check(_ text: String, secrets: Set<String>, what: String) {
        for secret in all(secrets) where text.contains(secret) {
            Issue.record("\(what) holds a secret (\(secret.prefix(4))…)")
        }
    }

    static func check(log: URL, secrets: Set<String>) {
        check(ShellScript.text(log), secrets: secrets, what: "the server log \(log.lastPathComponent)")
    }
}

enum ServerProcessError: Error {
    case didNotStart(String)
}
