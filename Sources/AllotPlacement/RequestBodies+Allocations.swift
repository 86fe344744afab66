import AllotCore
import AllotStore

/// One consumer's allocations as a request states them (`PUT /allocations/{c}`, an entry of `POST /allocations`
/// or of `POST /reshaper`).
struct ConsumerAllocationsBody: Sendable {
    var items: [AllocationItem]
    var owner: ConsumerOwner?
    var expectedGeneration: ExpectedGeneration

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        var items: [AllocationItem] = []
        let allocations = try value.required("allocations")
        if let list = allocations.arrayValue {
            for entry in list {
                // Upstream looks the provider up by the text as written: another spelling of an existing uuid
                // (no dashes, upper case) names no provider.
                let provider = try entry.required("resource_provider").requiredString("uuid")
                items += try Self.items(provider, entry.required("resources"))
            }
        } else {
            for (provider, entry) in try allocations.members("allocations") {
                items += try Self.items(provider, entry.required("resources"))
            }
        }
        self.items = items
        if let project = try value.optionalString("project_id"), let user = try value.optionalString("user_id") {
            let type = try value.optionalString("consumer_type")
            owner = ConsumerOwner(projectID: project, userID: user, consumerType: type)
        }
        expectedGeneration = .unchecked
        if version.isAtLeast(1, 28) {
            switch value["consumer_generation"] {
            case nil, .null?: expectedGeneration = .new
            case let generation?: expectedGeneration = .exactly(try generation.generation("consumer_generation"))
            }
        }
    }

    private static func items(_ provider: String, _ resources: JSONValue) throws(BodyShapeError) -> [AllocationItem] {
        try resources.members("resources").map { name, amount in
            AllocationItem(providerUUID: provider, resourceClass: .init(unchecked: name),
                           used: PlacementRoutes.allocationAmount(amount))
        }
    }

    func request(consumer: String) -> ConsumerAllocationRequest {
        ConsumerAllocationRequest(consumerUUID: consumer, items: items, owner: owner,
                                  expectedGeneration: expectedGeneration)
    }
}

struct SetAllocationsBody: RequestBody {
    var consumer: ConsumerAllocationsBody

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.consumer(version, forPost: false) }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        consumer = try ConsumerAllocationsBody(value, version: version)
    }
}

struct PostAllocationsBody: RequestBody {
    /// By consumer uuid as written (upstream keeps POST's keys as written), in request order.
    var consumers: [(String, ConsumerAllocationsBody)]

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.postAllocations(version) }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        consumers = try value.members("allocations").map { (consumer, entry) throws(BodyShapeError) in
            (consumer, try ConsumerAllocationsBody(entry, version: version))
        }
    }
}

struct ReshaperBody: RequestBody {
    var inventories: [ReshapeInventory]
    var allocations: [(String, ConsumerAllocationsBody)]

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.reshaper(version) }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        inventories = try value.required("inventories").members("inventories").map {
            (uuid, entry) throws(BodyShapeError) in
            var records: [String: Inventory] = [:]
            for (name, record) in try entry.required("inventories").members("inventories") {
                records[name] = try InventoryFields(record).inventory
            }
            let generation = try entry.required("resource_provider_generation")
                .generation("resource_provider_generation")
            // The provider as written, as upstream looks it up.
            return ReshapeInventory(providerUUID: uuid, generation: generation, inventories: records)
        }
        allocations = try value.required("allocations").members("allocations").map {
            (consumer, entry) throws(BodyShapeError) in (consumer, try ConsumerAllocationsBody(entry, version: version))
        }
    }
}
