import AllotCore
import ArgumentParser

/// One compute node as `allot top` draws it: what `GET /compute/v1/nodes` says of it.
struct TopNode: Sendable, Equatable {
    /// One resource class of the node.
    struct Resource: Sendable, Equatable {
        var total: Int
        var reserved: Int
        var allocationRatio: Double
        var used: Int

        /// `(total - reserved) * allocation_ratio`, rounded down, as Placement counts it.
        var capacity: Int { Inventory(total: total, reserved: reserved, allocationRatio: allocationRatio).capacity }
    }

    var uuid: String
    var hostname: String
    var disabled: Bool
    var instances: Int
    var resources: [String: Resource]

    init(uuid: String, hostname: String, disabled: Bool = false, instances: Int = 0, resources: [String: Resource]) {
        self.uuid = uuid
        self.hostname = hostname
        self.disabled = disabled
        self.instances = instances
        self.resources = resources
    }

    init(_ node: APIAnswers.Node) {
        var resources: [String: Resource] = [:]
        for (name, inventory) in node.inventories {
            resources[name] = Resource(
                total: inventory.total, reserved: inventory.reserved, allocationRatio: inventory.allocationRatio,
                used: node.usage[name] ?? 0)
        }
        self.init(
            uuid: node.uuid, hostname: node.hostname, disabled: node.disabled,
            instances: node.stats["num_instances"] ?? 0, resources: resources)
    }

    func used(_ resourceClass: String) -> Int { resources[resourceClass]?.used ?? 0 }
}

/// The orders `allot top` lists nodes in; `s` cycles through them.
enum TopSort: String, CaseIterable, ExpressibleByArgument, Sendable {
    case hostname, vcpu, memory, instances

    var next: TopSort {
        let all = Self.allCases
        return all[(all.firstIndex(of: self)! + 1) % all.count]
    }

    /// How the footer names the order.
    var label: String {
        switch self {
        case .hostname: "hostname"
        case .vcpu: "most VCPU used"
        case .memory: "most memory used"
        case .instances: "most instances"
        }
    }

    /// `nodes` in this order; ties by hostname, then uuid, so a refresh never reshuffles equal rows.
    func ordered(_ nodes: [TopNode]) -> [TopNode] {
        func key(_ node: TopNode) -> Int {
            switch self {
            case .hostname: 0
            case .vcpu: node.used("VCPU")
            case .memory: node.used("MEMORY_MB")
            case .instances: node.instances
            }
        }
        return nodes.sorted { a, b in
            let (ka, kb) = (key(a), key(b))
            if ka != kb { return ka > kb }
            if a.hostname != b.hostname { return a.hostname < b.hostname }
            return a.uuid < b.uuid
        }
    }
}

/// The frames of `allot top`: a pure function from the nodes, the terminal's size, the order and the scroll
/// position to the lines on the screen, so that the layout is tested without a terminal.
///
/// Layout: a header (the API, the node count, used/capacity of VCPU, MEMORY_MB and DISK_GB over all nodes, the time
/// of the last refresh), a line of column names, one line per node (hostname, state, instances, then per class a
/// bar and `used/capacity`), and, on a terminal, a footer with the keys and the last error. No line is wider than
/// the terminal: the bars share what the other columns leave, hostnames are cut to make room for bars of at least
/// ``minimumBar`` cells, bars that would be narrower than 3 cells are left out (the numbers stay), and any line
/// still too long is cut at the edge.
enum TopFrame {
    /// The classes drawn, in column order.
    static let classes = ["VCPU", "MEMORY_MB", "DISK_GB"]
    static let minimumBar = 10
    static let stateWidth = 8  // "disabled"
    static let instancesWidth = 4  // "INST"

    /// The characters of a bar: used, reserved, free. Distinct shapes, so it reads without colour.
    struct Glyphs: Sendable, Equatable {
        var used: Character
        var reserved: Character
        var free: Character

        static let unicode = Glyphs(used: "█", reserved: "▒", free: "·")
        static let ascii = Glyphs(used: "#", reserved: "=", free: ".")
    }

