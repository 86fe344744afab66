import AllotCore

/// `GET /compute/v1/nodes` with `limit`, `offset`, `sort`, `q` or `state`: one page of the matching nodes, in a
/// stable order, with how many match (`total`). The console's fleet view asks for the rows it shows this way, so a
/// fleet of thousands of nodes is never sent whole. Without any of these parameters the list is as before: every
/// node, no `total`.
struct NodeListing {
    enum Key: Equatable {
        case hostname, instances
        /// Amount used, amount free, or the used fraction of the capacity of a class.
        case used(String), free(String), usage(String)
    }

    var limit: Int?
    var offset = 0
    var key = Key.hostname
    var descending = false
    /// Lower-cased text to find in the hostname, uuid, host or a trait.
    var search: String?
    /// `true`: disabled nodes only; `false`: enabled only.
    var disabled: Bool?
    /// How many nodes matched, once ``apply(to:)`` ran.
    private(set) var total = 0

    static let maxLimit = 1000

    /// The listing the query asks for; `nil` when it names none of its parameters.
    /// - Throws: `400` for a malformed value.
    init?(_ call: Call) throws {
        let names = ["limit", "offset", "sort", "q", "state"]
        guard call.query.contains(where: { names.contains($0.0) }) else { return nil }
        if let text = call.queryValue("limit") {
            guard let value = Int(text), value >= 1, value <= Self.maxLimit else {
                throw PlacementError.badRequest("'limit' must be an integer from 1 to \(Self.maxLimit), not '\(text)'.")
            }
            limit = value
        }
        if let text = call.queryValue("offset") {
            guard let value = Int(text), value >= 0 else {
                throw PlacementError.badRequest("'offset' must be an integer of at least 0, not '\(text)'.")
            }
            offset = value
        }
        if var text = call.queryValue("sort") {
            let original = text
            if text.hasPrefix("-") {
                descending = true
                text.removeFirst()
            }
            let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
            switch (parts.first, parts.count) {
            case ("hostname", 1): key = .hostname
            case ("instances", 1): key = .instances
            case ("used", 2): key = .used(parts[1])
            case ("free", 2): key = .free(parts[1])
            case ("usage", 2): key = .usage(parts[1])
            default:
                throw PlacementError.badRequest("'sort' must be hostname, instances, used:CLASS, free:CLASS or "
                    + "usage:CLASS, optionally after '-' for descending order, not '\(original)'.")
            }
        }
        if let text = call.queryValue("q"), !text.isEmpty { search = text.lowercased() }
        switch call.queryValue("state") {
        case nil, "", "all": disabled = nil
        case "enabled": disabled = false
        case "disabled": disabled = true
        case let other?: throw PlacementError.badRequest("'state' must be enabled, disabled or all, not '\(other)'.")
        }
    }

    /// The page of `nodes` asked for, and sets ``total``.
    mutating func apply(to nodes: [(ComputeNode, Bool)]) -> [(ComputeNode, Bool)] {
        var matching = nodes.filter { matches($0.0) }
        total = matching.count
        let key = self.key, descending = self.descending
        matching.sort { left, right in
            let (a, b) = (Self.value(of: left.0, key), Self.value(of: right.0, key))
            if a != b { return descending ? a > b : a < b }
            if left.0.hostname != right.0.hostname { return left.0.hostname < right.0.hostname }
            return left.0.uuid < right.0.uuid
        }
        let start = min(offset, matching.count)
        let end = limit.map { min(matching.count, start + $0) } ?? matching.count
        return Array(matching[start..<end])
    }

    private func matches(_ node: ComputeNode) -> Bool {
        if let disabled, node.disabled != disabled { return false }
        guard let search else { return true }
        return node.hostname.lowercased().contains(search) || node.uuid.contains(search)
            || node.host.lowercased().contains(search) || node.traits.contains { $0.lowercased().contains(search) }
    }

    /// What a node is sorted by: hostname order is kept apart, the rest are numbers.
    private enum Value: Comparable {
        case text(String)
        case number(Double)
    }

    private static func value(of node: ComputeNode, _ key: Key) -> Value {
        switch key {
        case .hostname: return .text(node.hostname)
        case .instances: return .number(Double(node.stats["num_instances"] ?? 0))
        case .used(let name): return .number(Double(node.usage[name] ?? 0))
        case .free(let name):
            guard let inventory = node.inventories[name] else { return .number(-1) }
            return .number(Double(inventory.capacity - (node.usage[name] ?? 0)))
        case .usage(let name):
            guard let inventory = node.inventories[name], inventory.capacity > 0 else { return .number(-1) }
            return .number(Double(node.usage[name] ?? 0) / Double(inventory.capacity))
        }
    }
}
