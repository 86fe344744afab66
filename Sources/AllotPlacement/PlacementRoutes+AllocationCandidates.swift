import AllotCore
import AllotStore
import Foundation
import HTTPTypes

extension PlacementRoutes {
    /// A group as parsed from the query, before names are resolved against the database.
    struct ParsedGroup {
        var suffix: String
        var resources: [(String, Int)] = []
        var required: [[String]] = []
        var forbidden: [String] = []
        var memberOf: [[String]] = []
        var forbiddenAggregates: [String] = []
        var inTree: String?
        var hasRequiredKey = false
        var hasMemberOfKey = false
    }

    static let groupKeys = ["resources", "required", "member_of", "in_tree"]

    /// Splits `resources_X` into (`resources`, `_X`) when the suffix is legal at this version.
    static func groupKey(_ key: String, _ call: Call) -> (String, String)? {
        for base in groupKeys where key.hasPrefix(base) {
            if base == "in_tree", !call.atLeast(1, 31) { continue }
            let suffix = String(key.dropFirst(base.count))
            if suffix.isEmpty { return (base, "") }
            guard call.atLeast(1, 25) else { return nil }
            if call.atLeast(1, 33) {
                let legal = suffix.count <= 64 && suffix.unicodeScalars.allSatisfy {
                    ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
                        || $0 == "-"
                }
                if legal { return (base, suffix) }
            } else if suffix.first != "0", suffix.allSatisfy(\.isNumber) {
                return (base, suffix)
            }
        }
        return nil
    }

    /// Step 1: the query schema of the version.
    func validateCandidateQuery(_ call: Call) throws {
        var last: [String: JSONValue] = [:]
        var order: [String] = []
        for (key, value) in call.query {
            if last.updateValue(.string(value), forKey: key) == nil { order.append(key) }
        }
        let queryObject = JSONValue.object(last, order: order)
        var schema: Schema
        if !call.atLeast(1, 25) {
            var properties: [(String, Schema)] = [("resources", .string(.init()))]
            if call.atLeast(1, 16) { properties.append(("limit", RequestSchemas.candidateLimit)) }
            if call.atLeast(1, 17) { properties.append(("required", .string(.init()))) }
            if call.atLeast(1, 21) { properties.append(("member_of", .string(.init()))) }
            schema = .object(.init(properties: properties, required: ["resources"], additionalProperties: false))
        } else {
            // The parameters other than the groups' (published in the OpenAPI document from the same list).
            let properties = RequestSchemas.query(.allocationCandidates, call.version)
                .filter { !Self.groupKeys.contains($0.name) }.map { ($0.name, $0.schema) }
            let suffixPattern = call.atLeast(1, 33) ? "([a-zA-Z0-9_-]{1,64})?" : "([1-9][0-9]*)?"
            var bases = ["member_of", "required", "resources"]
            if call.atLeast(1, 31) { bases.insert("in_tree", at: 0) }
            let unknown = order.filter { key in !properties.contains { $0.0 == key } && Self.groupKey(key, call) == nil }
            if !unknown.isEmpty {
                let names = unknown.sorted().map { JSONValue.pythonQuoted($0) }.joined(separator: ", ")
                let patterns = bases.map { "'^\($0)\(suffixPattern)$'" }.joined(separator: ", ")
                throw PlacementError.badRequest("Invalid query string parameters: \(names) "
                    + "\(unknown.count == 1 ? "does" : "do") not match any of the regexes: \(patterns)")
            }
            schema = .object(.init(properties: properties, additionalProperties: true))
        }
        do {
            try schema.validate(queryObject)
        } catch {
            throw PlacementError.badRequest("Invalid query string parameters: "
                + error.detail.replacingOccurrences(of: "JSON does not validate: ", with: ""))
        }
    }

