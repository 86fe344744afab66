import AllotCore
import AllotPlacement
import AllotStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Bad input gets a clear 4xx JSON error, never a 500, and changes nothing.
@Suite struct BadInputTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var method: HTTPRequest.Method
        /// `{rp}` is replaced by the provider's uuid.
        var path: String
        var version: String = "1.39"
        var body: String?
        var contentType: String? = "application/json"
        var status: HTTPResponse.Status
        var detail: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "malformed JSON", method: .post, path: "/resource_providers", body: "{\"name\": ", status: .badRequest,
             detail: "Malformed JSON"),
        Case(name: "name of the wrong type", method: .post, path: "/resource_providers", body: "{\"name\": 5}",
             status: .badRequest, detail: "5 is not of type 'string'"),
        Case(name: "unknown field", method: .post, path: "/resource_providers", body: "{\"name\": \"x\", \"cow\": 1}",
             status: .badRequest, detail: "Additional properties are not allowed ('cow' was unexpected)"),
        Case(name: "invalid provider uuid", method: .post, path: "/resource_providers",
             body: "{\"name\": \"x\", \"uuid\": \"not-a-uuid\"}", status: .badRequest, detail: "is not a 'uuid'"),
        Case(name: "name too long", method: .post, path: "/resource_providers",
             body: "{\"name\": \"\(String(repeating: "n", count: 201))\"}", status: .badRequest, detail: "is too long"),
        Case(name: "total above the integer range", method: .put, path: "/resource_providers/{rp}/inventories",
             body: "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": 2147483648}}}",
             status: .badRequest, detail: "is greater than the maximum of 2147483647"),
        Case(name: "total far beyond 64 bits", method: .put, path: "/resource_providers/{rp}/inventories",
             body: "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": 1e40}}}",
             status: .badRequest, detail: "JSON does not validate"),
        Case(name: "negative reserved", method: .put, path: "/resource_providers/{rp}/inventories",
             body: "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": 4, \"reserved\": -1}}}",
             status: .badRequest, detail: "-1 is less than the minimum of 0"),
        Case(name: "reserved above total", method: .put, path: "/resource_providers/{rp}/inventories",
             // (the seeded provider's generation: upstream checks the generation before the inventories)
             body: "{\"resource_provider_generation\": 1, \"inventories\": {\"VCPU\": {\"total\": 4, \"reserved\": 5}}}",
             status: .badRequest, detail: "The reserved value is greater than total"),
        Case(name: "generation as a string", method: .put, path: "/resource_providers/{rp}/inventories",
             body: "{\"resource_provider_generation\": \"0\", \"inventories\": {}}",
             status: .badRequest, detail: "'0' is not of type 'integer'"),
        Case(name: "stale generation", method: .put, path: "/resource_providers/{rp}/inventories",
             body: "{\"resource_provider_generation\": 7, \"inventories\": {\"VCPU\": {\"total\": 4}}}",
             status: .conflict, detail: "resource provider generation conflict"),
        Case(name: "allocation amount zero", method: .put, path: "/allocations/\(newUUID())",
             body: "{\"allocations\": {\"{rp}\": {\"resources\": {\"VCPU\": 0}}}, \"project_id\": \"p\", "
                + "\"user_id\": \"u\", \"consumer_generation\": null, \"consumer_type\": \"INSTANCE\"}",
             status: .badRequest, detail: "0 is less than the minimum of 1"),
        Case(name: "allocation over capacity", method: .put, path: "/allocations/\(newUUID())",
             body: "{\"allocations\": {\"{rp}\": {\"resources\": {\"VCPU\": 9}}}, \"project_id\": \"p\", "
                + "\"user_id\": \"u\", \"consumer_generation\": null, \"consumer_type\": \"INSTANCE\"}",
             status: .conflict, detail: "would exceed the capacity"),
        Case(name: "invalid consumer uuid", method: .put, path: "/allocations/not-a-uuid",
             body: "{\"allocations\": {}, \"project_id\": \"p\", \"user_id\": \"u\", \"consumer_generation\": null, "
                + "\"consumer_type\": \"INSTANCE\"}",
             status: .badRequest, detail: "Malformed consumer_uuid: not-a-uuid"),
        Case(name: "unicode trait name", method: .put, path: "/traits/CUSTOM_%E2%98%83", body: nil, contentType: nil,
             status: .badRequest, detail: "The trait is invalid"),
        Case(name: "unknown microversion", method: .get, path: "/resource_providers", version: "1.99",
             status: .notAcceptable, detail: "Unacceptable version header: 1.99"),
        Case(name: "malformed microversion", method: .get, path: "/resource_providers", version: "one.two",
             status: .badRequest, detail: "invalid version string: one.two"),
        Case(name: "wrong content type", method: .post, path: "/resource_providers", body: "{\"name\": \"x\"}",
             contentType: "text/plain", status: .unsupportedMediaType, detail: "not supported"),
        Case(name: "bad uuid in a query", method: .get, path: "/resource_providers?uuid=123", status: .badRequest,
             detail: "'123' is not a 'uuid'"),
        Case(name: "bad resources query", method: .get, path: "/resource_providers?resources=VCPU:-1",
             status: .badRequest, detail: "requires amount >= 1"),
        Case(name: "a second limit that is not a number", method: .get,
             path: "/allocation_candidates?resources=VCPU:1&limit=x&limit=1", status: .badRequest,
             detail: "'limit' must be a positive integer, got 'x'"),
        Case(name: "a NUL character in a name", method: .post, path: "/resource_providers",
             body: "{\"name\": \"seed\\u0000b\"}", status: .badRequest, detail: "NUL character"),
        Case(name: "a NUL character in a query", method: .get, path: "/resource_providers?name=seed%00b",
             status: .badRequest, detail: "NUL character"),
        Case(name: "a limit of zero", method: .get, path: "/allocation_candidates?resources=VCPU:1&limit=0",
             status: .badRequest, detail: "does not match"),
    ]

    /// A provider with 8 VCPU (generation 1) to aim bad requests at.
    private func seed(_ client: some TestClientProtocol) async throws -> String {
        let rp = newUUID()
        try await client.execute(uri: "/resource_providers", method: .post, headers: .admin(),
                                 body: ByteBuffer(string: "{\"name\": \"seed\", \"uuid\": \"\(rp)\"}")) {
            #expect($0.status == .ok)
        }
        try await client.execute(uri: "/resource_providers/\(rp)/inventories", method: .put, headers: .admin(),
                                 body: ByteBuffer(string: "{\"resource_provider_generation\": 0, "
                                    + "\"inventories\": {\"VCPU\": {\"total\": 8}}}")) {
            #expect($0.status == .ok)
        }
        return rp
    }

    @Test(arguments: cases)
    func refusedAndNothingChanged(_ bad: Case) async throws {
        try await TestAPI.with() { api in
            try await api.app.test(.router) { client in
                let rp = try await seed(client)
                let before = try await api.store.inventories(providerUUID: rp)
                let providersBefore = try await api.store.providers(matching: ProviderFilter())
                var headers = HTTPFields.admin(bad.version, json: false)
                if let type = bad.contentType { headers[.contentType] = type }
                let path = bad.path.replacingOccurrences(of: "{rp}", with: rp)
                let body = bad.body.map { ByteBuffer(string: $0.replacingOccurrences(of: "{rp}", with: rp)) }
                try await client.execute(uri: path, method: bad.method, headers: headers, body: body) { response in
                    #expect(response.status == bad.status)
                    #expect(response.headers[.contentType] == "application/json")
                    #expect(response.body.errorDetail?.contains(bad.detail) == true, "\(response.body.errorDetail ?? "")")
                }
                let after = try await api.store.inventories(providerUUID: rp)
                #expect(after.provider.generation == before.provider.generation)
                #expect(after.inventories == before.inventories)
                #expect(try await api.store.providers(matching: ProviderFilter()).map(\.uuid) == providersBefore.map(\.uuid))
                #expect(try await api.store.usages(providerUUID: rp).1 == ["VCPU": 0])
            }
        }
    }

    @Test func oversizedBodyIsRefusedWith413() async throws {
        try await TestAPI.with(maxBodyBytes: 1024) { api in
            try await api.app.test(.router) { client in
                let name = String(repeating: "x", count: 4096)
                try await client.execute(uri: "/resource_providers", method: .post, headers: .admin(),
                                         body: ByteBuffer(string: "{\"name\": \"\(name)\"}")) { response in
                    #expect(response.status == .contentTooLarge)
                    #expect(response.body.errorDetail?.contains("larger than 1024 bytes") == true)
                }
                #expect(try await api.store.providers(matching: ProviderFilter()).isEmpty)
            }
        }
    }

    @Test func unknownRouteAndMethodAreJSONErrors() async throws {
        try await TestAPI.with() { api in
            try await api.app.test(.router) { client in
                try await client.execute(uri: "/cows", method: .get, headers: .admin()) { response in
                    #expect(response.status == .notFound)
                    #expect(response.body.errorDetail?.contains("could not be found") == true)
                }
                try await client.execute(uri: "/resource_providers", method: .delete, headers: .admin()) { response in
                    #expect(response.status == .methodNotAllowed)
                    #expect(response.headers[.allow] == "GET, POST")
                }
            }
        }
    }
}
