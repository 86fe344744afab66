import AllotCore
import HTTPTypes

/// What the OpenAPI document says of an endpoint beyond what routing and validation hold: a summary, its
/// success statuses (each with the component schema of its body, or none) and, for the compute API, the schema of
/// its request body (from the body's declaration, ``ComputeRequestBody``).
struct EndpointDocumentation: Sendable {
    var summary: String
    var success: [(Int, String?)]
    var requestBody: JSONValue? = nil
    var mediaType = "application/json"
}

extension Endpoint {
    /// The endpoint's documentation at the newest microversion (an exhaustive switch: no endpoint can be left out).
    var documentation: EndpointDocumentation {
        switch self {
        case .root:
            return .init(summary: "The version document (public); a browser (Accept preferring text/html, no "
                + "version header) is redirected to the console at /ui/.", success: [(200, "Versions"), (302, nil)])
        case .listProviders: return .init(summary: "List resource providers.", success: [(200, "Providers")])
        case .createProvider:
            return .init(summary: "Create a resource provider (before 1.20: 201 without a body).",
                         success: [(200, "Provider"), (201, nil)])
        case .showProvider: return .init(summary: "Show a resource provider.", success: [(200, "Provider")])
        case .updateProvider:
            return .init(summary: "Rename or re-parent a resource provider.", success: [(200, "Provider")])
        case .deleteProvider: return .init(summary: "Delete a resource provider.", success: [(204, nil)])
        case .listInventories: return .init(summary: "A provider's inventories.", success: [(200, "Inventories")])
        case .replaceInventories:
            return .init(summary: "Replace a provider's inventories.", success: [(200, "Inventories")])
        case .deleteInventories: return .init(summary: "Delete a provider's inventories.", success: [(204, nil)])
        case .createInventory: return .init(summary: "Add one inventory.", success: [(201, "Inventory")])
        case .showInventory: return .init(summary: "Show one inventory.", success: [(200, "Inventory")])
        case .updateInventory: return .init(summary: "Update one inventory.", success: [(200, "Inventory")])
        case .deleteInventory: return .init(summary: "Delete one inventory.", success: [(204, nil)])
        case .listResourceClasses:
            return .init(summary: "List resource classes.", success: [(200, "ResourceClasses")])
        case .createResourceClass: return .init(summary: "Create a custom resource class.", success: [(201, nil)])
        case .showResourceClass: return .init(summary: "Show a resource class.", success: [(200, "ResourceClass")])
        case .updateResourceClass:
            return .init(summary: "Create a custom resource class if it does not exist (before 1.7: rename it).",
                         success: [(200, "ResourceClass"), (201, nil), (204, nil)])
        case .deleteResourceClass: return .init(summary: "Delete a custom resource class.", success: [(204, nil)])
        case .listTraits: return .init(summary: "List traits.", success: [(200, "Traits")])
        case .showTrait: return .init(summary: "Whether a trait exists.", success: [(204, nil)])
        case .createTrait: return .init(summary: "Create a custom trait.", success: [(201, nil), (204, nil)])
        case .deleteTrait: return .init(summary: "Delete a custom trait.", success: [(204, nil)])
        case .providerTraits: return .init(summary: "A provider's traits.", success: [(200, "ProviderTraits")])
        case .setProviderTraits:
            return .init(summary: "Replace a provider's traits.", success: [(200, "ProviderTraits")])
        case .deleteProviderTraits: return .init(summary: "Remove a provider's traits.", success: [(204, nil)])
        case .providerAggregates: return .init(summary: "A provider's aggregates.", success: [(200, "Aggregates")])
        case .setProviderAggregates:
            return .init(summary: "Replace a provider's aggregates.", success: [(200, "Aggregates")])
        case .consumerAllocations:
            return .init(summary: "A consumer's allocations.", success: [(200, "ConsumerAllocations")])
        case .setConsumerAllocations:
            return .init(summary: "Replace a consumer's allocations.", success: [(204, nil)])
        case .deleteConsumerAllocations:
            return .init(summary: "Delete a consumer's allocations.", success: [(204, nil)])
        case .postAllocations:
            return .init(summary: "Replace the allocations of several consumers at once.", success: [(204, nil)])
        case .providerAllocations:
            return .init(summary: "The allocations against a provider.", success: [(200, "ProviderAllocations")])
        case .providerUsages: return .init(summary: "A provider's usages.", success: [(200, "ProviderUsages")])
        case .usages: return .init(summary: "A project's (or user's) usages.", success: [(200, "Usages")])
        case .allocationCandidates:
            return .init(summary: "Allocation candidates for a request.", success: [(200, "AllocationCandidates")])
        case .reshaper:
            return .init(summary: "Move inventories and allocations atomically.", success: [(204, nil)])
        case .computeFit:
            return .init(summary: "Where does it fit: the provider trees allocation candidates would use, and why each "
                + "other tree was left out (the query of GET /allocation_candidates).", success: [(200, "FitReport")])
        case .computeNodes: return .init(summary: "List compute nodes.", success: [(200, "ComputeNodes")])
        case .computeNode: return .init(summary: "Show a compute node.", success: [(200, "ComputeNode")])
        case .computeInstances: return .init(summary: "List instances.", success: [(200, "Instances")])
        case .computeBuild:
            return .init(summary: "Claim resources to build an instance.", success: [(200, "Change"), (201, "Change")],
                         requestBody: BuildInstanceBody.schema)
        case .computeInstance: return .init(summary: "Show an instance.", success: [(200, "Instance")])
        case .computeDeleteInstance:
            return .init(summary: "Delete an instance (release its claims).", success: [(200, "Change")])
        case .computeInstanceState:
            return .init(summary: "Update an instance's states.", success: [(200, "Change")],
                         requestBody: InstanceStateBody.schema)
        case .computeInstanceAbort: return .init(summary: "Abort a build.", success: [(200, "Change")])
        case .computeMigrations: return .init(summary: "List migrations.", success: [(200, "Migrations")])
        case .computeMove:
            return .init(summary: "Claim resources for a move.", success: [(200, "Change"), (201, "Change")],
                         requestBody: MoveBody.schema)
        case .computeMigration: return .init(summary: "Show a migration.", success: [(200, "Migration")])
        case .computeMigrationAction:
            return .init(summary: "Finish, confirm, revert, roll back or report progress of a migration.",
                         success: [(200, "Change")], requestBody: MigrationProgressBody.schema)
        case .computeAudit: return .init(summary: "Audit this host's nodes now.", success: [(200, "Audit")])
        case .computeEvents:
            return .init(summary: "The tracker's events as Server-Sent Events (a stream that stays open).",
                         success: [(200, nil)], mediaType: "text/event-stream")
        case .computeLedgerInfo:
            return .init(summary: "The ledger protocol version (agents).", success: [(200, "LedgerInfo")])
        case .computeLedger:
            return .init(summary: "One ledger call of an agent (see docs/compute.md).", success: [(200, "LedgerReply")],
                         requestBody: .ordered([("type", "object")]))
        }
    }
}

