import AllotCore
import AllotStore
import HTTPTypes

extension PlacementRoutes {
    func inventoryJSON(_ inventory: Inventory) -> JSONValue {
        .object([
            "total": .int(inventory.total), "reserved": .int(inventory.reserved), "min_unit": .int(inventory.minUnit),
            "max_unit": .int(inventory.maxUnit), "step_size": .int(inventory.stepSize),
            "allocation_ratio": .double(inventory.allocationRatio),
        ])
    }

    func inventoriesJSON(_ result: ProviderInventories) -> JSONValue {
        .object([
            "inventories": .sortedObject(result.inventories.mapValues(inventoryJSON)),
            "resource_provider_generation": .int(result.provider.generation),
        ])
    }

    /// The inventory of a validated body, once reserved is checked against total.
    func inventory(from fields: InventoryFields, resourceClass: String, providerUUID: String, call: Call) throws
        -> Inventory
    {
        let inventory = fields.inventory
        let allowEqual = call.atLeast(1, 26)
        switch inventory.validationProblem(allowReservedEqualTotal: allowEqual) {
        case .reservedExceedsTotal:
            let relation = allowEqual ? "greater than" : "greater than or equal to"
            let verb = call.method == .post ? "create" : "update"
            throw PlacementError.badRequest(
                "Unable to \(verb) inventory for resource provider \(providerUUID): Invalid inventory for "
                    + "'\(resourceClass)' on resource provider '\(providerUUID)'. The reserved value is "
                    + "\(relation) total.")
        case .minUnitAboveMaxUnit, .stepSizeAboveMaxUnit, nil:
            return inventory
        }
    }

    func listInventories(_ call: Call) async throws -> Reply {
        let uuid = call.parameters[0]
        let result = try await catchingProviderLookup("No resource provider with uuid \(uuid) found : ") {
            try await store.inventories(providerUUID: uuid)
        }
        return Reply.json(inventoriesJSON(result)).cacheHeaders(call, lastModified: result.lastModified,
                                                                omitLastModified: result.inventories.isEmpty)
    }

    /// The provider, or upstream's 404.
    func requireProvider(_ uuid: String) async throws -> ResourceProvider {
        guard let provider = try await store.provider(uuid: uuid) else {
            throw PlacementError.lookupFailed("No resource provider with uuid \(uuid) found")
        }
        return provider
    }

    func replaceInventories(_ call: Call) async throws -> Reply {
        let uuid = call.parameters[0]
        let provider = try await requireProvider(uuid)
        let body = try call.body(ReplaceInventoriesBody.self)
        // Upstream checks the generation before it looks at the inventories.
        if body.generation != provider.generation {
            throw PlacementError.concurrentUpdate("resource provider generation conflict")
        }
        var inventories: [String: Inventory] = [:]
        for (name, fields) in body.inventories {  // checked in request order, as upstream
            inventories[name] = try inventory(from: fields, resourceClass: name, providerUUID: uuid, call: call)
        }
        let result = try await store.replaceInventories(
            providerUUID: uuid, generation: body.generation, inventories: inventories)
        return Reply.json(inventoriesJSON(result)).cacheHeaders(call, lastModified: result.lastModified,
                                                                omitLastModified: result.inventories.isEmpty)
    }

    func deleteInventories(_ call: Call) async throws -> Reply {
        guard call.atLeast(1, 5) else {
            throw PlacementError(.methodNotAllowed, "The method DELETE is not allowed for this resource. \n\n ")
        }
        try await store.deleteAllInventories(providerUUID: call.parameters[0])
        return .noContent
    }

    func createInventory(_ call: Call) async throws -> Reply {
        let uuid = call.parameters[0]
        _ = try await requireProvider(uuid)
        let body = try call.body(CreateInventoryBody.self)
        let name = body.resourceClass
        let inventory = try inventory(from: body.fields, resourceClass: name, providerUUID: uuid, call: call)
        guard try await store.resourceClass(named: name) != nil else {
            throw PlacementError.badRequest(
                "Unable to create inventory for resource provider \(uuid): No such resource class \(name).")
        }
        let result = try await store.createInventory(
            providerUUID: uuid, generation: body.generation, resourceClass: name,
            inventory: inventory)
        return Reply(status: .created, body: singleInventoryJSON(inventory, generation: result.provider.generation),
                     headers: [(.location, call.baseURL + "/resource_providers/\(uuid)/inventories/\(name)")])
            .cacheHeaders(call, lastModified: result.lastModified)
    }

    func singleInventoryJSON(_ inventory: Inventory, generation: Int) -> JSONValue {
        guard case .object(var values, var order) = inventoryJSON(inventory) else { return .null }
        values["resource_provider_generation"] = .int(generation)
        order.append("resource_provider_generation")
        return .object(values, order: order)
    }

    func showInventory(_ call: Call) async throws -> Reply {
        let (uuid, name) = (call.parameters[0], call.parameters[1])
        let result = try await catchingProviderLookup("No resource provider with uuid \(uuid) found : ") {
            try await store.inventories(providerUUID: uuid)
        }
        guard let inventory = result.inventories[name] else {
            throw PlacementError.notFound("No inventory of class \(name) for \(uuid)")
        }
        return Reply.json(singleInventoryJSON(inventory, generation: result.provider.generation))
            .cacheHeaders(call, lastModified: result.lastModified)
    }

    func updateInventory(_ call: Call) async throws -> Reply {
        let (uuid, name) = (call.parameters[0], call.parameters[1])
        let provider = try await requireProvider(uuid)
        let body = try call.body(UpdateInventoryBody.self)
        if body.generation != provider.generation {
            throw PlacementError.concurrentUpdate("resource provider generation conflict")
        }
        let inventory = try inventory(from: body.fields, resourceClass: name, providerUUID: uuid, call: call)
        guard try await store.resourceClass(named: name) != nil else {
            throw PlacementError.lookupFailed("No such resource class \(name).")
        }
        let result = try await store.updateInventory(
            providerUUID: uuid, generation: body.generation, resourceClass: name,
            inventory: inventory)
        return Reply.json(singleInventoryJSON(inventory, generation: result.provider.generation))
            .cacheHeaders(call, lastModified: result.lastModified)
    }

    func deleteInventory(_ call: Call) async throws -> Reply {
        try await store.deleteInventory(providerUUID: call.parameters[0], resourceClass: call.parameters[1])
        return .noContent
    }
}