    /// What a frame shows besides the nodes.
    struct Input: Sendable {
        var nodes: [TopNode]
        /// The API's URL (redacted).
        var source: String
        /// The local time of the last successful refresh, `nil` before the first.
        var refreshed: String?
        var sort: TopSort = .hostname
        /// The first node row shown (clamped by ``render(_:width:height:colour:glyphs:)``).
        var scroll: Int = 0
        /// The last refresh's failure, shown in the footer.
        var status: String?
    }

    /// The lines of one frame.
    /// - Parameters:
    ///   - height: the terminal's rows; `nil` for every node and no footer (`--once`).
    ///   - colour: add SGR colour codes (the layout, and the text without the codes, are the same either way).
    /// - Returns: the lines (at most `height`, none wider than `width`) and the scroll position actually used.
    static func render(
        _ input: Input, width: Int, height: Int?, colour: Bool = false, glyphs: Glyphs = .unicode
    ) -> (lines: [String], scroll: Int) {
        let width = max(1, width)
        let nodes = input.sort.ordered(input.nodes)
        var lines: [StyledLine] = [header(input, nodes)]

        // Column widths: the numbers first, then the hostname, then the bars share the rest.
        let numbers = classes.map { name in
            max(3, nodes.map { numbersText($0.resources[name]).count }.max() ?? 0)
        }
        let longestName = max(8, nodes.map(\.hostname.count).max() ?? 0)
        var nameWidth = min(longestName, 32)
        func barWidth(_ nameWidth: Int) -> Int {
            let fixed = nameWidth + 1 + stateWidth + 1 + instancesWidth + numbers.reduce(0) { $0 + 3 + $1 }
            return max(0, (width - fixed) / classes.count)
        }
        var bar = barWidth(nameWidth)
        if bar < minimumBar, nameWidth > 8 {
            nameWidth = max(8, nameWidth - (minimumBar - bar) * classes.count)
            bar = barWidth(nameWidth)
        }
        if bar < 3 { bar = 0 }

        var heading = StyledLine()
        heading.add(
            pad("HOSTNAME", nameWidth) + " " + pad("STATE", stateWidth) + " " + pad("INST", instancesWidth, right: true))
        for (index, name) in classes.enumerated() {
            heading.add("  " + pad(name, bar + (bar > 0 ? 1 : 0) + numbers[index]))
        }
        heading.style = "1"
        lines.append(heading)

        // The node rows that fit.
        let rows = height.map { max(0, $0 - 3) } ?? nodes.count
        let scroll = min(max(0, input.scroll), max(0, nodes.count - rows))
        let shown = nodes.dropFirst(scroll).prefix(rows)
        // Hostnames cut to the column drop their domain first, unless two nodes would then look alike.
        let shortNames = Set(nodes.map { shortName($0.hostname) }).count == nodes.count
        for node in shown {
            let name = hostname(node.hostname, width: nameWidth, dropDomain: shortNames)
            lines.append(row(node, name: name, bar: bar, numbers: numbers, glyphs: glyphs))
        }
        if nodes.isEmpty && rows > 0 {
            let empty = input.refreshed == nil ? "waiting for the first answer of the API" : "no compute nodes"
            lines.append(StyledLine(empty))
        }

        if let height {
            while lines.count < height - 1 { lines.append(StyledLine()) }
            var footer = StyledLine()
            if let status = input.status { footer.add(status + "  ", style: "1;31") }
            let range = nodes.isEmpty ? "no nodes" : "nodes \(scroll + 1)-\(scroll + shown.count) of \(nodes.count)"
            footer.add("q quit  s sort: \(input.sort.label)  Up/Down PgUp/PgDn scroll  r refresh  \(range)")
            footer.style = "7"
            lines.append(footer)
            lines = Array(lines.prefix(max(0, height)))
        }
        return (lines.map { $0.clipped(to: width).text(colour: colour) }, scroll)
    }

