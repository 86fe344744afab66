import AllotCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import AllotPlacement

/// `GET /openapi.json`: public, valid OpenAPI 3.1, and made of the route table and the schemas the handlers use.
@Suite struct OpenAPITests {
    /// Whether `python3` has openapi-spec-validator (scripts/test.sh's machines do; `pip install
    /// openapi-spec-validator` elsewhere).
    static let validatorAvailable: Bool = system("python3 -c 'import openapi_spec_validator' > /dev/null 2>&1") == 0

    static let tokens = [TokenRecord(token: "admin", user: "admin", project: "admin", roles: ["admin"])]

    /// The served document, fetched without a token.
    static func served() async throws -> (HTTPResponse.Status, String?, JSONValue) {
        try await TestAPI.with(auth: .tokens(Self.tokens)) { api in
            try await api.app.test(.router) { client in
                try await client.execute(uri: "/openapi.json", method: .get, headers: [:]) { response in
                    let value = try JSONValue.parse(Data(response.body.readableBytesView))
                    return (response.status, response.headers[.contentType], value)
                }
            }
        }
    }

    @Test func isPublicJSON() async throws {
        let (status, type, document) = try await Self.served()
        #expect(status == .ok)
        #expect(type == "application/json")
        #expect(document["openapi"] == .string("3.1.0"))
        #expect(document["info"]?["version"] == .string(Microversion.maximum.description))
    }

    @Test(.enabled(if: validatorAvailable, "python3 lacks openapi-spec-validator"))
    func isValidOpenAPI31() async throws {
        let (_, _, document) = try await Self.served()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("openapi.json")
        try Data(document.serializedBytes()).write(to: file)
        let log = directory.appendingPathComponent("validator.log")
        let status = await ShellScript.run(
            "python3 -c 'import json, sys; from openapi_spec_validator import validate; "
                + "from openapi_spec_validator.validation import OpenAPIV31SpecValidator; "
                + "validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator); print(\"valid\")' "
                + "'\(file.path)'", log: log)
        #expect(status == 0, "openapi-spec-validator refused the document:\n\(ShellScript.text(log))")
    }

