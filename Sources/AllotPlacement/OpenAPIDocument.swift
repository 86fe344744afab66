import AllotCore
import AllotTracker
import HTTPTypes

/// The OpenAPI 3.1 document of the whole HTTP API, served at `GET /openapi.json`.
///
/// Built from what the server itself routes and validates with: the paths and methods of ``Route/all``, each
/// endpoint's minimum microversion (``PlacementResponder/minimumVersion(_:)``), its body schema
/// (``RequestSchemas/body(_:_:)``) and query parameters (``RequestSchemas/query(_:_:)``), and the statuses and
/// response schemas of ``Endpoint/documentation``. It describes Placement at the newest microversion.
enum OpenAPIDocument {
    /// The microversion the document describes.
    static let version = Microversion.maximum

    /// The document, rendered once.
    static let bytes: [UInt8] = document().serializedBytes()

    static func document() -> JSONValue {
        var paths: [(String, JSONValue)] = []
        for route in Route.all {
            let parameters = pathParameters(route)
            var operations: [(String, JSONValue)] = []
            for (method, endpoint) in route.methods {
                operations.append((method.rawValue.lowercased(), operation(endpoint, method: method, path: parameters)))
            }
            paths.append((route.pattern, .ordered(operations)))
        }
        return .ordered([
            ("openapi", "3.1.0"),
            ("info", .ordered([
                ("title", "Allot"),
                ("version", .string(version.description)),
                ("description", .string(
                    "Allot's HTTP API: OpenStack Placement (microversions \(Microversion.minimum)–\(version); this "
                        + "document describes \(version), each operation's `x-openstack-microversion` is the first "
                        + "version that has it), the compute API (`/compute/v1`) and the ledger protocol of agents. "
                        + "Generated from the server's own route table and validation schemas.")),
            ])),
            ("paths", .ordered(paths)),
            ("components", .ordered([
                ("securitySchemes", .ordered([
                    ("token", .ordered([
                        ("type", "apiKey"), ("in", "header"), ("name", "X-Auth-Token"),
                        ("description", "A token of `--auth token` (a token file) or of Keystone (`--auth keystone`)."),
                    ]))
                ])),
                ("schemas", .ordered(OpenAPIResponses.componentSchemas)),
            ])),
            ("security", .array([.ordered([("token", .array([]))])])),
        ])
    }

    /// `{name}` segments of the route's pattern, as path parameters.
    static func pathParameters(_ route: Route) -> [JSONValue] {
        route.pattern.split(separator: "/").filter { $0.hasPrefix("{") }.map { segment in
            let name = String(segment.dropFirst().dropLast())
            let schema: JSONValue
            switch name {
            case "action":
                schema = .ordered([("type", "string"),
                                   ("enum", ["finish", "confirm", "revert", "rollback", "progress"])])
            case "call":
                let calls = LedgerCall.allCases.map { JSONValue.string($0.rawValue) }
                schema = .ordered([("type", "string"), ("enum", .array(calls))])
            default:
                schema = .ordered([("type", "string"), ("minLength", 1)])
            }
            return .ordered([("name", .string(name)), ("in", "path"), ("required", true), ("schema", schema)])
        }
    }

    static let versionHeader: JSONValue = .ordered([
        ("name", "OpenStack-API-Version"), ("in", "header"), ("required", true),
        ("description", .string(
            "The Placement microversion (`placement 1.39`, `placement latest`); without it 1.0. This document "
                + "describes \(version).")),
        ("schema", .ordered([("type", "string"), ("enum", .array([.string("placement \(version)")]))])),
    ])

    static func operation(_ endpoint: Endpoint, method: HTTPRequest.Method, path: [JSONValue]) -> JSONValue {
        let documentation = endpoint.documentation
        var parameters = path
        if !endpoint.isCompute, !endpoint.isLedger { parameters.append(versionHeader) }
        for query in RequestSchemas.query(endpoint, version) {
            var schema = query.schema.jsonSchema
            var members: [(String, JSONValue)] = [("name", .string(query.name)), ("in", "query"), ("required", false)]
            if query.name == "project_id", endpoint == .usages { members[2] = ("required", true) }
            members.append(("description", .string(query.summary)))
            if query.repeats {
                schema = .ordered([("type", "array"), ("items", schema)])
                members += [("style", "form"), ("explode", true)]
            }
            members.append(("schema", schema))
            parameters.append(.ordered(members))
        }
        var members: [(String, JSONValue)] = [
            ("operationId", .string(String(describing: endpoint))),
            ("summary", .string(documentation.summary)),
            ("tags", .array([.string(endpoint.isCompute || endpoint.isLedger ? "compute" : "placement")])),
        ]
        if !endpoint.isCompute, !endpoint.isLedger {
            let minimum = PlacementResponder.minimumVersion(endpoint)
            members.append(("x-openstack-microversion", .string(minimum.description)))
        }
        if endpoint == .root { members.append(("security", .array([]))) }
        if !parameters.isEmpty { members.append(("parameters", .array(parameters))) }
        let validated = RequestSchemas.body(endpoint, version)?.jsonSchema
        if let body = validated ?? documentation.requestBody {
            members.append(("requestBody", .ordered([
                ("required", .bool(validated != nil)),
                ("content", .ordered([("application/json", .ordered([("schema", body)]))])),
            ])))
        }
        members.append(("responses", OpenAPIResponses.responses(endpoint, method: method)))
        return .ordered(members)
    }
}

extension Endpoint {
    /// The ledger protocol of agents (`/compute/v1/ledger…`), served by `allot serve` only.
    var isLedger: Bool { self == .computeLedgerInfo || self == .computeLedger }
}
