import AllotCore

/// One member of a compute API request body, declared once: its name, its JSON schema, whether the body must hold
/// it, and how it is read (with the compute API's 400s). The handlers read through these declarations and the
/// OpenAPI document publishes them (``ComputeRequestBody/schema``), so the two cannot drift apart.
struct ComputeField<Value: Sendable>: Sendable {
    let name: String
    let schema: JSONValue
    let required: Bool
    let reader: @Sendable (ComputeBody, String) throws -> Value

    /// The member's value in `body`.
    /// - Throws: ``PlacementError/badRequest(_:)`` with the compute API's message.
    func read(_ body: ComputeBody) throws -> Value { try reader(body, name) }

    var member: ComputeMember { ComputeMember(name: name, schema: schema, required: required) }
}

/// A declared member without its reader: what the OpenAPI document and the unknown-field check need.
struct ComputeMember: Sendable {
    let name: String
    let schema: JSONValue
    let required: Bool
}

/// A compute API request body: a JSON object whose members are declared once (``members``) and read through
/// those declarations; any other member is refused ("Unknown field").
protocol ComputeRequestBody: Sendable {
    static var members: [ComputeMember] { get }
    /// Builds the body from an object whose members are all declared.
    init(checked body: ComputeBody) throws
}

extension ComputeRequestBody {
    /// The body of `call` (an empty body is an empty object).
    /// - Throws: 400 for malformed JSON, a non-object, an unknown member or a member that does not read.
    static func read(_ call: Call) throws -> Self { try read(ComputeBody(call)) }

    static func read(_ body: ComputeBody) throws -> Self {
        try body.allow(Set(members.map(\.name)))
        return try Self(checked: body)
    }

    /// The body's JSON schema, as published in GET /openapi.json: a closed object of the declared members.
    static var schema: JSONValue {
        let object = OpenAPIResponses.object(
            members.map { ($0.name, $0.schema) }, required: members.filter(\.required).map(\.name))
        guard case .object(var values, var order) = object else { return object }
        values["additionalProperties"] = .bool(false)
        order.append("additionalProperties")
        return .object(values, order: order)
    }
}

/// The kinds of member the compute API's bodies hold.
enum ComputeFields {
    static let uuidSchema: JSONValue = .ordered([("type", "string"), ("format", "uuid")])
    static let identifierSchema: JSONValue = .ordered([
        ("type", "string"), ("minLength", 1), ("maxLength", 255), ("pattern", "^[A-Za-z0-9._-]+$"),
    ])
    static let boundedSchema: JSONValue = .ordered([("type", "integer"), ("minimum", 0), ("maximum", .int(Limits.maxInt))])

    /// A required UUID (stored normalised, as `UUIDText.normalized`).
    static func uuid(_ name: String) -> ComputeField<String> {
        .init(name: name, schema: uuidSchema, required: true) { try $0.uuid($1) }
    }

    /// A required project, user or OS type name (see ``ComputeInput/isIdentifier(_:)``).
    static func identifier(_ name: String) -> ComputeField<String> {
        .init(name: name, schema: identifierSchema, required: true) { try $0.identifier($1) }
    }

    static func optionalIdentifier(_ name: String) -> ComputeField<String?> {
        .init(name: name, schema: identifierSchema, required: false) { try $0.optionalIdentifier($1) }
    }

    static func requiredString(_ name: String) -> ComputeField<String> {
        .init(name: name, schema: OpenAPIResponses.string, required: true) { try $0.string($1) }
    }

    static func flag(_ name: String) -> ComputeField<Bool?> {
        .init(name: name, schema: OpenAPIResponses.boolean, required: false) { try $0.bool($1) }
    }

    /// An integer from 0 to `Limits.maxInt`; required unless it has a default.
    static func bounded(_ name: String, default fallback: Int? = nil) -> ComputeField<Int> {
        .init(name: name, schema: boundedSchema, required: fallback == nil) { try $0.integer($1, default: fallback) }
    }