    @Test func everyRouteAndMethodIsAnOperation() async throws {
        let (_, _, document) = try await Self.served()
        let paths = try #require(document["paths"])
        var operationIDs: Set<String> = []
        for route in Route.all {
            for (method, endpoint) in route.methods {
                let operation = paths[route.pattern]?[method.rawValue.lowercased()]
                #expect(operation?["operationId"] == .string(String(describing: endpoint)),
                        "\(method) \(route.pattern) is missing")
                operationIDs.insert(String(describing: endpoint))
                if !endpoint.isCompute, !endpoint.isLedger {
                    #expect(operation?["x-openstack-microversion"]
                        == .string(PlacementResponder.minimumVersion(endpoint).description))
                }
            }
        }
        #expect(paths.orderedMembers?.count == Route.all.count)
        #expect(operationIDs.count == Route.all.map(\.methods.count).reduce(0, +))
    }

    @Test func bodySchemasAreTheValidationSchemas() async throws {
        let (_, _, document) = try await Self.served()
        var checked = 0
        for route in Route.all {
            for (method, endpoint) in route.methods {
                let published = document["paths"]?[route.pattern]?[method.rawValue.lowercased()]?["requestBody"]?[
                    "content"]?["application/json"]?["schema"]
                if let schema = RequestSchemas.body(endpoint, .maximum) {
                    #expect(published == schema.jsonSchema, "\(endpoint)'s published body schema differs")
                    checked += 1
                }
            }
        }
        #expect(checked == 11)  // PUT /resource_classes/{name} reads no body from 1.7
    }

    /// The compute API's bodies are published from the declarations their handlers read through.
    @Test func computeBodySchemasAreTheDeclarations() async throws {
        let (_, _, document) = try await Self.served()
        let declared: [Endpoint: JSONValue] = [
            .computeBuild: BuildInstanceBody.schema, .computeInstanceState: InstanceStateBody.schema,
            .computeMove: MoveBody.schema, .computeMigrationAction: MigrationProgressBody.schema,
        ]
        var checked = 0
        for route in Route.all {
            for (method, endpoint) in route.methods {
                guard let schema = declared[endpoint] else { continue }
                let published = document["paths"]?[route.pattern]?[method.rawValue.lowercased()]?["requestBody"]?[
                    "content"]?["application/json"]?["schema"]
                #expect(published == schema, "\(endpoint)'s published body schema differs from its declaration")
                checked += 1
            }
        }
        #expect(checked == declared.count)
        // Spot checks: the declarations carry the rules the handlers apply.
        let build = try #require(document["paths"]?["/compute/v1/instances"]?["post"]?["requestBody"]?["content"]?[
            "application/json"]?["schema"])
        #expect(build["additionalProperties"] == .bool(false))
        #expect(build["required"] == .array(["uuid", "project_id", "user_id", "node", "flavor"]))
        #expect(build["properties"]?["node"]?["format"] == .string("uuid"))
        #expect(build["properties"]?["flavor"]?["required"] == .array(["name", "vcpus", "memory_mb"]))
        #expect(build["properties"]?["flavor"]?["properties"]?["vcpus"]?["maximum"] == .int(Limits.maxInt))
        #expect(MoveBody.schema["properties"]?["kind"]?["enum"]
                    == .array(MigrationKind.allCases.map { .string($0.rawValue) }))
    }

    /// The handlers accept exactly the members their bodies declare (and so publish): every declared member is
    /// known, any other is refused by name.
    @Test func computeBodiesAcceptExactlyTheirDeclaredMembers() throws {
        let bodies: [(String, [ComputeMember], (ComputeBody) throws -> Void)] = [
            ("build", BuildInstanceBody.members, { _ = try BuildInstanceBody.read($0) }),
            ("state", InstanceStateBody.members, { _ = try InstanceStateBody.read($0) }),
            ("move", MoveBody.members, { _ = try MoveBody.read($0) }),
            ("progress", MigrationProgressBody.members, { _ = try MigrationProgressBody.read($0) }),
            ("flavor", FlavorBody.members, { _ = try FlavorBody.read($0) }),
        ]
        for (name, members, read) in bodies {
            var fields = Dictionary(uniqueKeysWithValues: members.map { ($0.name, JSONValue.int(-1)) })
            do { try read(ComputeBody(fields: fields)) } catch let error as PlacementError {
                #expect(!error.detail.hasPrefix("Unknown field"), "\(name): \(error.detail)")
            }
            fields["undeclared"] = .null
            #expect(throws: PlacementError.badRequest("Unknown field 'undeclared'."), "\(name)") {
                try read(ComputeBody(fields: fields))
            }
        }
    }

    /// The published schema keeps every rule the validator applies (spot checks of the translation).
    @Test func schemaTranslationKeepsTheRules() {
        let schema = RequestSchemas.createProvider(.maximum).jsonSchema
        #expect(schema["additionalProperties"] == .bool(false))
        #expect(schema["required"] == .array(["name"]))
        #expect(schema["properties"]?["name"]?["maxLength"] == .int(Limits.maxNameLength))
        #expect(schema["properties"]?["uuid"]?["format"] == .string("uuid"))
        let inventories = RequestSchemas.replaceInventories.jsonSchema
        #expect(inventories["properties"]?["inventories"]?["patternProperties"]?["^[A-Z0-9_]+$"]?["properties"]?[
            "total"]?["maximum"] == .int(Limits.maxInt))
    }

    /// Query parameters published are the ones the handlers accept: any other is refused with a 400.
    @Test func publishedQueryParametersAreAccepted() async throws {
        let (_, _, document) = try await Self.served()
        let parameters = document["paths"]?["/resource_providers"]?["get"]?["parameters"]?.arrayValue ?? []
        let names = parameters.filter { $0["in"] == .string("query") }.compactMap { $0["name"]?.stringValue }
        #expect(Set(names) == ["name", "uuid", "member_of", "resources", "in_tree", "required"])
        try await TestAPI.with(auth: .tokens(Self.tokens)) { api in
            try await api.app.test(.router) { client in
                try await client.execute(uri: "/resource_providers?bogus=1", method: .get, headers: .admin()) {
                    #expect($0.status == .badRequest)
                }
            }
        }
    }
}
