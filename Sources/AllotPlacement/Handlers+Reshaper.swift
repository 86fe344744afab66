import AllotCore
import AllotStore

extension PlacementResponder {
    func reshaper(_ call: Call) async throws -> Reply {
        let inventory = Schema.object(.init(
            properties: [
                ("resource_provider_generation", .integer(minimum: nil, maximum: nil)),
                ("inventories", .object(.init(patternProperties: [(
                    "^[A-Z0-9_]+$", ResourceClass.isWellFormedName,
                    .object(.init(
                        properties: Self.inventoryProperties(totalMinimum: 1)
                            + [("resource_provider_generation", .integer(minimum: nil, maximum: nil))],
                        required: ["total"], additionalProperties: false))
                )]))),
            ], required: ["resource_provider_generation", "inventories"], additionalProperties: false))
        let body = try call.json(.object(.init(
            properties: [
                ("inventories", .object(.init(
                    patternProperties: [(Self.uuidPattern.0, Self.uuidPattern.1, inventory)],
                    additionalProperties: false, minProperties: 1))),
                ("allocations", .object(.init(
                    patternProperties: [(Self.uuidPattern.0, Self.uuidPattern.1, consumerSchema(call, forPost: true))],
                    additionalProperties: false))),
            ], required: ["inventories", "allocations"], additionalProperties: false)))
        var inventories: [ReshapeInventory] = []
        for (uuid, entry) in body["inventories"]!.orderedMembers! {
            var records: [String: Inventory] = [:]
            for (name, record) in entry["inventories"]!.orderedMembers! {
                records[name] = Inventory(
                    total: record["total"]?.intValue ?? 0, reserved: record["reserved"]?.intValue ?? 0,
                    minUnit: record["min_unit"]?.intValue ?? 1, maxUnit: record["max_unit"]?.intValue ?? Limits.maxInt,
                    stepSize: record["step_size"]?.intValue ?? 1,
                    allocationRatio: record["allocation_ratio"]?.doubleValue ?? 1.0)
            }
            inventories.append(ReshapeInventory(
                providerUUID: uuid,  // as written, as upstream looks it up
                generation: entry["resource_provider_generation"]!.intValue!, inventories: records))
        }
        var requests: [ConsumerAllocationRequest] = []
        for (consumer, entry) in body["allocations"]!.orderedMembers! {
            requests.append(try allocationRequest(consumer: consumer, body: entry, call: call))
        }
        try await store.reshape(inventories: inventories, allocations: requests)
        return .noContent
    }
}
