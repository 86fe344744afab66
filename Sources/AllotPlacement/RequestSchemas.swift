import AllotCore

/// The JSON schemas the Placement handlers validate request bodies with, by endpoint and microversion.
///
/// The handlers validate with these through their ``RequestBody`` types, and ``OpenAPIDocument`` publishes the
/// same values (``body(_:_:)``), so the published document cannot drift from what the server accepts.
enum RequestSchemas {
    /// The body schema of `endpoint` at `version`; `nil` when the endpoint reads no body there, or (the compute
    /// API, the ledger protocol) validates its body by hand rather than with a ``Schema``.
    static func body(_ endpoint: Endpoint, _ version: Microversion) -> Schema? {
        switch endpoint {
        case .createProvider: return CreateProviderBody.schema(version)
        case .updateProvider: return UpdateProviderBody.schema(version)
        case .replaceInventories: return ReplaceInventoriesBody.schema(version)
        case .createInventory: return CreateInventoryBody.schema(version)
        case .updateInventory: return UpdateInventoryBody.schema(version)
        case .createResourceClass: return ResourceClassBody.schema(version)
        case .updateResourceClass: return version.isAtLeast(1, 7) ? nil : ResourceClassBody.schema(version)
        case .setProviderTraits: return ProviderTraitsBody.schema(version)
        case .setProviderAggregates: return ProviderAggregatesBody.schema(version)
        case .setConsumerAllocations: return SetAllocationsBody.schema(version)
        case .postAllocations: return PostAllocationsBody.schema(version)
        case .reshaper: return ReshaperBody.schema(version)
        case .root, .listProviders, .showProvider, .deleteProvider, .listInventories, .deleteInventories,
            .showInventory, .deleteInventory, .listResourceClasses, .showResourceClass, .deleteResourceClass,
            .listTraits, .showTrait, .createTrait, .deleteTrait, .providerTraits, .deleteProviderTraits,
            .providerAggregates, .consumerAllocations, .deleteConsumerAllocations, .providerAllocations,
            .providerUsages, .usages, .allocationCandidates, .computeFit:
            return nil
        case .computeNodes, .computeNode, .computeInstances, .computeBuild, .computeInstance, .computeDeleteInstance,
            .computeInstanceState, .computeInstanceAbort, .computeMigrations, .computeMove, .computeMigration,
            .computeMigrationAction, .computeAudit, .computeEvents, .computeLedgerInfo, .computeLedger:
            return nil
        }
    }

    static let uuid = Schema.string(.init(format: "uuid"))
    static let anyInteger = Schema.integer(minimum: nil, maximum: nil)

    // MARK: Providers

    static func createProvider(_ version: Microversion) -> Schema {
        var properties: [(String, Schema)] = [
            ("name", .string(.init(maxLength: Limits.maxNameLength))), ("uuid", uuid),
        ]
        if version.isAtLeast(1, 14) { properties.append(("parent_provider_uuid", .anyOfSchemas([uuid, .null]))) }
        return .object(.init(properties: properties, required: ["name"], additionalProperties: false))
    }

    static func updateProvider(_ version: Microversion) -> Schema {
        var properties: [(String, Schema)] = [("name", .string(.init(maxLength: Limits.maxNameLength)))]
        if version.isAtLeast(1, 14) { properties.append(("parent_provider_uuid", .anyOfSchemas([uuid, .null]))) }
        return .object(.init(properties: properties, required: ["name"], additionalProperties: false))
    }

    // MARK: Inventories

    /// The properties of one inventory in a request body.
    static let inventoryProperties: [(String, Schema)] = [
        ("total", .integer(minimum: 1, maximum: Limits.maxInt)),
        ("reserved", .integer(minimum: 0, maximum: Limits.maxInt)),
        ("min_unit", .integer(minimum: 1, maximum: Limits.maxInt)),
        ("max_unit", .integer(minimum: 1, maximum: Limits.maxInt)),
        ("step_size", .integer(minimum: 1, maximum: Limits.maxInt)),
        // No minimum upstream: a negative ratio is refused for the capacity it leaves.
        ("allocation_ratio", .number(minimum: nil, maximum: Limits.maxAllocationRatio)),
    ]

    static let resourceClassPattern: (String, @Sendable (String) -> Bool) = (
        "^[A-Z0-9_]+$", { ResourceClass.isWellFormedName($0) }
    )

    static let replaceInventories = Schema.object(.init(
        properties: [
            ("resource_provider_generation", anyInteger),
            ("inventories", .object(.init(patternProperties: [(
                resourceClassPattern.0, resourceClassPattern.1,
                .object(.init(properties: inventoryProperties, required: ["total"], additionalProperties: false))
            )]))),
        ], required: ["resource_provider_generation", "inventories"], additionalProperties: false))

    static let createInventory = Schema.object(.init(
        properties: [
            ("resource_class", .string(.init(pattern: resourceClassPattern))),
            ("resource_provider_generation", anyInteger),
        ] + inventoryProperties,
        required: ["total", "resource_class"], additionalProperties: false))

    static let updateInventory = Schema.object(.init(
        properties: [("resource_provider_generation", anyInteger)] + inventoryProperties,
        required: ["total", "resource_provider_generation"], additionalProperties: false))

    // MARK: Resource classes, traits, aggregates

    static let customPattern: (String, @Sendable (String) -> Bool) = (
        "^CUSTOM_[A-Z0-9_]+$", { ResourceClass.isCustomName($0) }
    )

