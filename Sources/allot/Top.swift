import AllotCore
import AllotTracker
import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import UnixSignals

/// `allot top`: the compute nodes' usage, full-screen, refreshed every few seconds.
struct Top: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch the compute nodes' usage live, full-screen (q quits).",
        discussion: """
            Polls GET /compute/v1/nodes every --interval seconds and draws one line per node: hostname, state, \
            instances, and for VCPU, MEMORY_MB and DISK_GB a bar (█ used, ▒ reserved, · free; the bar stands for \
            total × allocation ratio) with used/capacity, where capacity = (total - reserved) × allocation ratio.

            Keys: q or Ctrl-C quit; s cycles the order (hostname, most VCPU used, most memory used, most \
            instances); Up/Down, PgUp/PgDn, Home/End (or k, j, g, G) scroll; r refreshes now. A failed refresh is \
            shown in the footer and retried; a refused token (401, 403) ends the command. SIGINT and SIGTERM end \
            it too, with the terminal restored and status 0.

            Standard input and output must be a terminal; otherwise pass --once, which prints one frame as plain \
            text (as wide as the terminal, else $COLUMNS, else 120 columns) and exits.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Seconds between refreshes.")
    var interval: Double = 2

    @Option(help: "First order of the nodes: hostname, vcpu, memory or instances (most used first; s cycles).")
    var sort: TopSort = .hostname

    @Flag(help: "Print one frame as plain text and exit (for scripts; needed when stdout is not a terminal).")
    var once = false

    @Flag(help: "Draw bars with ASCII characters (# used, = reserved, . free) for terminals without UTF-8.")
    var ascii = false

    func validate() throws {
        guard interval > 0, interval.isFinite else {
            throw ValidationError("--interval must be a positive number of seconds")
        }
        guard once || isatty(STDOUT_FILENO) == 1 else {
            throw ValidationError(
                "standard output is not a terminal: pass --once to print one frame as plain text")
        }
        guard once || isatty(STDIN_FILENO) == 1 else {
            throw ValidationError(
                "standard input is not a terminal (allot top reads its keys there): pass --once to print one frame")
        }
    }

    func run() async throws {
        let client: ServiceClient
        do {
            client = try ServiceClient(
                url: connection.url, token: connection.resolvedToken(), tls: connection.tls.clientTLS,
                timeout: .seconds(30), dedicated: true)
        } catch {
            throw ValidationError(error.description)
        }
        do {
            if once {
                try await printOnce(client)
            } else {
                try await watch(client)
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    private var glyphs: TopFrame.Glyphs { ascii ? .ascii : .unicode }

    /// `--once`: one frame, plain text, every node.
    private func printOnce(_ client: ServiceClient) async throws {
        let nodes: [TopNode]
        switch await Self.fetch(client) {
        case .nodes(let fetched, _): nodes = fetched
        case .failed(let message): throw TopError(message: message)
        case .refused(let message): throw TopError(message: message)
        }
        let columns = env("COLUMNS").flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil }
        let width = TerminalSize.current()?.columns ?? columns ?? 120
        let input = TopFrame.Input(
            nodes: nodes, source: client.redactedURL.description, refreshed: Self.clock(), sort: sort)
        for line in TopFrame.render(input, width: width, height: nil, glyphs: glyphs).lines { print(line) }
    }

    /// What happens while the screen is up.
    private enum Event: Sendable {
        case key(TopKey)
        case keysEnded
        case fetched(Fetch)
        case resized
        case stop
    }

    /// The answer of one refresh.
    private enum Fetch: Sendable {
        case nodes([TopNode], at: String)
        /// Shown in the footer, and retried.
        case failed(String)
        /// The token was refused: the command ends.
        case refused(String)
    }

    /// The full-screen view: raw mode and the alternate screen until `q`, Ctrl-C, SIGINT, SIGTERM, a refused
    /// token or an error; the terminal is restored on every way out.
    private func watch(_ client: ServiceClient) async throws {
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        // At most one refresh waits: `r` pressed during a refresh asks for one more, not for one per press.
        let (refreshes, refresh) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm, .sigwinch)
        let terminal = try RawTerminal()
        defer { terminal.restore() }
        let keys = KeyReader()
        keys.start(sending: { sink.yield(.key($0)) }, ended: { sink.yield(.keysEnded) })
        defer { keys.stop() }

        let interval = Duration.seconds(self.interval)
        let colour = env("NO_COLOR") == nil && (env("TERM").map { $0 != "dumb" } ?? false)
        var input = TopFrame.Input(nodes: [], source: client.redactedURL.description, refreshed: nil, sort: sort)
        let glyphs = self.glyphs
        var rows = 1
        func draw() {
            let size = TerminalSize.current() ?? TerminalSize(columns: 80, rows: 24)
            rows = max(1, size.rows - 3)
            let frame = TopFrame.render(input, width: size.columns, height: size.rows, colour: colour, glyphs: glyphs)
            input.scroll = frame.scroll
            terminal.draw(frame.lines)
        }

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await signal in signals { sink.yield(signal == .sigwinch ? .resized : .stop) }
            }
            group.addTask {
                for await _ in refreshes { sink.yield(.fetched(await Self.fetch(client))) }
            }
            group.addTask {
                while !Task.isCancelled {
                    refresh.yield()
                    try? await Task.sleep(for: interval)
                }
            }
            defer { group.cancelAll() }
            draw()
            for await event in events {
                switch event {
                case .key(.quit), .keysEnded, .stop:
                    return
                case .key(.sort):
                    input.sort = input.sort.next
                    input.scroll = 0
                case .key(.refresh): refresh.yield()
                case .key(.up): input.scroll -= 1
                case .key(.down): input.scroll += 1
                case .key(.pageUp): input.scroll -= rows
                case .key(.pageDown): input.scroll += rows
                case .key(.home): input.scroll = 0
                case .key(.end): input.scroll = Int.max / 2
                case .resized: break
                case .fetched(.nodes(let nodes, let time)):
                    input.nodes = nodes
                    input.refreshed = time
                    input.status = nil
                case .fetched(.failed(let message)):
                    input.status = message + " (retrying)"
                case .fetched(.refused(let message)):
                    throw TopError(message: message)
                }
                draw()
            }
        }
    }

    /// One `GET /compute/v1/nodes`.
    private static func fetch(_ client: ServiceClient) async -> Fetch {
        do throws(ServiceClientError) {
            guard let list = try await client.send(.GET, "/compute/v1/nodes", as: APIAnswers.NodeList.self) else {
                return .failed("no answer")
            }
            return .nodes(list.nodes.map(TopNode.init), at: clock())
        } catch {
            switch (error.kind, error.status) {
            case (.status, 401):
                return .refused(
                    "the Allot API at \(client.redactedURL) did not accept the token (HTTP 401: \(error.detail)); "
                        + "give a valid one with --token or ALLOT_TOKEN, or --database for the admin token beside "
                        + "that database")
            case (.status, 403):
                return .refused(
                    "the token may not read the compute nodes at \(client.redactedURL) (HTTP 403: \(error.detail)); "
                        + "it needs the reader, admin or service role")
            default:
                return .failed(error.description)
            }
        }
    }

    /// The local time, `HH:MM:SS`.
    static func clock() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return String(format: "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}

/// An error of `allot top` that ends it, printed as it is.
struct TopError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The terminal's size, from standard output.
struct TerminalSize: Equatable {
    var columns: Int
    var rows: Int

    /// `nil` when standard output is not a terminal (or reports no size).
    static func current() -> TerminalSize? {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return nil }
        return TerminalSize(columns: Int(size.ws_col), rows: Int(size.ws_row))
    }
}

/// The terminal of `allot top`: standard input in raw mode (no echo, no line editing, Ctrl-C a key rather than a
/// signal), standard output on the alternate screen with the cursor hidden. ``restore()`` puts back the modes
/// saved at the start, the main screen and the cursor.
final class RawTerminal {
    private var saved = termios()
    private var restored = false

    /// - Throws: `TopError` when standard input's modes cannot be read or set.
    init() throws {
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else {
            throw TopError(message: "cannot read the terminal's modes: \(String(cString: strerror(errno)))")
        }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0 else {
            throw TopError(message: "cannot put the terminal in raw mode: \(String(cString: strerror(errno)))")
        }
        // The alternate screen, cleared, the cursor hidden.
        Self.emit("\u{1B}[?1049h\u{1B}[H\u{1B}[2J\u{1B}[?25l")
    }

    /// Draws `lines` from the top left, each erased to its end, and clears what is below them.
    func draw(_ lines: [String]) {
        Self.emit("\u{1B}[H" + lines.joined(separator: "\u{1B}[K\r\n") + "\u{1B}[K\u{1B}[J")
    }

    /// Puts the terminal back as it was (once; later calls do nothing).
    func restore() {
        guard !restored else { return }
        restored = true
        Self.emit("\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l")
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
    }

    deinit { restore() }

    /// Writes all of `text` to standard output.
    static func emit(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}

/// Reads keys from standard input on a thread of its own, so that the blocking reads never hold a thread of
/// Swift's cooperative pool, and hands them on through `sending` (an `AsyncStream`'s continuation). The thread
/// looks every 200 ms whether ``stop()`` was called, and ends at the end of input.
final class KeyReader: Sendable {
    private let stopped = Atomic<Bool>(false)

    func start(sending: @escaping @Sendable (TopKey) -> Void, ended: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            var parser = TopKeyParser()
            var buffer = [UInt8](repeating: 0, count: 64)
            while !stopped.load(ordering: .relaxed) {
                var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, 200)
                if ready < 0 && errno == EINTR { continue }
                if ready < 0 { break }
                if ready == 0 || stopped.load(ordering: .relaxed) { continue }
                let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
                if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if count <= 0 { break }
                for key in parser.feed(buffer[..<count]) { sending(key) }
            }
            if !stopped.load(ordering: .relaxed) { ended() }
        }
        thread.name = "allot-top-keys"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}