    /// How many cells of a bar `width` wide are used, reserved and free. The bar stands for the whole inventory
    /// (total × allocation ratio): reserved takes its share of the total, used and free share the rest (the
    /// capacity). Anything above zero gets at least one cell, and a bar is full only when nothing is free.
    static func cells(_ resource: TopNode.Resource, width: Int) -> (used: Int, reserved: Int, free: Int) {
        guard width > 0 else { return (0, 0, 0) }
        var reserved = 0
        if resource.total > 0, resource.reserved > 0 {
            let share = Double(resource.reserved) / Double(resource.total)
            reserved = resource.reserved >= resource.total
                ? width : min(width - 1, max(1, Int((Double(width) * share).rounded())))
        }
        let room = width - reserved
        let capacity = resource.capacity
        let used = min(max(0, resource.used), max(0, capacity))
        var usedCells = 0
        if capacity > 0, used > 0, room > 0 {
            usedCells = max(1, Int((Double(room) * Double(used) / Double(capacity)).rounded()))
            if used < capacity, room >= 2 { usedCells = min(usedCells, room - 1) }
            usedCells = min(usedCells, room)
        }
        return (usedCells, reserved, room - usedCells)
    }

    /// `used/capacity`, `-` when the node has no such inventory.
    static func numbersText(_ resource: TopNode.Resource?) -> String {
        guard let resource else { return "-" }
        return "\(resource.used)/\(resource.capacity)"
    }

    /// A hostname in a column `width` wide: whole when it fits; else without its domain (`dropDomain`) when that
    /// fits; else its start and end around `…` (node names tend to differ in their last characters).
    static func hostname(_ name: String, width: Int, dropDomain: Bool) -> String {
        if name.count <= width { return pad(name, width) }
        let short = shortName(name)
        if dropDomain, short.count <= width { return pad(short, width) }
        let kept = dropDomain ? short : name
        guard width >= 3 else { return pad(kept, width) }
        let tail = (width - 1) / 2
        return String(kept.prefix(width - 1 - tail)) + "…" + String(kept.suffix(tail))
    }

    /// The hostname up to its first dot (itself when it has none, or starts with one).
    static func shortName(_ name: String) -> String {
        guard let dot = name.firstIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }

    /// `text` cut to `width` (the last kept character replaced by `…`) or padded with spaces.
    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        guard width > 0 else { return "" }
        if text.count > width { return String(text.prefix(width - 1)) + "…" }
        let fill = String(repeating: " ", count: width - text.count)
        return right ? fill + text : text + fill
    }

    private static func header(_ input: Input, _ nodes: [TopNode]) -> StyledLine {
        var text = "allot top  \(input.source)"
        guard let refreshed = input.refreshed else {
            var line = StyledLine(text + "  waiting for the first answer")
            line.style = "1"
            return line
        }
        text += "  \(nodes.count) node\(nodes.count == 1 ? "" : "s")"
        for name in classes {
            let present = nodes.compactMap { $0.resources[name] }
            let used = present.reduce(0) { $0 + $1.used }
            let capacity = present.reduce(0) { $0 &+ $1.capacity }
            text += "  \(name) \(used)/\(capacity)"
        }
        text += "  at \(refreshed)"
        var line = StyledLine(text)
        line.style = "1"
        return line
    }

    private static func row(_ node: TopNode, name: String, bar: Int, numbers: [Int], glyphs: Glyphs) -> StyledLine {
        var line = StyledLine()
        line.add(name + " ")
        line.add(pad(node.disabled ? "disabled" : "enabled", stateWidth), style: node.disabled ? "31" : nil)
        line.add(" " + pad(String(node.instances), instancesWidth, right: true))
        for (index, name) in classes.enumerated() {
            line.add("  ")
            let resource = node.resources[name]
            if bar > 0 {
                if let resource {
                    let (used, reserved, free) = cells(resource, width: bar)
                    let fraction = resource.capacity > 0 ? Double(resource.used) / Double(resource.capacity) : 0
                    let usedStyle = fraction >= 0.9 ? "31" : fraction >= 0.75 ? "33" : "32"
                    line.add(String(repeating: glyphs.used, count: used), style: usedStyle)
                    line.add(String(repeating: glyphs.reserved, count: reserved), style: "34")
                    line.add(String(repeating: glyphs.free, count: free), style: "2")
                } else {
                    line.add(String(repeating: " ", count: bar))
                }
                line.add(" ")
            }
            line.add(pad(numbersText(resource), numbers[index], right: true))
        }
        return line
    }
}

/// A line of text made of runs, each with an optional SGR style, so that it is cut to the terminal's width before
/// colour codes are added.
struct StyledLine {
    var runs: [(text: String, style: String?)] = []
    /// The style of the whole line (under the runs' own).
    var style: String?