/// The response side of the OpenAPI document: statuses by endpoint and the component schemas of bodies.
enum OpenAPIResponses {
    static func responses(_ endpoint: Endpoint, method: HTTPRequest.Method) -> JSONValue {
        let documentation = endpoint.documentation
        var members: [(String, JSONValue)] = []
        for (status, schema) in documentation.success {
            var response: [(String, JSONValue)] = [("description", .string(reason(status)))]
            if let schema {
                response.append(("content", .ordered([("application/json", .ordered([("schema", ref(schema))]))])))
            } else if endpoint == .computeEvents {
                response.append(("content", .ordered([(documentation.mediaType, .ordered([("schema", string)]))])))
            }
            let links = OpenAPIResponses.links(endpoint)
            if status == documentation.success.first?.0, links.orderedMembers?.isEmpty == false {
                response.append(("links", links))
            }
            members.append((String(status), .ordered(response)))
        }
        for status in errorStatuses(endpoint, method: method) {
            members.append((String(status), .ordered([
                ("description", .string(reason(status))),
                ("content", .ordered([("application/json", .ordered([
                    ("schema", ref(status == 401 ? "Unauthorized" : "Errors"))]))])),
            ])))
        }
        return .ordered(members)
    }

    /// The refusals an endpoint can answer: the version header (400, 406), authentication and policy (401, 403),
    /// a missing resource (404), a conflict or refusal of a write (409), and for bodies 413 and 415.
    static func errorStatuses(_ endpoint: Endpoint, method: HTTPRequest.Method) -> [Int] {
        if endpoint == .root { return [400, 406] }
        var statuses = [400, 401, 403, 404, 406]
        if method != .get || endpoint == .computeEvents { statuses.append(409) }
        if endpoint == .deleteInventories { statuses.append(405) }  // before 1.5
        if PlacementResponder.takesJSON(endpoint, OpenAPIDocument.version) || endpoint == .computeMigrationAction {
            statuses += [413, 415]
        }
        return statuses.sorted()
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 400: "Bad Request: malformed JSON, a body or query that does not validate, a bad version header"
        case 401: "Unauthorized: no valid token"
        case 403: "Forbidden by policy"
        case 404: "Not Found"
        case 405: "Method Not Allowed (before the microversion that has it)"
        case 406: "Not Acceptable: an unsupported microversion or Accept header"
        case 409: "Conflict: a generation mismatch, a resource in use, or a refused claim"
        case 413: "Payload Too Large"
        case 415: "Unsupported Media Type: the body must be application/json"
        default: String(status)
        }
    }

    /// The operations a successful answer leads to, for schemathesis' stateful phase (OpenAPI links): what was
    /// just created can be read, changed and deleted.
    static func links(_ endpoint: Endpoint) -> JSONValue {
        let targets: [Endpoint]
        let parameters: [(String, String)]
        switch endpoint {
        case .createProvider:
            targets = [.showProvider, .updateProvider, .deleteProvider, .listInventories, .createInventory,
                       .replaceInventories, .deleteInventories, .providerTraits, .setProviderTraits,
                       .providerAggregates, .setProviderAggregates, .providerUsages, .providerAllocations]
            parameters = [("uuid", "$response.body#/uuid")]
        case .createInventory:
            targets = [.showInventory, .updateInventory, .deleteInventory]
            parameters = [("uuid", "$request.path.uuid"), ("rc", "$request.body#/resource_class")]
        case .createResourceClass:
            targets = [.showResourceClass, .deleteResourceClass]
            parameters = [("name", "$request.body#/name")]
        case .createTrait:
            targets = [.showTrait, .deleteTrait]
            parameters = [("name", "$request.path.name")]
        case .setConsumerAllocations:
            targets = [.consumerAllocations, .deleteConsumerAllocations]
            parameters = [("consumer_uuid", "$request.path.consumer_uuid")]
        case .computeBuild:
            targets = [.computeInstance, .computeInstanceState, .computeInstanceAbort, .computeDeleteInstance]
            parameters = [("uuid", "$request.body#/uuid")]
        case .computeMove:
            targets = [.computeMigration, .computeMigrationAction]
            parameters = [("uuid", "$request.body#/uuid")]
        default:
            return .ordered([])
        }
        return .ordered(targets.map { target in
            (String(describing: target), .ordered([
                ("operationId", .string(String(describing: target))),
                ("parameters", .ordered(parameters.map { ($0.0, .string($0.1)) })),
            ]))
        })
    }

    static func ref(_ name: String) -> JSONValue { .ordered([("$ref", .string("#/components/schemas/\(name)"))]) }

    static let string: JSONValue = .ordered([("type", "string")])
    static let integer: JSONValue = .ordered([("type", "integer")])
    static let number: JSONValue = .ordered([("type", "number")])
    static let boolean: JSONValue = .ordered([("type", "boolean")])
    static let nullableString: JSONValue = .ordered([("type", .array(["string", "null"]))])
    static let anything: JSONValue = .ordered([])

    static func object(_ properties: [(String, JSONValue)], required: [String]? = nil) -> JSONValue {
        .ordered([
            ("type", "object"), ("properties", .ordered(properties)),
            ("required", .array((required ?? properties.map(\.0)).map(JSONValue.string))),
        ])
    }

    static func array(_ items: JSONValue) -> JSONValue { .ordered([("type", "array"), ("items", items)]) }

    static func map(_ values: JSONValue) -> JSONValue {
        .ordered([("type", "object"), ("additionalProperties", values)])
    }

    static let linkList = array(object([("rel", string), ("href", string)]))
}
