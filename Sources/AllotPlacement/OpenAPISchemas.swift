import AllotCore

/// The component schemas of the OpenAPI document's response bodies. (The compute API's request bodies are published
/// from their declarations, ``ComputeRequestBody/schema``.)
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
            ("FitReport", object([("candidates", integer), ("fitting", array(map(anything))),
                                  ("excluded", array(map(anything)))])),
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