    /// Steps 3 to 6: the groups, with upstream's checks and messages.
    func parseCandidateGroups(_ call: Call, sameSubtree: [[String]]) throws -> [ParsedGroup] {
        var groups: [ParsedGroup] = []
        var indexBySuffix: [String: Int] = [:]
        var memberOfCounts: [String: Int] = [:]
        for (key, value) in call.query {
            guard let (base, suffix) = Self.groupKey(key, call) else { continue }
            let index = indexBySuffix[suffix] ?? {
                groups.append(ParsedGroup(suffix: suffix))
                indexBySuffix[suffix] = groups.count - 1
                return groups.count - 1
            }()
            switch base {
            case "resources":
                groups[index].resources = try QueryParsing.resources(value).sorted { $0.key < $1.key }
                    .map { ($0.key, $0.value) }
            // As upstream, each key is parsed when the query reaches it (all its values at once): the first bad
            // parameter in query order is the one refused.
            case "required":
                groups[index].hasRequiredKey = true
                let parsed = try QueryParsing.required(call.queryValues(key), version: call.version)
                groups[index].required = parsed.groups
                groups[index].forbidden = parsed.forbidden
            case "member_of":
                groups[index].hasMemberOfKey = true
                memberOfCounts[suffix, default: 0] += 1
                let memberOf = call.queryValues(key)
                if memberOf.count > 1, !call.atLeast(1, 24) {
                    throw PlacementError.badRequest("Multiple member_of\(suffix) parameters are not supported")
                }
                let parsed = try QueryParsing.memberOf(memberOf, version: call.version)
                groups[index].memberOf = parsed.groups
                groups[index].forbiddenAggregates = parsed.forbidden
            default:
                let trimmed = value.trimmingSpaces()
                guard let uuid = UUIDText.normalized(trimmed) else {
                    throw PlacementError.badRequest("Invalid query string parameters: Expected 'in_tree' parameter "
                        + "to be a format of uuid. Got: \(value)")
                }
                groups[index].inTree = uuid
            }
        }
        try checkGroupSet(groups, call, sameSubtree: sameSubtree)
        if call.atLeast(1, 22) {
            var conflicts: [String] = []
            for group in groups {
                let forbidden = Set(group.forbidden)
                for set in group.required where !set.isEmpty && set.allSatisfy(forbidden.contains) {
                    conflicts.append("required\(group.suffix): (\(set.sorted().joined(separator: ", ")))")
                }
            }
            if !conflicts.isEmpty {
                throw PlacementError.badRequest("Conflicting required and forbidden traits found in the following "
                    + "traits keys: \(conflicts.sorted().joined(separator: ", "))")
            }
        }
        if call.queryValue("group_policy") == nil, groups.filter({ !$0.suffix.isEmpty }).count > 1 {
            throw PlacementError.badRequest("The \"group_policy\" parameter is required when specifying more than "
                + "one \"resources{N}\" parameter.")
        }
        return groups
    }

    private func checkGroupSet(_ groups: [ParsedGroup], _ call: Call, sameSubtree: [[String]]) throws {
        if call.atLeast(1, 36) {
            if groups.allSatisfy(\.resources.isEmpty) {
                throw PlacementError.badRequest("There must be at least one resources or resources[$S] parameter.",
                                                code: .queryMissingValue)
            }
            let named = Set(sameSubtree.flatMap { $0 })
            let bad = groups.filter { $0.resources.isEmpty && !named.contains($0.suffix) }.map { "'\($0.suffix)'" }
            if !bad.isEmpty {
                throw PlacementError.badRequest("Resourceless suffixed group request should be specified in "
                    + "`same_subtree` query param: bad group(s) - [\(bad.joined(separator: ", "))].",
                    code: .queryBadValue)
            }
            let suffixes = groups.map(\.suffix)
            let missing = sameSubtree.flatMap { $0 }.filter { !suffixes.contains($0) }
            if !missing.isEmpty {
                var unique: [String] = []
                for item in missing where !unique.contains(item) { unique.append(item) }
                throw PlacementError.badRequest("Real suffixes should be specified in `same_subtree`: "
                    + "[\(unique.map { "'\($0)'" }.joined(separator: ", "))] not found in "
                    + "[\(suffixes.map { "'\($0)'" }.joined(separator: ", "))].", code: .queryBadValue)
            }
            return
        }
        let orphanTraits = groups.filter { $0.resources.isEmpty && $0.hasRequiredKey }.map { "required\($0.suffix)" }
        if !orphanTraits.isEmpty {
            throw PlacementError.badRequest("All traits parameters must be associated with resources.  Found the "
                + "following orphaned traits keys: \(orphanTraits.joined(separator: ", "))")
        }
        let orphanAggregates = groups.filter { $0.resources.isEmpty && $0.hasMemberOfKey }
            .map { "member_of\($0.suffix)" }
        if !orphanAggregates.isEmpty {
            throw PlacementError.badRequest("All member_of parameters must be associated with resources. Found the "
                + "following orphaned member_of keys: \(orphanAggregates.joined(separator: ", "))")
        }
        if groups.contains(where: \.resources.isEmpty) {
            throw PlacementError.badRequest("All request groups must specify resources.")
        }
        if groups.isEmpty {
            throw PlacementError.badRequest("At least one request group (`resources` or `resources{$S}`) is required.")
        }
    }
}

