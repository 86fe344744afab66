@testable import allot
import Foundation
import Testing

/// `allot top`: the frame layout as a pure function, its key parser, `--once` without a terminal, the full screen
/// through a pseudo-terminal (tmux), and the log format that follows the terminal (`--log-format auto`).
@Suite(.serialized) struct TopTests {
    // MARK: Frames

    static func node(
        _ name: String, vcpu: Int = 0, memory: Int = 0, disk: Int = 0, instances: Int = 0, reservedMemory: Int = 0,
        disabled: Bool = false
    ) -> TopNode {
        TopNode(
            uuid: "uuid-" + name, hostname: name, disabled: disabled, instances: instances,
            resources: [
                "VCPU": .init(total: 16, reserved: 0, allocationRatio: 1, used: vcpu),
                "MEMORY_MB": .init(total: 32768, reserved: reservedMemory, allocationRatio: 1, used: memory),
                "DISK_GB": .init(total: 400, reserved: 0, allocationRatio: 1, used: disk),
            ])
    }

    static func frame(
        _ nodes: [TopNode], width: Int = 140, height: Int? = nil, sort: TopSort = .hostname, scroll: Int = 0,
        status: String? = nil, colour: Bool = false
    ) -> (lines: [String], scroll: Int) {
        TopFrame.render(
            TopFrame.Input(
                nodes: nodes, source: "http://127.0.0.1:8778", refreshed: "12:34:56", sort: sort, scroll: scroll,
                status: status),
            width: width, height: height, colour: colour)
    }

    /// The node rows of a frame (after the header and the column names), hostname first.
    static func rows(_ lines: [String], height: Int? = nil) -> [String] {
        let body = lines.dropFirst(2)
        return Array(height == nil ? body : body.dropLast()).filter { !$0.isEmpty }
    }

    static func count(_ character: Character, in text: String) -> Int { text.filter { $0 == character }.count }

