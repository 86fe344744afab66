import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOPosix
import Synchronization

/// A throw-away PostgreSQL cluster of a test's own (initdb into a fresh directory, a free port, fsync off), so the
/// test can stop and start it without hurting other tests. As root it belongs to `postgres` (runuser).
final class PrivatePostgres {
    let directory: URL
    private(set) var port: Int
    let bin: String
    let log: URL

    /// The highest installed PostgreSQL's `bin` directory, or `nil` when none is installed.
    static var binDirectory: String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { FileManager.default.isExecutableFile(atPath: "\(root)/\($0)/bin/initdb") }
            .sorted { $0.compare($1, options: .numeric) == .orderedAscending }
        return versions.last.map { "\(root)/\($0)/bin" }
    }

    var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=disable" }

    /// Creates and starts a cluster in `directory` (created if needed; its WAL in `walDirectory` when given),
    /// logging to `log`.
    init(directory: URL, log: URL, walDirectory: URL? = nil) async throws {
        guard let bin = Self.binDirectory else { throw FaultTestError.setup("PostgreSQL is not installed") }
        self.bin = bin
        self.directory = directory
        self.log = log
        // Below the kernel's ephemeral range and away from the servers' ports (20000–24000).
        port = Int.random(in: 25000..<32000)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try await Self.shell("chown postgres:postgres '\(directory.path)'", log: log) }
        try await Self.shell("chmod 700 '\(directory.path)'", log: log)
        var walOption = ""
        if let walDirectory {
            try FileManager.default.createDirectory(at: walDirectory, withIntermediateDirectories: true)
            if getuid() == 0 { try await Self.shell("chown postgres:postgres '\(walDirectory.path)'", log: log) }
            walOption = " -X '\(walDirectory.path)'"
        }
        try await asPostgres("'\(bin)/initdb' -D '\(directory.path)' -U postgres -A trust" + walOption)
        // A port another process took meanwhile is replaced by another (3 tries).
        for attempt in 1...3 {
            do {
                try await start()
                return
            } catch where attempt < 3 {
                port = Int.random(in: 25000..<32000)
            }
        }
    }

    func start() async throws {
        try await asPostgres("'\(bin)/pg_ctl' -D '\(directory.path)' -l '\(directory.path)/server.log' -o "
            + "\"-c listen_addresses=127.0.0.1 -p \(port) -k '\(directory.path)' -c fsync=off\" -w start")
    }

    func stop() async throws {
        try await asPostgres("'\(bin)/pg_ctl' -D '\(directory.path)' -m fast -w stop")
    }

    /// Stops the cluster if it runs; the caller removes the directory.
    func destroy() async {
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("postmaster.pid").path) {
            try? await stop()
        }
    }

    private func asPostgres(_ command: String) async throws {
        let line = getuid() == 0 ? "runuser -u postgres -- sh -c \"\(command.replacingOccurrences(of: "\"", with: "\\\""))\"" : command
        try await Self.shell(line, log: log)
    }

    /// Runs `command` through the shell (off the cooperative pool); a non-zero exit is an error.
    static func shell(_ command: String, log: URL) async throws {
        let status = await ShellScript.run(command, log: log)
        guard status == 0 else { throw FaultTestError.setup("`\(command)` exited \(status); see \(log.path)") }
    }
}

enum FaultTestError: Error {
    case setup(String)
}

/// A raw TCP connection driven byte by byte (slow clients, streams read as they come).
final class RawConnection: Sendable {
    let channel: any Channel
    private let received = Received()

    private final class Received: Sendable {
        let bytes = Mutex<[UInt8]>([])
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let sink: @Sendable ([UInt8]) -> Void
        init(sink: @escaping @Sendable ([UInt8]) -> Void) { self.sink = sink }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            sink(Array(buffer: unwrapInboundIn(data)))
        }
    }

    init(port: Int) async throws {
        let received = self.received
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector { bytes in
                        received.bytes.withLock { $0 += bytes }
                    })
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    /// Sends `text`; false when the connection is already closed.
    @discardableResult
    func send(_ text: String) async -> Bool {
        do {
            try await channel.writeAndFlush(ByteBuffer(string: text)).get()
            return true
        } catch {
            return false
        }
    }

    /// Starts `PUT /resource_classes/CUSTOM_SLOW` (as noauth's admin) whose 1000-byte body trickles in, one byte
    /// every 200 ms, for as long as the returned task runs: a request that stays in progress while the client wants.
    func startTricklingUpload() async -> Task<Void, any Error> {
        await send("PUT /resource_classes/CUSTOM_SLOW HTTP/1.1\r\nHost: x\r\nx-auth-token: admin\r\n"
            + "openstack-api-version: placement 1.39\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        return Task {
            while !Task.isCancelled {
                await self.send(" ")
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    var text: String { received.bytes.withLock { String(decoding: $0, as: UTF8.self) } }

    var isOpen: Bool { channel.isActive }

    /// Waits until the peer closes the connection, or `safety` passes (then `false`).
    func waitForClose(safety: Duration) async -> Bool {
        let deadline = ContinuousClock.now + safety
        while ContinuousClock.now < deadline {
            if !channel.isActive { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return !channel.isActive
    }

    func close() async {
        try? await channel.close()
    }
}

extension ServerProcess {
    /// Waits (off the cooperative pool) until the process exits, or `safety` passes (then `nil`: it is killed).
    func waitForExit(safety: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + safety
        while ContinuousClock.now < deadline {
            if let status = process.endedStatus { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        kill9()
        return nil
    }
}