/// A parsed `GET /allocation_candidates` query, its names resolved against the search state.
struct CandidateSearch {
    var query: CandidateQuery
    var state: SearchState
    var summaries: SummaryCache
    /// Upstream answers with no candidates before searching (a trait no root has, an aggregate with no member, an
    /// unknown `in_tree` provider, or a group that finds nothing before an unknown name).
    var empty: Bool
    /// The `in_tree` provider named that does not exist.
    var unknownTree: String?
}

extension PlacementRoutes {
    func allocationCandidates(_ call: Call) async throws -> Reply {
        let search = try await candidateSearch(call, explaining: false)
        if search.empty {
            return Reply.json(.object(["allocation_requests": .array([]), "provider_summaries": .object([:])]))
                .cacheHeaders(call, lastModified: nil)
        }
        let snapshot = search.state.snapshot
        let result = CandidateSolver.solve(search.query, in: snapshot)
        let body = CandidateRenderer(
            snapshot: snapshot, version: call.version, query: search.query, summaries: search.summaries
        ).render(result)
        return Reply(status: .ok, body: nil, headers: [(.contentType, "application/json")], raw: body)
            .cacheHeaders(call, lastModified: nil)
    }

    /// Checks and parses the query as upstream does, and resolves its names. `explaining` (`GET /compute/v1/fit`):
    /// an unknown name is always refused, and the query is built in full even where upstream answers empty at once,
    /// so the explanation can say why.
    func candidateSearch(_ call: Call, explaining: Bool) async throws -> CandidateSearch {
        try validateCandidateQuery(call)
        // The schema sees only the last `limit`; upstream then reads the first and fails with a 500 when it is not
        // a number. Every value must be a positive integer here, and the first one counts.
        let limits = call.queryValues("limit")
        for value in limits where !(value.first != "0" && !value.isEmpty && value.allSatisfy(\.isASCII)
            && value.allSatisfy(\.isNumber) && Int(value) != nil) {
            throw PlacementError.badRequest(
                "Invalid query string parameters: 'limit' must be a positive integer, got \(JSONValue.pythonQuoted(value))",
                code: .queryBadValue)
        }
        let limit = limits.first.flatMap { Int($0) }
        let isolate = call.queryValues("group_policy").first == "isolate"
        var rootRequired: (groups: [[String]], forbidden: [String]) = ([], [])
        let rootValues = call.queryValues("root_required")
        if call.atLeast(1, 35), !rootValues.isEmpty {
            if rootValues.count > 1 {
                throw PlacementError.badRequest("Query parameter 'root_required' may be specified only once.",
                                                code: .queryDuplicateKey)
            }
            if rootValues[0].hasPrefix("in:") {
                throw PlacementError.badRequest("Invalid query string parameters: The format "
                    + "'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since microversion 1.39. Got: \(rootValues[0])")
            }
            rootRequired = try QueryParsing.required(rootValues, version: Microversion(1, 38))
            let conflicts = Set(rootRequired.groups.flatMap { $0 }).intersection(rootRequired.forbidden)
            if !conflicts.isEmpty {
                throw PlacementError.badRequest("Conflicting required and forbidden traits found in root_required: "
                    + conflicts.sorted().joined(separator: ", "), code: .queryBadValue)
            }
        }
        var sameSubtree: [[String]] = []
        if call.atLeast(1, 36) {
            for value in call.queryValues("same_subtree") {
                let pieces = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters() }
                if pieces.contains(where: \.isEmpty) {
                    throw PlacementError.badRequest(
                        "Empty string (unsuffixed group) can not be specified in `same_subtree` ", code: .queryBadValue)
                }
                var unique: [String] = []
                for piece in pieces where !unique.contains(piece) { unique.append(piece) }
                sameSubtree.append(unique)
            }
        }
        let parsed = try parseCandidateGroups(call, sameSubtree: sameSubtree)
        let (state, summaries) = try await searchCache.state(from: store)
        let snapshot = state.snapshot
        let names = (classes: state.classes, traits: state.traits)
        var empty = false
        var unknownTree: String?
        // Step 7: names are resolved as upstream's search meets them, and an empty step ends the search with an
        // empty answer: root_required's traits, then the roots having them; then group by group in query order its
        // classes, member_of (no provider: empty), traits, in_tree (unknown: empty), and the group's own candidates
        // (none: empty, and later groups are never looked at). A name missing later than an empty step is no error.
        let rootNames = rootRequired.groups.flatMap { $0 } + rootRequired.forbidden
        if let unknown = rootNames.first(where: { !names.traits.contains($0) }) {
            throw PlacementError.badRequest("No such trait(s): \(unknown).")
        }
        if !rootNames.isEmpty {
            let required = Set(rootRequired.groups.flatMap { $0 }), forbidden = Set(rootRequired.forbidden)
            let anchored = snapshot.providers.contains { provider in
                provider.parent == nil && required.isSubset(of: provider.traits)
                    && provider.traits.isDisjoint(with: forbidden)
            }
            if !anchored { empty = true }
        }
        var groups: [RequestGroup] = []
        func query(_ groups: [RequestGroup], sameSubtree: [[String]], limit: Int?) -> CandidateQuery {
            CandidateQuery(
                groups: groups, isolate: isolate, rootRequired: Set(rootRequired.groups.flatMap { $0 }),
                rootForbidden: Set(rootRequired.forbidden), sameSubtree: sameSubtree, nestedAware: call.atLeast(1, 29),
                limit: limit, maxCandidates: maxAllocationCandidates,
                strategy: candidateStrategy,
                randomSeed: randomizeCandidates ? UInt64.random(in: .min ... .max) : nil)
        }
        /// The refusal of a missing name, unless a group before it finds nothing on its own (then: empty).
        func refuse(_ error: PlacementError) throws {
            if explaining { throw error }
            for group in groups where !group.resources.isEmpty {
                if CandidateSolver.solve(query([group], sameSubtree: [], limit: 1), in: snapshot).candidates.isEmpty {
                    empty = true
                    return
                }
            }
            throw error
        }
        for group in parsed {
            // Upstream stops at the first empty step (explaining goes on, to name every constraint).
            if empty, !explaining { break }
            if let unknown = group.resources.map(\.0).first(where: { !names.classes.contains($0) }) {
                try refuse(PlacementError.badRequest(
                    "Invalid resource class in resources parameter: No such resource class \(unknown)."))
                break
            }
            // Upstream's provider_ids_matching_aggregates: the providers in (any aggregate of) every member_of.
            if !group.memberOf.isEmpty {
                var matching: Set<Int>?
                for anyOf in group.memberOf {
                    let members = Set(anyOf.flatMap { snapshot.aggregateMembers[$0] ?? [] })
                    matching = matching.map { $0.intersection(members) } ?? members
                }
                if matching?.isEmpty ?? false { empty = true }
            }
            if empty, !explaining { break }
            if let unknown = (group.required.flatMap { $0 } + group.forbidden).first(where: { !names.traits.contains($0) }) {
                try refuse(PlacementError.badRequest("No such trait(s): \(unknown)."))
                break
            }
            var inTree: Int?
            if let uuid = group.inTree {
                if let index = snapshot.indexByUUID[uuid] {
                    inTree = index
                } else {
                    empty = true
                    unknownTree = unknownTree ?? uuid
                }
            }
            groups.append(RequestGroup(
                suffix: group.suffix, resources: group.resources, requiredTraits: group.required,
                forbiddenTraits: Set(group.forbidden), memberOf: group.memberOf,
                forbiddenAggregates: Set(group.forbiddenAggregates), inTree: group.resources.isEmpty ? nil : inTree))
        }
        return CandidateSearch(
            query: query(groups, sameSubtree: sameSubtree, limit: limit), state: state, summaries: summaries,
            empty: empty, unknownTree: unknownTree)
    }
}
