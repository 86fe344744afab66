import AllotCore
import AllotStore
import HTTPTypes

extension PlacementRoutes {
    func resourceClassJSON(_ name: String) -> JSONValue {
        .object(["name": .string(name), "links": .array([.object(["rel": "self", "href": .string("/resource_classes/\(name)")])])])
    }

    func listResourceClasses(_ call: Call) async throws -> Reply {
        let classes = try await store.resourceClasses()
        return Reply.json(.object(["resource_classes": .array(classes.map { resourceClassJSON($0.name) })]))
            .cacheHeaders(call, lastModified: classes.map(\.lastModified).max())
    }

    func createResourceClass(_ call: Call) async throws -> Reply {
        let name = try call.body(ResourceClassBody.self).name
        _ = try await store.createResourceClass(named: name, failIfExists: true)
        return Reply(status: .created, body: nil, headers: [(.location, call.baseURL + "/resource_classes/\(name)")])
    }

    func showResourceClass(_ call: Call) async throws -> Reply {
        let name = call.parameters[0]
        guard let record = try await store.resourceClass(named: name) else {
            throw PlacementError.lookupFailed("No such resource class \(name).")
        }
        return Reply.json(resourceClassJSON(record.name)).cacheHeaders(call, lastModified: record.lastModified)
    }

    func updateResourceClass(_ call: Call) async throws -> Reply {
        let name = call.parameters[0]
        if call.atLeast(1, 7) {
            if name.contains("\"") || name.contains("\\") {
                throw PlacementError.badRequest("Malformed JSON: the resource class name is not valid JSON text")
            }
            try RequestSchemas.resourceClassName.validate(.object(["name": .string(name)]))
            let created = try await store.createResourceClass(named: name, failIfExists: false)
            return Reply(status: created ? .created : .noContent, body: nil,
                         headers: [(.location, call.baseURL + "/resource_classes/\(name)")])
        }
        let newName = try call.body(ResourceClassBody.self).name
        try await store.renameResourceClass(from: name, to: newName)
        return Reply.json(resourceClassJSON(newName))
    }

    func deleteResourceClass(_ call: Call) async throws -> Reply {
        try await store.deleteResourceClass(named: call.parameters[0])
        return .noContent
    }

    func listTraits(_ call: Call) async throws -> Reply {
        try call.rejectUnknownQuery(allowed: Set(RequestSchemas.query(.listTraits, call.version).map(\.name)))
        var filter = TraitFilter()
        if let name = call.queryValue("name") {
            if name.hasPrefix("startswith:") {
                filter.startsWith = String(name.dropFirst("startswith:".count))
            } else if name.hasPrefix("in:") {
                filter.names = name.dropFirst(3).split(separator: ",").map(String.init)
            } else if !name.contains(":") {
                throw PlacementError.badRequest(
                    "Badly formatted name parameter. Expected name query string parameter in form: "
                        + "?name=[in|startswith]:[name1,name2|prefix]. Got: \"\(name)\"")
            }
        }
        if let associated = call.queryValue("associated") {
            switch associated.lowercased() {
            case "true": filter.associated = true
            case "false": filter.associated = false
            default:
                throw PlacementError.badRequest(
                    "The query parameter \"associated\" only accepts \"true\" or \"false\"")
            }
        }
        let traits = try await store.traits(filter)
        return Reply.json(.object(["traits": .array(traits.map { .string($0.name) })]))
            .cacheHeaders(call, lastModified: traits.map(\.lastModified).max())
    }

    func showTrait(_ call: Call) async throws -> Reply {
        let name = call.parameters[0]
        guard let record = try await store.trait(named: name) else {
            throw PlacementError.notFound("No such trait(s): \(name).")
        }
        return Reply.noContent.cacheHeaders(call, lastModified: record.lastModified)
    }

    func createTrait(_ call: Call) async throws -> Reply {
        let name = call.parameters[0]
        guard Trait.isCustomName(name), name.count <= Limits.maxClassNameLength else {
            throw PlacementError.badRequest(
                "The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix "
                    + "\"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"")
        }
        let created = try await store.createTrait(named: name)
        let reply = Reply(status: created ? .created : .noContent, body: nil,
                          headers: [(.location, call.baseURL + "/traits/\(name)")])
        return reply.cacheHeaders(call, lastModified: try await store.trait(named: name)?.lastModified)
    }

    func deleteTrait(_ call: Call) async throws -> Reply {
        try await store.deleteTrait(named: call.parameters[0])
        return .noContent
    }

    func providerTraits(_ call: Call) async throws -> Reply {
        let uuid = call.parameters[0]
        let (provider, traits) = try await catchingProviderLookup("No resource provider with uuid \(uuid) found: ") {
            try await store.providerTraits(providerUUID: uuid)
        }
        return Reply.json(.object([
            "traits": .array(traits.map(JSONValue.string)), "resource_provider_generation": .int(provider.generation),
        ])).cacheHeaders(call, lastModified: provider.updatedAt)
    }

    func setProviderTraits(_ call: Call) async throws -> Reply {
        let body = try call.body(ProviderTraitsBody.self)
        let (provider, traits) = try await store.setProviderTraits(
            providerUUID: call.parameters[0], generation: body.generation, traits: body.traits)
        return Reply.json(.object([
            "traits": .array(traits.map(JSONValue.string)), "resource_provider_generation": .int(provider.generation),
        ])).cacheHeaders(call, lastModified: provider.updatedAt)
    }

    func deleteProviderTraits(_ call: Call) async throws -> Reply {
        _ = try await store.setProviderTraits(providerUUID: call.parameters[0], generation: nil, traits: [])
        return .noContent
    }

    func providerAggregates(_ call: Call) async throws -> Reply {
        let (provider, aggregates) = try await store.providerAggregates(providerUUID: call.parameters[0])
        return aggregatesReply(provider, aggregates, call)
    }

    func setProviderAggregates(_ call: Call) async throws -> Reply {
        _ = try await store.providerAggregates(providerUUID: call.parameters[0])
        let body = try call.body(ProviderAggregatesBody.self)
        let (provider, result) = try await store.setProviderAggregates(
            providerUUID: call.parameters[0], generation: body.generation, aggregates: body.aggregates)
        return aggregatesReply(provider, result, call)
    }

    private func aggregatesReply(_ provider: ResourceProvider, _ aggregates: [String], _ call: Call) -> Reply {
        let list = JSONValue.array(aggregates.map(JSONValue.string))
        let body: JSONValue = call.atLeast(1, 19)
            ? .object(["aggregates": list, "resource_provider_generation": .int(provider.generation)])
            : .object(["aggregates": list])
        return Reply.json(body).cacheHeaders(call, lastModified: provider.updatedAt)
    }
}