    /// A string or `null`, and whether the member was sent at all (`nil`: absent; `.some(nil)`: `null`).
    static func nullableString(_ name: String) -> ComputeField<String??> {
        .init(name: name, schema: OpenAPIResponses.nullableString, required: false) { body, name in
            guard let value = body.fields[name] else { return nil }
            if case .null = value { return .some(nil) }
            guard let text = value.stringValue else { throw PlacementError.badRequest("\(name) must be a string or null") }
            return .some(text)
        }
    }

    /// One of an enumeration's raw values; `refusal` words the 400 for any other string.
    static func choice<Choice: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, _: Choice.Type, refusal: @escaping @Sendable (String) -> String
    ) -> ComputeField<Choice> where Choice.RawValue == String {
        .init(name: name, schema: choiceSchema(Choice.self), required: true) { body, name in
            let text = try body.string(name)
            guard let choice = Choice(rawValue: text) else { throw PlacementError.badRequest(refusal(text)) }
            return choice
        }
    }

    static func optionalChoice<Choice: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, _: Choice.Type, refusal: @escaping @Sendable (String) -> String
    ) -> ComputeField<Choice?> where Choice.RawValue == String {
        .init(name: name, schema: choiceSchema(Choice.self), required: false) { body, name in
            guard let text = try body.optionalString(name) else { return nil }
            guard let choice = Choice(rawValue: text) else { throw PlacementError.badRequest(refusal(text)) }
            return choice
        }
    }

    static func choiceSchema<Choice: RawRepresentable & CaseIterable>(_: Choice.Type) -> JSONValue
    where Choice.RawValue == String {
        .ordered([("type", "string"), ("enum", .array(Choice.allCases.map { .string($0.rawValue) }))])
    }

    /// The words of a refusal of anything but `Choice`'s raw values.
    static func oneOf<Choice: RawRepresentable & CaseIterable>(_ name: String, _: Choice.Type) -> String
    where Choice.RawValue == String {
        "\(name) must be one of \(Choice.allCases.map(\.rawValue).joined(separator: ", "))"
    }

    /// A flavor object (``FlavorBody``); `required` only for the schema: a body that must hold it reads it.
    static func flavor(_ name: String, required: Bool) -> ComputeField<Flavor> {
        .init(name: name, schema: FlavorBody.schema, required: required) { try $0.flavor($1) }
    }

    /// Extra specs: an object of strings (`null` is none).
    static func extraSpecs(_ name: String) -> ComputeField<[String: String]> {
        .init(name: name, schema: OpenAPIResponses.map(OpenAPIResponses.string), required: false) { body, name in
            guard let value = body.fields[name], value != .null else { return [:] }
            guard let object = value.objectValue else { throw PlacementError.badRequest("'\(name)' must be an object.") }
            var specs: [String: String] = [:]
            for (key, spec) in object {
                guard let text = spec.stringValue else { throw PlacementError.badRequest("extra spec '\(key)' must be a string.") }
                specs[key] = text
            }
            return specs
        }
    }
}

/// A flavor as the compute API's bodies hold it.
struct FlavorBody: ComputeRequestBody {
    static let name = ComputeFields.requiredString("name")
    static let vcpus = ComputeFields.bounded("vcpus")
    static let memoryMB = ComputeFields.bounded("memory_mb")
    static let rootGB = ComputeFields.bounded("root_gb", default: 0)
    static let ephemeralGB = ComputeFields.bounded("ephemeral_gb", default: 0)
    static let swap = ComputeFields.bounded("swap", default: 0)
    static let extraSpecs = ComputeFields.extraSpecs("extra_specs")
    static let members = [name.member, vcpus.member, memoryMB.member, rootGB.member, ephemeralGB.member,
                          swap.member, extraSpecs.member]

    var flavor: Flavor

