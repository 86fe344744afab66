import AllotCore
import AllotStore

extension PlacementResponder {
    func reshaper(_ call: Call) async throws -> Reply {
        let body = try call.json(RequestSchemas.reshaper(call.version))
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
