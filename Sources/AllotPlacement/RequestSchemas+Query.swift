import AllotCore

/// A query parameter an endpoint reads: its name, the schema its value is checked against, and whether it may repeat.
struct QueryParameter: Sendable {
    var name: String
    var schema: Schema = .string(.init())
    var repeats = false
    var summary: String
}

extension RequestSchemas {
    /// `GET /allocation_candidates?limit=`: a positive integer without leading zeros.
    static let candidateLimit = Schema.string(.init(minLength: 1, pattern: ("^[1-9][0-9]*$", { text in
        text.first != "0" && !text.isEmpty && text.allSatisfy(\.isNumber)
    })))

    static let flag = Schema.string(.init(enumValues: ["true", "false"]))

    /// A count in a query: decimal digits.
    static let pageNumber = Schema.string(.init(pattern: ("^[0-9]+$", { !$0.isEmpty && $0.allSatisfy(\.isNumber) })))

    /// The query parameters `endpoint` accepts at `version` (without the numbered or named group suffixes of
    /// `GET /allocation_candidates`); the handlers that refuse unknown parameters refuse all others.
    static func query(_ endpoint: Endpoint, _ version: Microversion) -> [QueryParameter] {
        switch endpoint {
        case .listProviders: return providerQuery(version)
        case .listTraits:
            return [
                QueryParameter(name: "name", summary: "`startswith:PREFIX` or `in:A,B,…`."),
                QueryParameter(name: "associated", schema: flag, summary: "Only traits (not) on some provider."),
            ]
        case .usages: return usagesQuery(version)
        case .allocationCandidates, .computeFit: return candidatesQuery(version)
        case .computeNodes:
            return [
                QueryParameter(name: "topology", schema: .string(.init(enumValues: ["true", "false", "1", "0"])),
                               summary: "Include each node's NUMA topology and devices."),
                QueryParameter(name: "host", summary: "Only the nodes of this host."),
                QueryParameter(name: "limit", schema: pageNumber, summary: "At most this many nodes (1 to 1000); "
                    + "with limit, offset, sort, q or state the answer also holds `total`, the number matching."),
                QueryParameter(name: "offset", schema: pageNumber, summary: "Skip this many matching nodes."),
                QueryParameter(name: "sort", summary: "hostname (default), instances, used:CLASS, free:CLASS or "
                    + "usage:CLASS (used fraction); a leading '-' sorts in descending order."),
                QueryParameter(name: "q", summary: "Only nodes whose hostname, uuid, host or a trait contains this "
                    + "text (case-insensitive)."),
                QueryParameter(name: "state", schema: .string(.init(enumValues: ["enabled", "disabled", "all"])),
                               summary: "Only enabled or disabled nodes."),
            ]
        case .computeInstances:
            return [
                QueryParameter(name: "node", schema: uuid, summary: "Only the instances of this node."),
                QueryParameter(name: "deleted", schema: flag, summary: "Include deleted instances."),
            ]
        case .computeMigrations:
            return [
                QueryParameter(name: "node", schema: uuid, summary: "Only the migrations of this node."),
                QueryParameter(name: "in_progress", schema: flag, summary: "Only migrations in progress."),
            ]
        case .computeEvents:
            let sequence = Schema.string(.init(pattern: ("^[0-9]+$", { !$0.isEmpty && $0.allSatisfy(\.isNumber) })))
            return [QueryParameter(name: "after", schema: sequence,
                                   summary: "Replay the kept events after this sequence number first.")]
        default:
            return []
        }
    }

    private static func providerQuery(_ version: Microversion) -> [QueryParameter] {
        var list = [
            QueryParameter(name: "name", summary: "The provider's exact name."),
            QueryParameter(name: "uuid", schema: uuid, summary: "The provider's uuid."),
        ]
        if version.isAtLeast(1, 3) {
            list.append(QueryParameter(
                name: "member_of", repeats: true,
                summary: "`in:` a comma-separated list of aggregate uuids, or one uuid; `!` forbids (1.32)."))
        }
        if version.isAtLeast(1, 4) {
            list.append(QueryParameter(name: "resources", summary: "`CLASS:amount,…`: capacity left."))
        }
        if version.isAtLeast(1, 14) {
            list.append(QueryParameter(name: "in_tree", schema: uuid, summary: "Providers in this provider's tree."))
        }
        if version.isAtLeast(1, 18) {
            list.append(QueryParameter(
                name: "required", repeats: true,
                summary: "Comma-separated traits; `!TRAIT` forbids, `in:` any of (1.39)."))
        }
        return list
    }

    private static func usagesQuery(_ version: Microversion) -> [QueryParameter] {
        let identifier = Schema.string(.init(minLength: 1, maxLength: Limits.maxIdentifierLength))
        var list = [
            QueryParameter(name: "project_id", schema: identifier, summary: "The project (required)."),
            QueryParameter(name: "user_id", schema: identifier, summary: "The user."),
        ]
        if version.isAtLeast(1, 38) {
            let type = Schema.string(.init(
                minLength: 1, maxLength: Limits.maxClassNameLength,
                pattern: ("^[A-Z0-9_]+$|^all|^unknown$",
                          { ResourceClass.isWellFormedName($0) || $0.hasPrefix("all") || $0 == "unknown" })))
            list.append(QueryParameter(name: "consumer_type", schema: type, summary: "A type, `all` or `unknown`."))
        }
        return list
    }

    private static func candidatesQuery(_ version: Microversion) -> [QueryParameter] {
        var list = [
            QueryParameter(name: "resources", summary: "`CLASS:amount,…` of the unnumbered group."),
            QueryParameter(name: "limit", schema: candidateLimit, summary: "At most this many (1.16)."),
            QueryParameter(name: "required", repeats: true, summary: "Traits of the unnumbered group."),
            QueryParameter(name: "member_of", repeats: true, summary: "Aggregates of the unnumbered group."),
        ]
        if version.isAtLeast(1, 25) {
            list.append(QueryParameter(
                name: "group_policy", schema: .string(.init(enumValues: ["none", "isolate"])),
                summary: "How numbered groups share providers (required with two groups or more)."))
        }
        if version.isAtLeast(1, 31) {
            list.append(QueryParameter(name: "in_tree", schema: uuid, summary: "Only providers of this tree."))
        }
        if version.isAtLeast(1, 35) {
            list.append(QueryParameter(name: "root_required", summary: "Traits the root provider must (not) have."))
        }
        if version.isAtLeast(1, 36) {
            list.append(QueryParameter(
                name: "same_subtree", repeats: true, summary: "Group suffixes whose providers share a subtree."))
        }
        return list
    }
}