    static let resourceClassName = Schema.object(.init(
        properties: [("name", .string(.init(maxLength: Limits.maxClassNameLength, pattern: customPattern)))],
        required: ["name"], additionalProperties: false))

    static let setProviderTraits = Schema.object(.init(
        properties: [
            ("traits", .array(items: .string(.init(minLength: 1, maxLength: Limits.maxClassNameLength)),
                              minItems: nil, uniqueItems: false)),
            ("resource_provider_generation", anyInteger),
        ], required: ["traits", "resource_provider_generation"], additionalProperties: false))

    static let aggregateList = Schema.array(items: uuid, minItems: nil, uniqueItems: true)

    /// A bare list before 1.19; an object with the provider's generation from 1.19.
    static func setProviderAggregates(_ version: Microversion) -> Schema {
        guard version.isAtLeast(1, 19) else { return aggregateList }
        return .object(.init(
            properties: [("aggregates", aggregateList), ("resource_provider_generation", anyInteger)],
            required: ["aggregates", "resource_provider_generation"], additionalProperties: false))
    }

    // MARK: Allocations

    /// Upstream's key pattern, literally: 36 hex digits or dashes (the keys are then used as written).
    static let uuidKeyPattern: (String, @Sendable (String) -> Bool) = (
        "^[0-9a-fA-F-]{36}$",
        { key in key.utf8.count == 36 && key.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == "-" } }
    )

    /// `[a-zA-Z0-9_-]{1,64}` unanchored, as upstream's mapping keys are matched.
    static let isGroupSuffix: @Sendable (String) -> Bool = { key in
        key.unicodeScalars.contains { scalar in
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "_" || scalar == "-"
        }
    }

    static let resources = Schema.object(.init(
        patternProperties: [(resourceClassPattern.0, resourceClassPattern.1,
                             .integer(minimum: 1, maximum: nil))],  // no maximum upstream: a 409 refuses more
        additionalProperties: false, minProperties: 1))

    /// One consumer's allocations at `version` (`PUT /allocations/{c}`, or an entry of a `POST`).
    static func consumer(_ version: Microversion, forPost: Bool) -> Schema {
        let allocations: Schema
        if version.isAtLeast(1, 12) {
            allocations = .object(.init(
                patternProperties: [(uuidKeyPattern.0, uuidKeyPattern.1, .object(.init(
                    properties: [("resources", resources), ("generation", .any)],
                    required: ["resources"], additionalProperties: false)))],
                additionalProperties: false, minProperties: forPost || version.isAtLeast(1, 28) ? 0 : 1))
        } else {
            allocations = .array(items: .object(.init(
                properties: [
                    ("resource_provider", .object(.init(
                        properties: [("uuid", uuid)], required: ["uuid"], additionalProperties: false))),
                    ("resources", resources),
                ], required: ["resource_provider", "resources"], additionalProperties: false)),
                minItems: 1, uniqueItems: false)
        }
        let identifier = Schema.string(.init(minLength: 1, maxLength: Limits.maxIdentifierLength))
        var properties: [(String, Schema)] = [("allocations", allocations)]
        var required = ["allocations"]
        if version.isAtLeast(1, 8) {
            properties += [("project_id", identifier), ("user_id", identifier)]
            required += ["project_id", "user_id"]
        }
        if version.isAtLeast(1, 28) {
            properties.append(("consumer_generation", .anyOf([anyInteger, .null])))
            required.append("consumer_generation")
        }
        if version.isAtLeast(1, 34) {
            properties.append(("mappings", .object(.init(
                patternProperties: [("[a-zA-Z0-9_-]{1,64}", isGroupSuffix,
                                     .array(items: uuid, minItems: 1, uniqueItems: false))],
                minProperties: 1))))
        }
        if version.isAtLeast(1, 38) {
            properties.append(("consumer_type", .string(.init(
                minLength: 1, maxLength: Limits.maxClassNameLength, pattern: resourceClassPattern))))
            required.append("consumer_type")
        }
        var rules = Schema.ObjectRules(properties: properties, required: required, additionalProperties: false)
        rules.additionalBeforeRequired = version.isAtLeast(1, 12)
        return .object(rules)
    }

    static func postAllocations(_ version: Microversion) -> Schema {
        .object(.init(
            patternProperties: [(uuidKeyPattern.0, uuidKeyPattern.1, consumer(version, forPost: true))],
            additionalProperties: false, minProperties: 1))
    }

    static func reshaper(_ version: Microversion) -> Schema {
        let inventory = Schema.object(.init(
            properties: [
                ("resource_provider_generation", anyInteger),
                ("inventories", .object(.init(patternProperties: [(
                    resourceClassPattern.0, resourceClassPattern.1,
                    .object(.init(
                        properties: inventoryProperties + [("resource_provider_generation", anyInteger)],
                        required: ["total"], additionalProperties: false))
                )]))),
            ], required: ["resource_provider_generation", "inventories"], additionalProperties: false))
        return .object(.init(
            properties: [
                ("inventories", .object(.init(
                    patternProperties: [(uuidKeyPattern.0, uuidKeyPattern.1, inventory)],
                    additionalProperties: false, minProperties: 1))),
                ("allocations", .object(.init(
                    patternProperties: [(uuidKeyPattern.0, uuidKeyPattern.1, consumer(version, forPost: true))],
                    additionalProperties: false))),
            ], required: ["inventories", "allocations"], additionalProperties: false))
    }
}
