import Foundation
import AllotCore
import AllotStore
import HTTPTypes

extension PlacementRoutes {
    /// An amount the schema accepted (an integer, or an integral float such as `1.0` or `1e29`, as upstream's
    /// jsonschema does): amounts above any inventory's `max_unit` become 2147483648, which the unit rules refuse
    /// with upstream's 409.
    static func allocationAmount(_ value: JSONValue) -> Int {
        guard let number = value.doubleValue, number <= Double(Limits.maxInt) else { return Limits.maxInt + 1 }
        return value.intValue ?? Int(number)
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
        let body = try call.body(SetAllocationsBody.self)
        try await store.replaceAllocations(
            [body.consumer.request(consumer: uuid)],
            unknownClassPrefix: "Unable to allocate inventory for consumer \(uuid): ")
        return .noContent
    }

    func postAllocations(_ call: Call) async throws -> Reply {
        let body = try call.body(PostAllocationsBody.self)
        // Upstream keeps POST's consumer keys as written (only PUT's path is normalised).
        let requests = body.consumers.map { consumer, entry in entry.request(consumer: consumer) }
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
        let parameters = RequestSchemas.query(.usages, call.version)
        // jsonschema's order in upstream's schema: `required` before `additionalProperties`.
        guard let project = call.queryValue("project_id") else {
            throw PlacementError.badRequest("Invalid query string parameters: 'project_id' is a required property")
        }
        try call.rejectUnknownQuery(allowed: Set(parameters.map(\.name)))
        let queryObject = JSONValue.object(
            Dictionary(call.query.map { ($0.0, JSONValue.string($0.1)) }, uniquingKeysWith: { $1 }),
            order: call.query.map(\.0))
        do {
            try Schema.object(.init(properties: parameters.map { ($0.name, $0.schema) }, required: ["project_id"]))
                .validate(queryObject)
        } catch {
            throw PlacementError.badRequest("Invalid query string parameters: "
                + error.detail.replacingOccurrences(of: "JSON does not validate: ", with: ""))
        }
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
