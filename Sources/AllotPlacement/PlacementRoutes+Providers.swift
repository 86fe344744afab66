import AllotCore
import AllotStore
import Foundation
import HTTPTypes

extension PlacementRoutes {
    func providerJSON(_ provider: ResourceProvider, _ call: Call) -> JSONValue {
        let base = "/resource_providers/\(provider.uuid)"
        let links: [JSONValue] = ProviderListRenderer.linkSuffixes(call.version).map { link in
            .object(["rel": .string("\(link.rel)"), "href": .string(base + "\(link.path)")])
        }
        if call.atLeast(1, 14) {
            return .object([
                "uuid": .string(provider.uuid), "name": .string(provider.name),
                "generation": .int(provider.generation), "links": .array(links),
                "parent_provider_uuid": .stringOrNull(provider.parentUUID),
                "root_provider_uuid": .string(provider.rootUUID),
            ])
        }
        return .object([
            "uuid": .string(provider.uuid), "name": .string(provider.name), "generation": .int(provider.generation),
            "links": .array(links),
        ])
    }

    /// `GET /resource_providers`: with `resources` from the search snapshot (the capacity check reads every
    /// matching provider's inventories and usage, which SQL answers slowly), otherwise with one SQL query.
    func listProviders(_ call: Call) async throws -> Reply {
        let filter = try providerFilter(call)
        if filter.resources.isEmpty { return try await listProvidersFromSQL(filter, call) }
        return try await listProvidersFromSnapshot(filter, call)
    }

    /// The query of `GET /resource_providers`, refused with upstream's messages when malformed.
    func providerFilter(_ call: Call) throws -> ProviderFilter {
        try call.rejectUnknownQuery(allowed: Set(RequestSchemas.query(.listProviders, call.version).map(\.name)))
        var filter = ProviderFilter()
        if let name = call.queryValue("name"), !name.isEmpty { filter.name = name }
        for key in ["uuid", "in_tree"] {
            guard let text = call.queryValue(key) else { continue }
            guard text.utf8.count == 36, let normalized = UUIDText.normalized(text) else {
                throw PlacementError.badRequest("Invalid query string parameters: '\(text)' is not a 'uuid'")
            }
            if key == "uuid" { filter.uuid = normalized } else { filter.inTree = normalized }
        }
        let memberOf = call.queryValues("member_of")
        if !memberOf.isEmpty {
            (filter.memberOf, filter.forbiddenAggregates) = try QueryParsing.memberOf(memberOf, version: call.version)
        }
        if let resources = call.queryValue("resources") {
            filter.resources = try QueryParsing.resources(resources)
        }
        let required = call.queryValues("required")
        if !required.isEmpty {
            (filter.requiredTraits, filter.forbiddenTraits) = try QueryParsing.required(required, version: call.version)
        }
        return filter
    }

    /// The listing read with SQL (`SQLPlacementStore.providers(matching:)`): every query without `resources`,
    /// and the oracle the snapshot listing is tested against.
    func listProvidersFromSQL(_ filter: ProviderFilter, _ call: Call) async throws -> Reply {
        let providers = try await store.providers(matching: filter)
        let lastModified = providers.map(\.updatedAt).max()
        return Reply.json(.object(["resource_providers": .array(providers.map { providerJSON($0, call) })]))
            .cacheHeaders(call, lastModified: lastModified)
    }

    /// The listing filtered in the search snapshot (`PlacementSnapshot.providers(matching:traits:classes:)`) and
    /// written straight to bytes: the same providers, order, body and headers as `listProvidersFromSQL`. The
    /// snapshot is at least as fresh as the store's change sequence when the call starts, as the SQL read is.
    func listProvidersFromSnapshot(_ filter: ProviderFilter, _ call: Call) async throws -> Reply {
        let (state, _) = try await searchCache.state(from: store)
        let snapshot = state.snapshot
        let indexes = try snapshot.providers(matching: filter, traits: state.traits, classes: state.classes)
        let lastModified = indexes.map { snapshot.providers[$0].updatedAt }.max()
        let body = ProviderListRenderer(snapshot: snapshot, version: call.version).render(indexes)
        // The content type goes after the cache headers, where the responder puts it for a `JSONValue` body.
        var reply = Reply(status: .ok, body: nil, raw: body).cacheHeaders(call, lastModified: lastModified)
        reply.headers.append((.contentType, "application/json"))
        return reply
    }

    func createProvider(_ call: Call) async throws -> Reply {
        let body = try call.body(CreateProviderBody.self)
        let uuid = body.uuid.flatMap(UUIDText.normalized) ?? randomUUIDString()
        // Upstream normalises the provider's own uuid but looks the parent up as written.
        let provider = try await store.createProvider(uuid: uuid, name: body.name, parentUUID: body.parentUUID)
        let location = call.baseURL + "/resource_providers/\(provider.uuid)"
        if call.atLeast(1, 20) {
            return Reply(status: .ok, body: providerJSON(provider, call), headers: [(.location, location)])
                .cacheHeaders(call, lastModified: provider.updatedAt)
        }
        return Reply(status: .created, body: nil, headers: [(.location, location)])
    }

    func showProvider(_ call: Call) async throws -> Reply {
        let uuid = call.parameters[0]
        guard let provider = try await store.provider(uuid: uuid) else {
            throw PlacementError.lookupFailed("No resource provider with uuid \(uuid) found")
        }
        return Reply.json(providerJSON(provider, call)).cacheHeaders(call, lastModified: provider.updatedAt)
    }

    func updateProvider(_ call: Call) async throws -> Reply {
        guard try await store.provider(uuid: call.parameters[0]) != nil else {
            throw PlacementError.lookupFailed("No resource provider with uuid \(call.parameters[0]) found")
        }
        let body = try call.body(UpdateProviderBody.self)
        let uuid = call.parameters[0]
        let (provider, previousUpdate) = try await store.updateProviderReportingStamp(
            uuid: uuid, name: body.name,
            parentUUID: body.parentUUID, setParent: body.setsParent,  // as written, as upstream
            allowReparent: call.atLeast(1, 37))
        // Upstream sends the updated_at it read before saving: none for a provider never updated.
        return Reply.json(providerJSON(provider, call))
            .cacheHeaders(call, lastModified: previousUpdate, omitLastModified: previousUpdate == nil)
    }

    func deleteProvider(_ call: Call) async throws -> Reply {
        try await store.deleteProvider(uuid: call.parameters[0])
        return .noContent
    }
}