    @Test func barsAreProportionalToUsage() {
        func cells(_ used: Int, of total: Int = 16, reserved: Int = 0, ratio: Double = 1, width: Int = 20) -> [Int] {
            let cells = TopFrame.cells(.init(total: total, reserved: reserved, allocationRatio: ratio, used: used), width: width)
            return [cells.used, cells.reserved, cells.free]
        }
        #expect(cells(0) == [0, 0, 20])
        #expect(cells(4) == [5, 0, 15])
        #expect(cells(8) == [10, 0, 10])
        #expect(cells(16) == [20, 0, 0])
        // Anything used shows, and a bar is full only when nothing is free.
        #expect(cells(1, of: 1000) == [1, 0, 19])
        #expect(cells(15) == [19, 0, 1])
        // Over capacity (a ratio lowered under running instances): full, no more.
        #expect(cells(20) == [20, 0, 0])
        // The allocation ratio scales the capacity: 4 of 16 × 4 = 64.
        #expect(cells(16, ratio: 4) == [5, 0, 15])
        #expect(cells(3, width: 0) == [0, 0, 0])

        // In a frame: node-a uses half its VCPU, node-b nothing; the numbers are used/capacity.
        let lines = Self.frame([Self.node("node-a", vcpu: 8, memory: 8192, disk: 400), Self.node("node-b")]).lines
        let rows = Self.rows(lines)
        #expect(rows.count == 2)
        #expect(rows[0].hasPrefix("node-a") && rows[0].contains("8/16") && rows[0].contains("8192/32768")
                && rows[0].contains("400/400"))
        #expect(rows[1].hasPrefix("node-b") && rows[1].contains("0/16") && !rows[1].contains("█"))
        // Three bars of one width: node-a's are half, a quarter and all used.
        let bar = Self.count("█", in: rows[0]) + Self.count("·", in: rows[0])
        #expect(Self.count("·", in: rows[1]) == bar)
        #expect(bar % 3 == 0)
        let width = bar / 3
        let used = Self.count("█", in: rows[0])
        #expect(used == TopFrame.cells(.init(total: 16, reserved: 0, allocationRatio: 1, used: 8), width: width).used
                + TopFrame.cells(.init(total: 32768, reserved: 0, allocationRatio: 1, used: 8192), width: width).used
                + width)
        #expect(lines[0].contains("2 nodes") && lines[0].contains("VCPU 8/32") && lines[0].contains("MEMORY_MB 8192/65536")
                && lines[0].contains("DISK_GB 400/800") && lines[0].contains("12:34:56"))
    }

    @Test func reservedIsShownApartFromUsedAndFree() {
        // A quarter of the memory is reserved: a quarter of the bar; the capacity (the rest) is half used.
        let resource = TopNode.Resource(total: 32768, reserved: 8192, allocationRatio: 1, used: 12288)
        #expect(resource.capacity == 24576)
        let cells = TopFrame.cells(resource, width: 20)
        #expect(cells.used == 8 && cells.reserved == 5 && cells.free == 7)
        // Even a little reserved gets a cell.
        #expect(TopFrame.cells(.init(total: 32768, reserved: 16, allocationRatio: 1, used: 0), width: 20).reserved == 1)
        // Nearly all reserved: the capacity left keeps a cell.
        let most = TopFrame.cells(TopNode.Resource(total: 16, reserved: 15, allocationRatio: 1, used: 0), width: 4)
        #expect(most.reserved == 3 && most.free == 1)
        // All reserved: no capacity, the whole bar reserved.
        let full = TopFrame.cells(TopNode.Resource(total: 8, reserved: 8, allocationRatio: 1, used: 0), width: 10)
        let cellsOfFull: [Int] = [full.used, full.reserved, full.free]
        #expect(cellsOfFull == [0, 10, 0])

        let row = Self.rows(Self.frame([Self.node("node-a", memory: 12288, reservedMemory: 8192)]).lines)[0]
        #expect(row.contains("▒"))
        #expect(row.contains("12288/24576"))
        // The memory bar is used, then reserved, then free.
        #expect(row.contains(/█+▒+·+/))
    }

    @Test func narrowTerminalsCutHostnamesThenBars() {
        let long = "compute-node-with-a-very-long-hostname-in-rack-7.example.org"
        let nodes = [Self.node(long, vcpu: 4, memory: 1024, disk: 10), Self.node("n2", vcpu: 16)]
        for width in [200, 140, 100, 80, 60, 40, 20, 5] {
            let lines = Self.frame(nodes, width: width, height: 10).lines
            #expect(lines.count == 10)
            for line in lines { #expect(line.count <= width, "width \(width): \(line)") }
        }
        // Wide: a column of 32 characters; the hostname loses its domain, then its middle.
        let wide = Self.rows(Self.frame(nodes, width: 200).lines)[0]
        #expect(wide.hasPrefix("compute-node-wit…tname-in-rack-7 "), "\(wide)")
        // 80 columns: the hostname column shrinks so the bars keep some room.
        let narrow = Self.rows(Self.frame(nodes, width: 80).lines)[0]
        #expect(narrow.hasPrefix("comp…k-7 ") && narrow.contains("█") && narrow.contains("4/16"), "\(narrow)")
        // 50 columns: no room for bars; the numbers stay.
        let numbers = Self.rows(Self.frame(nodes, width: 50).lines)[0]
        #expect(!numbers.contains("█") && !numbers.contains("·"))
        #expect(numbers.hasPrefix("comp…k-7 "))
        #expect(numbers.contains("4/16"))

        // Hostnames: whole when they fit, else without the domain, else cut in the middle.
        #expect(TopFrame.hostname("node-1", width: 8, dropDomain: true) == "node-1  ")
        #expect(TopFrame.hostname("node-1.example.org", width: 8, dropDomain: true) == "node-1  ")
        #expect(TopFrame.hostname("node-1.example.org", width: 8, dropDomain: false) == "node…org")
        #expect(TopFrame.hostname("compute-0042", width: 8, dropDomain: true) == "comp…042")
        // In a frame 60 wide (a hostname column of 8): the domain goes, unless two nodes would then look alike.
        func names(_ hostnames: [String]) -> [String] {
            Self.rows(Self.frame(hostnames.map { Self.node($0) }, width: 60).lines).map { String($0.prefix(9)) }
        }
        #expect(names(["db1.east1", "db2.west2"]) == ["db1      ", "db2      "])
        #expect(names(["db1.east1", "db1.west2"]) == ["db1.…st1 ", "db1.…st2 "])
    }

    @Test func sortOrders() {
        let nodes = [
            Self.node("b", vcpu: 2, memory: 9000, instances: 1),
            Self.node("a", vcpu: 1, memory: 100, instances: 5),
            Self.node("c", vcpu: 9, memory: 4000, instances: 3),
            Self.node("d", vcpu: 9, memory: 0, instances: 0),
        ]
        func order(_ sort: TopSort) -> [String] {
            Self.rows(Self.frame(nodes, sort: sort).lines).map { String($0.prefix(while: { $0 != " " })) }
        }
        #expect(order(.hostname) == ["a", "b", "c", "d"])
        #expect(order(.vcpu) == ["c", "d", "b", "a"])  // ties by hostname
        #expect(order(.memory) == ["b", "c", "a", "d"])
        #expect(order(.instances) == ["a", "c", "b", "d"])
        #expect(TopSort.hostname.next == .vcpu && TopSort.instances.next == .hostname)
        let footer = Self.frame(nodes, height: 10, sort: .memory).lines.last ?? ""
        #expect(footer.contains("sort: most memory used"))
    }

    @Test func scrollingShowsAWindowOfTheNodes() {
        let nodes = (0..<10).map { Self.node(String(format: "n%02d", $0)) }
        func window(_ scroll: Int) -> (names: [String], scroll: Int, footer: String) {
            let frame = Self.frame(nodes, height: 6, scroll: scroll)
            #expect(frame.lines.count == 6)
            return (Self.rows(frame.lines, height: 6).map { String($0.prefix(3)) }, frame.scroll, frame.lines.last ?? "")
        }
        #expect(window(0).names == ["n00", "n01", "n02"])
        #expect(window(0).footer.contains("nodes 1-3 of 10"))
        #expect(window(4).names == ["n04", "n05", "n06"])
        // Past the end it stops at the last full page; before the start, at the first.
        #expect(window(100).names == ["n07", "n08", "n09"] && window(100).scroll == 7)
        #expect(window(100).footer.contains("nodes 8-10 of 10"))
        #expect(window(-5).scroll == 0)
        // Everything fits: no scrolling at all.
        #expect(Self.frame(nodes, height: 40, scroll: 3).scroll == 0)
        // --once (no height): every node, no footer.
        let once = Self.frame(nodes).lines
        #expect(once.count == 12 && !once.contains { $0.contains("q quit") })
        // No nodes.
        #expect(Self.frame([], height: 10).lines.contains { $0.contains("no compute nodes") })
    }

    @Test func colourChangesNoLayoutAndErrorsShowInTheFooter() throws {
        let nodes = [Self.node("node-a", vcpu: 15, memory: 12288, reservedMemory: 8192), Self.node("node-b", disabled: true)]
        let plain = Self.frame(nodes, height: 8, status: "GET http://127.0.0.1:8778/compute/v1/nodes: refused").lines
        let coloured = Self.frame(nodes, height: 8, status: "GET http://127.0.0.1:8778/compute/v1/nodes: refused", colour: true).lines
        #expect(coloured.joined().contains("\u{1B}[31m"))  // VCPU above 90 %, and the disabled state
        #expect(coloured.map { $0.replacing(/\x{1B}\[[0-9;]*m/, with: "") } == plain)
        #expect(!plain.joined().contains("\u{1B}"))
        #expect(plain.last?.hasPrefix("GET http://127.0.0.1:8778/compute/v1/nodes: refused") == true)
        #expect(Self.rows(plain, height: 8)[1].contains("disabled"))
        let ascii = TopFrame.render(
            .init(nodes: nodes, source: "x", refreshed: nil), width: 140, height: nil, glyphs: .ascii).lines
        #expect(ascii.allSatisfy { $0.allSatisfy(\.isASCII) })
        #expect(ascii[0].contains("waiting for the first answer"))
    }

    @Test func keysFromRawBytes() {
        var parser = TopKeyParser()
        #expect(parser.feed(Array("qsrR".utf8)) == [.quit, .sort, .refresh, .refresh])
        #expect(parser.feed([0x03]) == [.quit])  // Ctrl-C
        #expect(parser.feed(Array("\u{1B}[A\u{1B}[B\u{1B}OA\u{1B}OB".utf8)) == [.up, .down, .up, .down])
        #expect(parser.feed(Array("\u{1B}[5~\u{1B}[6~\u{1B}[H\u{1B}[4~".utf8)) == [.pageUp, .pageDown, .home, .end])
        // A sequence cut between two reads.
        #expect(parser.feed(Array("\u{1B}[".utf8)).isEmpty)
        #expect(parser.feed(Array("6~".utf8)) == [.pageDown])
        #expect(parser.feed([0x1B]).isEmpty)
        #expect(parser.feed(Array("O".utf8)).isEmpty)
        #expect(parser.feed(Array("B".utf8)) == [.down])
        // Unknown keys and sequences are dropped; a lone ESC does not eat the next key.
        #expect(parser.feed(Array("x\u{1B}[15~\u{1B}s".utf8)) == [.sort])
    }

    @Test func logFormatAutoFollowsTheTerminal() {
        #expect(Serve.LogFormat.auto.resolved(stderrIsTerminal: true) == .text)
        #expect(Serve.LogFormat.auto.resolved(stderrIsTerminal: false) == .json)
        #expect(Serve.LogFormat.json.resolved(stderrIsTerminal: true) == .json)
        #expect(Serve.LogFormat.text.resolved(stderrIsTerminal: false) == .text)
    }

    // MARK: A real server

    static let nodeA = "aaaaaaaa-0000-4000-8000-0000000000e1"
    static let nodeB = "bbbbbbbb-0000-4000-8000-0000000000e2"
    static let nodeC = "cccccccc-0000-4000-8000-0000000000e3"

    /// A server (token auth, the fake driver) with three nodes, an instance of 8 VCPU on `top-node-a` and one of 2
    /// on `top-node-c`; its admin token.
    static func serverWithAClaim(_ directory: URL) async throws -> (ServerProcess, String) {
        try """
        {"nodes": [
          {"hostname": "top-node-a", "uuid": "\(nodeA)", "vcpus": 16, "memory_mb": 32768, "disk_gb": 400},
          {"hostname": "top-node-b", "uuid": "\(nodeB)", "vcpus": 16, "memory_mb": 32768, "disk_gb": 400},
          {"hostname": "top-node-c", "uuid": "\(nodeC)", "vcpus": 32, "memory_mb": 65536, "disk_gb": 800}
        ]}
        """.write(to: directory.appendingPathComponent("nodes.json"), atomically: true, encoding: .utf8)
        let database = directory.appendingPathComponent("allot.sqlite").path
        let server = try await ServerProcess(
            command: ["serve", "--database", database]
                + ComputeServer.fakeDriver(nodesFile: directory.appendingPathComponent("nodes.json").path),
            logDirectory: directory, auth: ["--auth", "token"])
        let (shown, output) = await TokenCLITests.allot(["token", "--database", database], in: directory)
        #expect(shown == 0, "\(output)")
        let token = ShellScript.lastLine(output)
        SecretScan.register(token)
        let (claimed, claim) = await TokenCLITests.allot(
            ["claim", "build", "--url", "http://127.0.0.1:\(server.port)", "--token", token, "--node", nodeA,
             "--vcpus", "8", "--memory-mb", "16384", "--root-gb", "100"], in: directory)
        #expect(claimed == 0, "\(claim)")
        let (second, output2) = await TokenCLITests.allot(
            ["claim", "build", "--url", "http://127.0.0.1:\(server.port)", "--token", token, "--node", nodeC,
             "--vcpus", "2", "--memory-mb", "2048", "--root-gb", "10"], in: directory)
        #expect(second == 0, "\(output2)")
        return (server, token)
    }

    @Test func onceWritesOnePlainFrame() async throws {
        let directory = try TokenCLITests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (server, token) = try await Self.serverWithAClaim(directory)
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)"

        // Output to a file: no terminal, so no size either; COLUMNS gives the width.
        let log = directory.appendingPathComponent("once.txt")
        let status = await ShellScript.run(
            "COLUMNS=100 '\(ServerProcess.binary.path)' top --once --url \(url) --token \(token) --sort vcpu", log: log)
        let text = ShellScript.text(log)
        #expect(status == 0, "\(text)")
        #expect(!text.contains("\u{1B}"), "escape codes in --once output")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 5, "\(text)")  // header, column names, three nodes
        for line in lines { #expect(line.count <= 100, "\(line)") }
        #expect(lines.first?.contains("3 nodes") == true && lines.first?.contains("VCPU 10/64") == true, "\(text)")
        // Sorted by VCPU used: the node with 8 first, its bar a half used, then the one with 2, then the empty one.
        #expect(lines[2].hasPrefix("top-node-a") && lines[2].contains("8/16") && lines[2].contains("16384/32768")
                && lines[2].contains("100/400"), "\(text)")
        #expect(lines[3].hasPrefix("top-node-c") && lines[3].contains("2/32"), "\(text)")
        #expect(lines[4].hasPrefix("top-node-b") && lines[4].contains("0/16"), "\(text)")
        #expect(lines[2].contains("█") && lines[3].contains("█") && !lines[4].contains("█"), "\(text)")
        #expect(lines[2].contains("enabled") && lines[2].contains(" 1 "), "\(text)")

        // Without --once and without a terminal: a usage error that names --once.
        let refusedLog = directory.appendingPathComponent("no-terminal.txt")
        let refused = await ShellScript.run(
            "'\(ServerProcess.binary.path)' top --url \(url) --token \(token)", log: refusedLog)
        #expect(refused == 64, "\(ShellScript.text(refusedLog))")
        #expect(ShellScript.text(refusedLog).contains("pass --once"))
        // A bad interval.
        let badLog = directory.appendingPathComponent("interval.txt")
        #expect(await ShellScript.run("'\(ServerProcess.binary.path)' top --once --interval 0", log: badLog) == 64)
        // A token the server does not know: a message about the token.
        let wrongLog = directory.appendingPathComponent("wrong-token.txt")
        let wrong = await ShellScript.run(
            "'\(ServerProcess.binary.path)' top --once --url \(url) --token not-a-token-of-this-server", log: wrongLog)
        #expect(wrong == 1, "\(ShellScript.text(wrongLog))")
        #expect(ShellScript.text(wrongLog).contains("did not accept the token"), "\(ShellScript.text(wrongLog))")
    }

    // MARK: Through a pseudo-terminal

    static let tmuxPath: String? = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A private tmux server (its own socket) for one test; ``kill()`` ends it.
    struct Tmux {
        let socket = "allot-top-\(newUUID().prefix(8))"
        let directory: URL

        /// Runs `tmux -L socket ARGS` and returns its status and output.
        @discardableResult
        func run(_ arguments: String) async -> (Int32, String) {
            let out = directory.appendingPathComponent("tmux-\(newUUID()).out")
            let status = await ShellScript.status(
                "'\(TopTests.tmuxPath ?? "tmux")' -u -L \(socket) -f /dev/null \(arguments) > '\(out.path)' 2>&1 < /dev/null")
            defer { try? FileManager.default.removeItem(at: out) }
            return (status, ShellScript.text(out))
        }

        func screen(_ session: String) async -> String { await run("capture-pane -p -t \(session)").1 }

        /// `#{format}` of the session's pane.
        func show(_ session: String, _ format: String) async -> String {
            await run("display-message -p -t \(session) '\(format)'").1.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Polls `condition` on the screen every 100 ms for up to `deadline` (generous: the machine may be busy).
        func waitFor(
            _ session: String, deadline: Duration = .seconds(60), _ condition: (String) -> Bool
        ) async throws -> String {
            let end = ContinuousClock.now + deadline
            var screen = ""
            while ContinuousClock.now < end {
                screen = await self.screen(session)
                if condition(screen) { return screen }
                try await Task.sleep(for: .milliseconds(100))
            }
            return screen
        }

        /// Ends the tmux server at once, whatever the test reached (for `defer`; it takes milliseconds), and removes
        /// its socket file, which tmux leaves behind.
        func killNow() {
            _ = system("'\(TopTests.tmuxPath ?? "tmux")' -L \(socket) kill-server > /dev/null 2>&1 < /dev/null")
            let base = ProcessInfo.processInfo.environment["TMUX_TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
            try? FileManager.default.removeItem(atPath: "\(base)/tmux-\(getuid())/\(socket)")
        }
    }

    /// Waits until `file` exists and holds a line; then its text, trimmed.
    static func waitForFile(_ file: URL, deadline: Duration = .seconds(60)) async throws -> String? {
        let end = ContinuousClock.now + deadline
        while ContinuousClock.now < end {
            let text = ShellScript.text(file).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { return text }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    @Test(.enabled(if: tmuxPath != nil, "tmux is not installed (.ci/run installs it from Debian's packages)"))
    func fullScreenInAPseudoTerminal() async throws {
        let directory = try TokenCLITests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (server, token) = try await Self.serverWithAClaim(directory)
        defer { server.stop() }
        let tmux = Tmux(directory: directory)
        defer { tmux.killNow() }
        let statusFile = directory.appendingPathComponent("top.status")
        // allot's exit status goes to a file; the shell then stays, so the screen after the exit can be read.
        let command = "'\(ServerProcess.binary.path)' top --url http://127.0.0.1:\(server.port) --token \(token) --interval 1;"
            + " echo \\$? > '\(statusFile.path)'; exec sleep 600"
        let (started, startOutput) = await tmux.run("new-session -d -s top -x 140 -y 40 \"\(command)\"")
        try #require(started == 0, "\(startOutput)")

        // The hostnames, and the used bar of the claimed node.
        let screen = try await tmux.waitFor("top") { screen in
            ["top-node-a", "top-node-b", "top-node-c"].allSatisfy(screen.contains)
                && screen.split(separator: "\n").contains { $0.hasPrefix("top-node-a") && $0.contains("█") }
        }
        let lines = screen.split(separator: "\n").map(String.init)
        let nodeA = try #require(lines.first { $0.hasPrefix("top-node-a") }, "\(screen)")
        #expect(nodeA.contains("8/16") && nodeA.contains("16384/32768") && nodeA.contains("100/400"), "\(screen)")
        #expect(lines.first { $0.hasPrefix("top-node-b") }?.contains("█") == false, "\(screen)")
        #expect(lines.first?.contains("3 nodes") == true, "\(screen)")
        #expect(screen.contains("q quit"), "\(screen)")
        #expect(lines.allSatisfy { $0.count <= 140 })
        #expect(await tmux.show("top", "#{alternate_on}") == "1")
        #expect(await tmux.show("top", "#{cursor_flag}") == "0")

        // `s`: most VCPU used first, the footer says so.
        await tmux.run("send-keys -t top s")
        let sorted = try await tmux.waitFor("top") { $0.contains("sort: most VCPU used") }
        let order = sorted.split(separator: "\n").filter { $0.hasPrefix("top-node-") }.map { String($0.prefix(10)) }
        #expect(order == ["top-node-a", "top-node-c", "top-node-b"], "\(sorted)")

        // `q`: status 0, the main screen back, the cursor shown.
        await tmux.run("send-keys -t top q")
        let status = try await Self.waitForFile(statusFile)
        #expect(status == "0", "allot top exited with \(status ?? "nothing (still running)")")
        #expect(await tmux.show("top", "#{alternate_on}") == "0")
        #expect(await tmux.show("top", "#{cursor_flag}") == "1")
        #expect(!(await tmux.screen("top")).contains("q quit"))

        // A refused token ends it with a message about the token, the terminal restored as well.
        let refusedFile = directory.appendingPathComponent("refused.status")
        let refused = "'\(ServerProcess.binary.path)' top --url http://127.0.0.1:\(server.port) --token wrong-token-0123;"
            + " echo \\$? > '\(refusedFile.path)'; exec sleep 600"
        try #require(await tmux.run("new-session -d -s refused -x 140 -y 40 \"\(refused)\"").0 == 0)
        #expect(try await Self.waitForFile(refusedFile) == "1")
        let after = await tmux.screen("refused")
        #expect(after.contains("did not accept the token"), "\(after)")
        #expect(await tmux.show("refused", "#{alternate_on}") == "0")
    }

    // MARK: Log format

    /// Starts `allot serve` on a free port (no agent, noauth, in memory) with `arguments`, its standard error either
    /// in a file or on a pseudo-terminal (`script`), until it says it serves; then stops it and returns the log's
    /// non-empty lines.
    static func serveLog(
        _ arguments: [String], terminal: Bool, environment: [String: String] = [:], in directory: URL
    ) async throws -> [String] {
        let log = directory.appendingPathComponent("serve-\(newUUID()).log")
        let pidFile = directory.appendingPathComponent("serve-\(newUUID()).pid")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let serve = ["'\(ServerProcess.binary.path)'", "serve", "--database", ":memory:", "--port", "0", "--no-agent",
                     "--auth", "noauth"] + arguments
        let process = Process()
        var variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if environment["ALLOT_LOG_FORMAT"] == nil { variables["ALLOT_LOG_FORMAT"] = nil }
        process.environment = variables
        // The shell writes its pid, then becomes allot (exec): the pid to stop.
        let line = "echo $$ > '\(pidFile.path)'; exec \(serve.joined(separator: " "))"
        if terminal {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            process.arguments = ["-qfec", line, "/dev/null"]
        } else {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", line]
        }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let end = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < end, !ShellScript.text(log).contains("Serving the Placement API"), !process.hasEnded {
            try await Task.sleep(for: .milliseconds(100))
        }
        if let pid = Int32(ShellScript.text(pidFile).trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(pid, SIGTERM)
        }
        #expect(await process.exitStatus() == 0, "\(ShellScript.text(log))")
        try? handle.close()
        let text = ShellScript.text(log)
        #expect(text.contains("Serving the Placement API"), "\(text)")
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func isJSONLine(_ line: String) -> Bool {
        guard line.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { return false }
        return object["msg"] != nil
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "script(1) is not installed"))
    func logFormatFollowsTheTerminal() async throws {
        let directory = try TokenCLITests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // To a file: JSON lines.
        let file = try await Self.serveLog([], terminal: false, in: directory)
        #expect(!file.isEmpty && file.allSatisfy(Self.isJSONLine), "\(file)")
        // On a terminal: text lines.
        let pty = try await Self.serveLog([], terminal: true, in: directory)
        #expect(!pty.isEmpty && !pty.contains(where: { $0.hasPrefix("{") }), "\(pty)")
        #expect(pty.contains { $0.contains("info") && $0.contains("Serving the Placement API") }, "\(pty)")
        // --log-format json wins on a terminal, and over the environment.
        let json = try await Self.serveLog(
            ["--log-format", "json"], terminal: true, environment: ["ALLOT_LOG_FORMAT": "text"], in: directory)
        #expect(!json.isEmpty && json.allSatisfy(Self.isJSONLine), "\(json)")
        // The environment wins over auto.
        let text = try await Self.serveLog([], terminal: false, environment: ["ALLOT_LOG_FORMAT": "text"], in: directory)
        #expect(!text.isEmpty && !text.contains(where: { $0.hasPrefix("{") }), "\(text)")
    }
}