    init(_ text: String = "") {
        if !text.isEmpty { runs = [(text, nil)] }
    }

    mutating func add(_ text: String, style: String? = nil) {
        if !text.isEmpty { runs.append((text, style)) }
    }

    var count: Int { runs.reduce(0) { $0 + $1.text.count } }

    /// The line cut to `width` characters.
    func clipped(to width: Int) -> StyledLine {
        var result = self
        result.runs = []
        var left = width
        for run in runs where left > 0 {
            let kept = String(run.text.prefix(left))
            result.runs.append((kept, run.style))
            left -= kept.count
        }
        return result
    }

    /// The line as text: with SGR codes when `colour` (a line style fills the line's own runs), else plain.
    func text(colour: Bool) -> String {
        guard colour else { return runs.map(\.text).joined() }
        let base = style.map { "\u{1B}[\($0)m" } ?? ""
        var text = base
        for run in runs {
            if let own = run.style {
                text += "\u{1B}[\(own)m" + run.text + "\u{1B}[0m" + base
            } else {
                text += run.text
            }
        }
        return text + "\u{1B}[0m"
    }
}

/// The keys `allot top` knows.
enum TopKey: Sendable, Equatable {
    case quit, sort, refresh, up, down, pageUp, pageDown, home, end
}

/// Turns the bytes read from a terminal in raw mode into keys: letters, Ctrl-C, and the escape sequences of the
/// arrows, PgUp/PgDn and Home/End (`ESC [ …` and `ESC O …`). A sequence cut between two reads waits for the rest;
/// unknown keys and sequences are dropped.
struct TopKeyParser {
    private var pending: [UInt8] = []

    mutating func feed(_ bytes: some Sequence<UInt8>) -> [TopKey] {
        pending.append(contentsOf: bytes)
        var keys: [TopKey] = []
        var index = 0
        parsing: while index < pending.count {
            let byte = pending[index]
            guard byte == 0x1B else {
                switch byte {
                case UInt8(ascii: "q"), UInt8(ascii: "Q"), 0x03: keys.append(.quit)
                case UInt8(ascii: "s"), UInt8(ascii: "S"): keys.append(.sort)
                case UInt8(ascii: "r"), UInt8(ascii: "R"): keys.append(.refresh)
                case UInt8(ascii: "k"): keys.append(.up)
                case UInt8(ascii: "j"): keys.append(.down)
                case UInt8(ascii: "g"): keys.append(.home)
                case UInt8(ascii: "G"): keys.append(.end)
                default: break
                }
                index += 1
                continue
            }
            // An escape sequence: ESC [ parameters final, or ESC O final.
            guard index + 1 < pending.count else { break parsing }
            let kind = pending[index + 1]
            if kind == UInt8(ascii: "O") {
                guard index + 2 < pending.count else { break parsing }
                if let key = Self.final(pending[index + 2], parameter: "") { keys.append(key) }
                index += 3
            } else if kind == UInt8(ascii: "[") {
                var end = index + 2
                while end < pending.count, !(0x40...0x7E).contains(pending[end]) { end += 1 }
                guard end < pending.count else { break parsing }
                let parameter = String(decoding: pending[(index + 2)..<end], as: UTF8.self)
                if let key = Self.final(pending[end], parameter: parameter) { keys.append(key) }
                index = end + 1
            } else {
                // A lone ESC (or Alt with a key): drop the ESC, read what follows as keys.
                index += 1
            }
        }
        pending.removeFirst(index)
        return keys
    }

    private static func final(_ byte: UInt8, parameter: String) -> TopKey? {
        switch (byte, parameter) {
        case (UInt8(ascii: "A"), _): .up
        case (UInt8(ascii: "B"), _): .down
        case (UInt8(ascii: "H"), _): .home
        case (UInt8(ascii: "F"), _): .end
        case (UInt8(ascii: "~"), "5"): .pageUp
        case (UInt8(ascii: "~"), "6"): .pageDown
        case (UInt8(ascii: "~"), "1"), (UInt8(ascii: "~"), "7"): .home
        case (UInt8(ascii: "~"), "4"), (UInt8(ascii: "~"), "8"): .end
        default: nil
        }
    }
}
