import AllotCore

/// A Placement request body: the schema it is validated against (``RequestSchemas``) and the typed value built from
/// the validated JSON, without force-unwraps.
protocol RequestBody: Sendable {
    /// The schema of the body at `version`.
    static func schema(_ version: Microversion) -> Schema
    /// Builds the body from JSON that `schema(version)` accepted.
    /// - Throws: ``BodyShapeError`` when the JSON does not have the shape the schema promised (a defect of ours).
    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError)
}

/// A validated body whose shape does not match its struct: the schema and the struct disagree, a defect of the
/// server rather than of the request (answered as an internal failure that changed nothing, never a crash).
struct BodyShapeError: Error, CustomStringConvertible {
    var member: String
    var description: String { "the request body's '\(member)' does not have the shape its schema promised" }
}

extension Call {
    /// The body validated against `Body`'s schema at this call's version, then built into `Body`.
    /// - Throws: 400 with upstream's wording for malformed JSON or a schema violation; ``BodyShapeError``.
    func body<Body: RequestBody>(_: Body.Type) throws -> Body {
        try Body(try json(Body.schema(version)), version: version)
    }
}

extension JSONValue {
    /// A member the schema requires.
    func required(_ key: String) throws(BodyShapeError) -> JSONValue {
        guard let value = self[key] else { throw BodyShapeError(member: key) }
        return value
    }

    func requiredString(_ key: String) throws(BodyShapeError) -> String {
        guard let text = try required(key).stringValue else { throw BodyShapeError(member: key) }
        return text
    }

    /// A string member that may be absent.
    func optionalString(_ key: String) throws(BodyShapeError) -> String? {
        guard let value = self[key] else { return nil }
        guard let text = value.stringValue else { throw BodyShapeError(member: key) }
        return text
    }

    /// An object's members in document order.
    func members(_ name: String) throws(BodyShapeError) -> [(String, JSONValue)] {
        guard let members = orderedMembers else { throw BodyShapeError(member: name) }
        return members
    }

    func strings(_ name: String) throws(BodyShapeError) -> [String] {
        guard let list = arrayValue else { throw BodyShapeError(member: name) }
        return try list.map { item throws(BodyShapeError) in
            guard let text = item.stringValue else { throw BodyShapeError(member: name) }
            return text
        }
    }

    /// An integer the schema accepted as a generation to compare. The schema accepts any integral number (as
    /// upstream's jsonschema), also beyond 64 bits (`1e22`): such a number equals no generation, and becomes the
    /// nearest `Int` (still equal to none, as generations are small and never negative), never a crash.
    func generation(_ name: String) throws(BodyShapeError) -> Int {
        if let value = intValue { return value }
        guard let number = doubleValue, number.isFinite, number == number.rounded() else {
            throw BodyShapeError(member: name)
        }
        return number < 0 ? Int.min : Int.max
    }

    /// An inventory's integer field (bounded by the schema) or its default when absent.
    func bounded(_ key: String, default fallback: Int) throws(BodyShapeError) -> Int {
        guard let value = self[key] else { return fallback }
        guard let number = value.intValue else { throw BodyShapeError(member: key) }
        return number
    }
}

// MARK: Providers

struct CreateProviderBody: RequestBody {
    var name: String
    /// The provider's uuid as sent (normalised by the handler), if any.
    var uuid: String?
    /// The parent as written (upstream looks it up as written); `nil` also for JSON `null`.
    var parentUUID: String?

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.createProvider(version) }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        name = try value.requiredString("name")
        uuid = try value.optionalString("uuid")
        parentUUID = value["parent_provider_uuid"]?.stringValue
    }
}

struct UpdateProviderBody: RequestBody {
    var name: String
    /// Whether the body names a parent (a uuid, or `null` to un-parent).
    var setsParent: Bool
    var parentUUID: String?

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.updateProvider(version) }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        name = try value.requiredString("name")
        setsParent = value["parent_provider_uuid"] != nil
        parentUUID = value["parent_provider_uuid"]?.stringValue
    }
}

// MARK: Inventories

/// The fields of one inventory, with upstream's defaults for those left out.
struct InventoryFields: Sendable {
    var inventory: Inventory

    init(_ value: JSONValue) throws(BodyShapeError) {
        var ratio = 1.0
        if let member = value["allocation_ratio"] {
            guard let number = member.doubleValue else { throw BodyShapeError(member: "allocation_ratio") }
            ratio = number
        }
        inventory = Inventory(
            total: try value.bounded("total", default: 0), reserved: try value.bounded("reserved", default: 0),
            minUnit: try value.bounded("min_unit", default: 1),
            maxUnit: try value.bounded("max_unit", default: Limits.maxInt),
            stepSize: try value.bounded("step_size", default: 1), allocationRatio: ratio)
    }
}

struct ReplaceInventoriesBody: RequestBody {
    var generation: Int
    /// By resource class, in request order (upstream checks them in that order).
    var inventories: [(String, InventoryFields)]

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.replaceInventories }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        generation = try value.required("resource_provider_generation").generation("resource_provider_generation")
        inventories = try value.required("inventories").members("inventories").map {
            (name, record) throws(BodyShapeError) in (name, try InventoryFields(record))
        }
    }
}

struct CreateInventoryBody: RequestBody {
    var resourceClass: String
    var generation: Int?
    var fields: InventoryFields

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.createInventory }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        resourceClass = try value.requiredString("resource_class")
        generation = try value["resource_provider_generation"].map {
            (member) throws(BodyShapeError) in try member.generation("resource_provider_generation")
        }
        fields = try InventoryFields(value)
    }
}

struct UpdateInventoryBody: RequestBody {
    var generation: Int
    var fields: InventoryFields

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.updateInventory }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        generation = try value.required("resource_provider_generation").generation("resource_provider_generation")
        fields = try InventoryFields(value)
    }
}

// MARK: Resource classes, traits, aggregates

struct ResourceClassBody: RequestBody {
    var name: String

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.resourceClassName }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        name = try value.requiredString("name")
    }
}

struct ProviderTraitsBody: RequestBody {
    var traits: [String]
    var generation: Int

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.setProviderTraits }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        traits = try value.required("traits").strings("traits")
        generation = try value.required("resource_provider_generation").generation("resource_provider_generation")
    }
}

struct ProviderAggregatesBody: RequestBody {
    var aggregates: [String]
    /// From 1.19; before, a bare list and no generation check.
    var generation: Int?

    static func schema(_ version: Microversion) -> Schema { RequestSchemas.setProviderAggregates(version) }

    init(_ value: JSONValue, version: Microversion) throws(BodyShapeError) {
        if version.isAtLeast(1, 19) {
            aggregates = try value.required("aggregates").strings("aggregates")
            generation = try value.required("resource_provider_generation").generation("resource_provider_generation")
        } else {
            aggregates = try value.strings("aggregates")
            generation = nil
        }
    }
}
