import AllotCore

/// The component schemas of the OpenAPI document's response bodies, and the request bodies of the compute API
/// (read field by field by `ComputeBody` rather than validated against a ``Schema``).
extension OpenAPIResponses {
    static var componentSchemas: [(String, JSONValue)] {
        let inventory = object([
            ("total", integer), ("reserved", integer), ("min_unit", integer), ("max_unit", integer),
            ("step_size", integer), ("allocation_ratio", number),
        ])
        let provider = object(
            [("uuid", string), ("name", string), ("generation", integer), ("links", linkList),
             ("parent_provider_uuid", nullableString), ("root_provider_uuid", string)],
            required: ["uuid", "name", "generation", "links"])  // the tree members from 1.14
        let resourceClass = object([("name", string), ("links", linkList)])
        let amounts = map(integer)
        let flavor = object([
            ("name", string), ("vcpus", integer), ("memory_mb", integer), ("root_gb", integer),
            ("ephemeral_gb", integer), ("swap", integer), ("extra_specs", map(string)),
        ])
        return [
            ("Errors", object([("errors", array(object(
                [("status", integer), ("title", string), ("detail", string), ("code", string),
                 ("request_id", string)], required: ["status", "title", "detail"])))])),
            // keystonemiddleware's (webob's) own body, as upstream.
            ("Unauthorized", object([("message", string), ("code", string), ("title", string)])),
            ("Versions", object([("versions", array(object([
                ("id", string), ("max_version", string), ("min_version", string), ("status", string),
                ("links", linkList),
            ])))])),
            ("Provider", provider),
            ("Providers", object([("resource_providers", array(provider))])),
            ("Inventory", object(
                [("total", integer), ("reserved", integer), ("min_unit", integer), ("max_unit", integer),
                 ("step_size", integer), ("allocation_ratio", number), ("resource_provider_generation", integer)])),
            ("Inventories", object([("inventories", map(inventory)), ("resource_provider_generation", integer)])),
            ("ResourceClass", resourceClass),
            ("ResourceClasses", object([("resource_classes", array(resourceClass))])),
            ("Traits", object([("traits", array(string))])),
            ("ProviderTraits", object([("traits", array(string)), ("resource_provider_generation", integer)])),
            ("Aggregates", object([("aggregates", array(string)), ("resource_provider_generation", integer)],
                                  required: ["aggregates"])),  // the generation from 1.19
            ("ConsumerAllocations", object(
                [("allocations", map(object([("generation", integer), ("resources", amounts)]))),
                 ("project_id", string), ("user_id", string), ("consumer_generation", integer),
                 ("consumer_type", string)], required: ["allocations"])),
            ("ProviderAllocations", object(
                [("allocations", map(object([("resources", amounts), ("consumer_generation", integer)],
                                            required: ["resources"]))),
                 ("resource_provider_generation", integer)])),
            ("ProviderUsages", object([("usages", amounts), ("resource_provider_generation", integer)])),
            // Amounts by class; from 1.38 grouped by consumer type.
            ("Usages", object([("usages", map(anything))])),
            ("AllocationCandidates", object([
                ("allocation_requests", array(object(
                    [("allocations", anything), ("mappings", map(array(string)))],  // a list before 1.12
                    required: ["allocations"]))),
                ("provider_summaries", map(object(
                    [("resources", map(object([("capacity", integer), ("used", integer)]))), ("traits", array(string)),
                     ("parent_provider_uuid", nullableString), ("root_provider_uuid", string)],
                    required: ["resources"]))),
            ])),
            ("ComputeNodes", object([("nodes", array(map(anything)))])),
            ("ComputeNode", map(anything)),
            ("Instance", object(
                [("uuid", string), ("project_id", string), ("user_id", string), ("node", string), ("flavor", flavor),
                 ("boot_from_volume", boolean), ("vm_state", string), ("task_state", nullableString),
                 ("os_type", nullableString), ("updated_at", number), ("numa", anything),
                 ("pci_devices", array(string))])),
            ("Instances", object([("instances", array(ref("Instance")))])),
            ("Migration", object(
                [("uuid", string), ("instance_uuid", string), ("kind", string), ("status", string),
                 ("in_progress", boolean), ("source_node", string), ("dest_node", string), ("old_flavor", flavor),
                 ("new_flavor", flavor), ("updated_at", number)])),
            ("Migrations", object([("migrations", array(ref("Migration")))])),
            ("Change", object([
                ("changed", boolean),
                ("instance", .ordered([("anyOf", .array([ref("Instance"), .ordered([("type", "null")])]))])),
                ("migration", .ordered([("anyOf", .array([ref("Migration"), .ordered([("type", "null")])]))])),
                ("allocations", map(map(amounts))),
            ])),
            ("Audit", object([("nodes", integer), ("added", array(string)), ("removed", array(string))])),
            ("LedgerInfo", object([("ledger_protocol", integer)])),
            ("LedgerReply", anything),
        ]
    }
}

/// The compute API's request bodies, as `ComputeBody` reads them (`Handlers+Compute.swift`).
enum ComputeBodies {
    static let flavor = OpenAPIResponses.object(
        [("name", OpenAPIResponses.string), ("vcpus", bounded), ("memory_mb", bounded), ("root_gb", bounded),
         ("ephemeral_gb", bounded), ("swap", bounded), ("extra_specs", OpenAPIResponses.map(OpenAPIResponses.string))],
        required: ["name", "vcpus", "memory_mb"])
    static let bounded: JSONValue = .ordered([("type", "integer"), ("minimum", 0), ("maximum", .int(Limits.maxInt))])
    static let identifier: JSONValue = .ordered([
        ("type", "string"), ("minLength", 1), ("maxLength", 255), ("pattern", "^[A-Za-z0-9._-]+$"),
    ])
    static let uuid: JSONValue = .ordered([("type", "string"), ("format", "uuid")])

    static let build = closed(OpenAPIResponses.object(
        [("uuid", uuid), ("project_id", identifier), ("user_id", identifier), ("node", uuid), ("flavor", flavor),
         ("boot_from_volume", OpenAPIResponses.boolean), ("os_type", identifier)],
        required: ["uuid", "project_id", "user_id", "node", "flavor"]))
    static let state = closed(OpenAPIResponses.object(
        [("vm_state", OpenAPIResponses.string), ("task_state", OpenAPIResponses.nullableString),
         ("os_type", identifier)], required: []))
    static let move = closed(OpenAPIResponses.object(
        [("uuid", uuid), ("instance_uuid", uuid), ("kind", .ordered([("type", "string")])), ("dest_node", uuid),
         ("flavor", flavor)], required: ["uuid", "instance_uuid", "kind", "dest_node"]))
    /// Only `progress` reads a body.
    static let progress = closed(OpenAPIResponses.object([("status", OpenAPIResponses.string)], required: []))

    static func closed(_ schema: JSONValue) -> JSONValue {
        guard case .object(var values, var order) = schema else { return schema }
        values["additionalProperties"] = .bool(false)
        order.append("additionalProperties")
        return .object(values, order: order)
    }
}
