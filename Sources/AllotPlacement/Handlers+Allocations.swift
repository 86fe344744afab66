import Foundation
import AllotCore
import AllotStore
import HTTPTypes

extension PlacementResponder {
    /// Upstream's key pattern, literally: 36 hex digits or dashes (the keys are then used as written).
    static let uuidPattern: (String, @Sendable (String) -> Bool) = (
        "^[0-9a-fA-F-]{36}$", { key in key.utf8.count == 36 && key.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == "-" } }
    )

    /// `[a-zA-Z0-9_-]{1,64}` unanchored, as upstream's mapping keys are matched.
    static let isGroupSuffix: @Sendable (String) -> Bool = { key in
        key.unicodeScalars.contains { scalar in
            scalar.properties.isASCIIHexDigit || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
                || ("0"..."9").contains(scalar) || scalar == "_" || scalar == "-"
        }
    }

    static let resourcesSchema = Schema.object(.init(
        patternProperties: [("^[A-Z0-9_]+$", ResourceClass.isWellFormedName,
                             .integer(minimum: 1, maximum: nil))],  // no maximum upstream: a 409 refuses more
        additionalProperties: false, minProperties: 1))

    /// The body schema of one consumer's allocations at this version (`PUT /allocations/{c}` or a `POST` entry).
    func consumerSchema(_ call: Call, forPost: Bool) -> Schema {
        let allocations: Schema
        if call.atLeast(1, 12) {
            allocations = .object(.init(
                patternProperties: [(Self.uuidPattern.0, Self.uuidPattern.1, .object(.init(
                    properties: [("resources", Self.resourcesSchema), ("generation", .any)],
                    required: ["resources"], additionalProperties: false)))],
                additionalProperties: false, minProperties: forPost || call.atLeast(1, 28) ? 0 : 1))
        } else {
            allocations = .array(items: .object(.init(
                properties: [
                    ("resource_provider", .object(.init(
                        properties: [("uuid", .string(.init(format: "uuid")))], required: ["uuid"],
                        additionalProperties: false))),
                    ("resources", Self.resourcesSchema),
                ], required: ["resource_provider", "resources"], additionalProperties: false)),
                minItems: 1, uniqueItems: false)
        }
        let identifier = Schema.string(.init(minLength: 1, maxLength: Limits.maxIdentifierLength))
        var properties: [(String, Schema)] = [("allocations", allocations)]
        var required = ["allocations"]
        if call.atLeast(1, 8) {
            properties += [("project_id", identifier), ("user_id", identifier)]
            required += ["project_id", "user_id"]
        }
        if call.atLeast(1, 28) {
            properties.append(("consumer_generation", .anyOf([.integer(minimum: nil, maximum: nil), .null])))
            required.append("consumer_generation")
        }
        if call.atLeast(1, 34) {
            properties.append(("mappings", .object(.init(
                patternProperties: [("[a-zA-Z0-9_-]{1,64}", Self.isGroupSuffix,
                                     .array(items: .string(.init(format: "uuid")), minItems: 1, uniqueItems: false))],
                minProperties: 1))))
        }
        if call.atLeast(1, 38) {
            properties.append(("consumer_type", .string(.init(
                minLength: 1, maxLength: Limits.maxClassNameLength, pattern: ("^[A-Z0-9_]+$", ResourceClass.isWellFormedName)))))
            required.append("consumer_type")
        }
        var rules = Schema.ObjectRules(properties: properties, required: required, additionalProperties: false)
        rules.additionalBeforeRequired = call.atLeast(1, 12)
        return .object(rules)
    }

    /// An amount the schema accepted (an integer, or an integral float such as `1.0` or `1e29`, as upstream's
    /// jsonschema does): amounts above any inventory's `max_unit` become 2147483648, which the unit rules refuse
    /// with upstream's 409.
    static func allocationAmount(_ value: JSONValue) -> Int {
        guard let number = value.doubleValue, number <= Double(Limits.maxInt) else { return Limits.maxInt + 1 }
        return value.intValue ?? Int(number)
    }

    /// Turns one validated consumer body into a store request.
    func allocationRequest(consumer: String, body: JSONValue, call: Call) throws -> ConsumerAllocationRequest {
        var items: [AllocationItem] = []
        if let list = body["allocations"]?.arrayValue {
            for entry in list {
                // Upstream looks the provider up by the text as written: another spelling of an existing uuid
                // (no dashes, upper case) names no provider.
                let provider = entry["resource_provider"]!["uuid"]!.stringValue!
                for (name, amount) in entry["resources"]!.orderedMembers! {
                    items.append(AllocationItem(providerUUID: provider, resourceClass: .init(unchecked: name),
                                                used: Self.allocationAmount(amount)))
                }
            }
        } else if let dict = body["allocations"]?.orderedMembers {
            for (providerText, entry) in dict {
                let provider = providerText
                for (name, amount) in entry["resources"]!.orderedMembers! {
                    items.append(AllocationItem(providerUUID: provider, resourceClass: .init(unchecked: name),
                                                used: Self.allocationAmount(amount)))
                }
            }
        }
        var owner: ConsumerOwner?
        if let project = body["project_id"]?.stringValue, let user = body["user_id"]?.stringValue {
            owner = ConsumerOwner(projectID: project, userID: user, consumerType: body["consumer_type"]?.stringValue)
        }
        var expected = ExpectedGeneration.unchecked
        if call.atLeast(1, 28) {
            expected = body["consumer_generation"]?.intValue.map(ExpectedGeneration.exactly) ?? .new
        }
        return ConsumerAllocationRequest(consumerUUID: consumer, items: items, owner: owner,
                                         expectedGeneration: expected)
    }

    func consumerAllocations(_ call: Call) async throws -> Reply {
        let result = try await store.allocations(consumerUUID: call.parameters[0])
        var allocations: [String: JSONValue] = [:]
        for (provider, resources) in result.byProvider {
            allocations[provider] = .object([
                "generation": .int(result.providerGenerations[provider] ?? 0),
                "resources": .sortedObject(resources.mapValues(JSONValue.int)),
            ])
        }
        var values: [String: JSONValue] = ["allocations": .object(allocations, order: result.providerOrder)]
        var order = ["allocations"]
        // Upstream shows the consumer only through its allocations: one without any (left by a write that
        // created it) looks like no consumer.
        if call.atLeast(1, 12), let consumer = result.consumer, !result.byProvider.isEmpty {
            values["project_id"] = .string(consumer.owner.projectID)
            values["user_id"] = .string(consumer.owner.userID)
            order += ["project_id", "user_id"]
            if call.atLeast(1, 28) {
                values["consumer_generation"] = .int(consumer.generation)
                order.append("consumer_generation")
            }
            if call.atLeast(1, 38) {
                values["consumer_type"] = .string(consumer.owner.consumerType ?? "unknown")
                order.append("consumer_type")
            }
        }
        return Reply.json(.object(values, order: order)).cacheHeaders(call, lastModified: result.lastModified)
    }

    func setConsumerAllocations(_ call: Call) async throws -> Reply {
        let consumer = call.parameters[0]
        guard let uuid = UUIDText.normalized(consumer) else {
            throw PlacementError.badRequest("Malformed consumer_uuid: \(consumer)")
        }
        let body = try call.json(consumerSchema(call, forPost: false))
        try await store.replaceAllocations(
            [try allocationRequest(consumer: uuid, body: body, call: call)],
            unknownClassPrefix: "Unable to allocate inventory for consumer \(uuid): ")
        return .noContent
    }

    func postAllocations(_ call: Call) async throws -> Reply {
        let body = try call.json(.object(.init(
            patternProperties: [(Self.uuidPattern.0, Self.uuidPattern.1, consumerSchema(call, forPost: true))],
            additionalProperties: false, minProperties: 1)))
        var requests: [ConsumerAllocationRequest] = []
        for (consumer, entry) in body.orderedMembers! {
            // Upstream keeps POST's consumer keys as written (only PUT's path is normalised).
            requests.append(try allocationRequest(consumer: consumer, body: entry, call: call))
        }
        try await store.replaceAllocations(requests, unknownClassPrefix: "Unable to allocate inventory ")
        return .noContent
    }

    func deleteConsumerAllocations(_ call: Call) async throws -> Reply {
        try await store.deleteAllocations(consumerUUID: call.parameters[0])
        return .noContent
    }

    func providerAllocations(_ call: Call) async throws -> Reply {
        let uuid = call.parameters[0]
        let result: ProviderAllocations
        do {
            result = try await store.allocations(providerUUID: uuid)
        } catch let error as PlacementError where error.kind == .notFound {
            throw PlacementError.notFound("Resource provider '\(uuid)' not found: \(error.detail)")
        }
        var allocations: [String: JSONValue] = [:]
        for (consumer, resources) in result.byConsumer {
            let amounts = JSONValue.sortedObject(resources.mapValues(JSONValue.int))
            if call.atLeast(1, 28), let generation = result.consumerGenerations[consumer] ?? nil {
                allocations[consumer] = .object(["resources": amounts, "consumer_generation": .int(generation)])
            } else {
                allocations[consumer] = .object(["resources": amounts])
            }
        }
        return Reply.json(.object([
            "allocations": .sortedObject(allocations),
            "resource_provider_generation": .int(result.provider.generation),
        ])).cacheHeaders(call, lastModified: result.lastModified)
    }

    func providerUsages(_ call: Call) async throws -> Reply {
        let uuid = call.parameters[0]
        let provider: ResourceProvider
        let usages: [String: Int]
        do {
            (provider, usages) = try await store.usages(providerUUID: uuid)
        } catch let error as PlacementError where error.kind == .notFound {
            throw PlacementError.notFound("\(error.detail): \(error.detail)")
        }
        return Reply.json(.object([
            "resource_provider_generation": .int(provider.generation),
            "usages": .sortedObject(usages.mapValues(JSONValue.int)),
        ])).cacheHeaders(call, lastModified: nil)
    }

    func usages(_ call: Call) async throws -> Reply {
        var allowed: Set<String> = ["project_id", "user_id"]
        if call.atLeast(1, 38) { allowed.insert("consumer_type") }
        // jsonschema's order in upstream's schema: `required` before `additionalProperties`.
        if call.queryValue("project_id") == nil {
            throw PlacementError.badRequest("Invalid query string parameters: 'project_id' is a required property")
        }
        try rejectUnknownQuery(call, allowed: allowed)
        let idSchema = Schema.string(.init(minLength: 1, maxLength: Limits.maxIdentifierLength))
        let queryObject = JSONValue.object(
            Dictionary(call.query.map { ($0.0, JSONValue.string($0.1)) }, uniquingKeysWith: { $1 }),
            order: call.query.map(\.0))
        do {
            try Schema.object(.init(
                properties: [("project_id", idSchema), ("user_id", idSchema), ("consumer_type", .string(.init(
                    minLength: 1, maxLength: Limits.maxClassNameLength,
                    pattern: ("^[A-Z0-9_]+$|^all|^unknown$",
                              { ResourceClass.isWellFormedName($0) || $0.hasPrefix("all") || $0 == "unknown" }))))],
                required: ["project_id"])).validate(queryObject)
        } catch {
            throw PlacementError.badRequest("Invalid query string parameters: "
                + error.detail.replacingOccurrences(of: "JSON does not validate: ", with: ""))
        }
        let project = call.queryValue("project_id")!
        let totals = try await store.usageTotals(
            projectID: project, userID: call.queryValue("user_id"), consumerType: call.queryValue("consumer_type"))
        let body: JSONValue
        if call.atLeast(1, 38), call.queryValue("consumer_type") == "all", totals.total.isEmpty {
            // Upstream groups its rows (one per class) under "all": no allocations, no group.
            body = .object(["usages": .object([:])])
        } else if call.atLeast(1, 38), call.queryValue("consumer_type") == "all" {
            var values = totals.total.mapValues(JSONValue.int)
            values["consumer_count"] = .int(totals.byType.values.map(\.consumers).reduce(0, +))
            body = .object(["usages": .object(["all": .sortedObject(values)])])
        } else if call.atLeast(1, 38) {
            var grouped: [String: JSONValue] = [:]
            for (type, entry) in totals.byType {
                var values = entry.amounts.mapValues(JSONValue.int)
                values["consumer_count"] = .int(entry.consumers)
                grouped[type] = .sortedObject(values)
            }
            body = .object(["usages": .sortedObject(grouped)])
        } else {
            body = .object(["usages": .sortedObject(totals.total.mapValues(JSONValue.int))])
        }
        return Reply.json(body).cacheHeaders(call, lastModified: nil)
    }
}