    init(checked body: ComputeBody) throws {
        let specs = try Self.extraSpecs.read(body)
        flavor = Flavor(
            name: try Self.name.read(body), vcpus: try Self.vcpus.read(body), memoryMB: try Self.memoryMB.read(body),
            rootGB: try Self.rootGB.read(body), ephemeralGB: try Self.ephemeralGB.read(body),
            swapMB: try Self.swap.read(body), extraSpecs: specs)
        if let problem = flavor.problem { throw problem }
    }
}

/// `POST /compute/v1/instances`: a build claim.
struct BuildInstanceBody: ComputeRequestBody {
    static let uuid = ComputeFields.uuid("uuid")
    static let projectID = ComputeFields.identifier("project_id")
    static let userID = ComputeFields.identifier("user_id")
    static let node = ComputeFields.uuid("node")
    static let flavor = ComputeFields.flavor("flavor", required: true)
    static let bootFromVolume = ComputeFields.flag("boot_from_volume")
    static let osType = ComputeFields.optionalIdentifier("os_type")
    static let members = [uuid.member, projectID.member, userID.member, node.member, flavor.member,
                          bootFromVolume.member, osType.member]

    var instance: Instance

    init(checked body: ComputeBody) throws {
        instance = Instance(
            uuid: try Self.uuid.read(body), projectID: try Self.projectID.read(body),
            userID: try Self.userID.read(body), flavor: try Self.flavor.read(body),
            bootFromVolume: try Self.bootFromVolume.read(body) ?? false, node: try Self.node.read(body),
            osType: try Self.osType.read(body))
    }
}

/// `POST /compute/v1/instances/{uuid}/state`: new states (each left as is when absent).
struct InstanceStateBody: ComputeRequestBody {
    static let vmState = ComputeFields.optionalChoice("vm_state", VMState.self) { _ in
        ComputeFields.oneOf("vm_state", VMState.self)
    }
    static let taskState = ComputeFields.nullableString("task_state")
    static let osType = ComputeFields.optionalIdentifier("os_type")
    static let members = [vmState.member, taskState.member, osType.member]

    var vmState: VMState?
    /// `nil`: unchanged; `.some(nil)`: cleared.
    var taskState: String??
    var osType: String?

    init(checked body: ComputeBody) throws {
        vmState = try Self.vmState.read(body)
        taskState = try Self.taskState.read(body)
        osType = try Self.osType.read(body)
    }
}

/// `POST /compute/v1/migrations`: a move claim at the destination (a flavor only for a resize).
struct MoveBody: ComputeRequestBody {
    static let uuid = ComputeFields.uuid("uuid")
    static let instanceUUID = ComputeFields.uuid("instance_uuid")
    static let kind = ComputeFields.choice("kind", MigrationKind.self) { _ in
        ComputeFields.oneOf("kind", MigrationKind.self)
    }
    static let destNode = ComputeFields.uuid("dest_node")
    static let flavor = ComputeFields.flavor("flavor", required: false)
    static let members = [uuid.member, instanceUUID.member, kind.member, destNode.member, flavor.member]

    var migration: Migration

    init(checked body: ComputeBody) throws {
        let kind = try Self.kind.read(body)
        let flavor: Flavor
        if kind == .resize {
            flavor = try Self.flavor.read(body)
        } else {
            if body.fields[Self.flavor.name] != nil { throw PlacementError.badRequest("only a resize takes a flavor") }
            flavor = Flavor(name: "unchanged", vcpus: 1, memoryMB: 1)
        }
        migration = Migration(
            uuid: try Self.uuid.read(body), instanceUUID: try Self.instanceUUID.read(body), kind: kind,
            status: .accepted, sourceNode: "", destNode: try Self.destNode.read(body), oldFlavor: flavor,
            newFlavor: flavor)
    }
}

/// `POST /compute/v1/migrations/{uuid}/progress` (the other actions read no body).
struct MigrationProgressBody: ComputeRequestBody {
    static let status = ComputeFields.choice("status", MigrationStatus.self) { "unknown migration status \($0)" }
    static let members = [status.member]

    var status: MigrationStatus

    init(checked body: ComputeBody) throws {
        status = try Self.status.read(body)
    }
}
