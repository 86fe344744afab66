import AllotCore
import AllotPlacement
import AllotStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Regression tests for divergences from upstream Placement 16.0.0 that `scripts/differential.py` found (each
/// checks upstream's answer, read from its source and confirmed side by side).
@Suite struct UpstreamParityTests {
    typealias Client = any TestClientProtocol

    /// Sends a call at `version` and hands back status, headers and JSON body.
    @discardableResult
    static func call(
        _ client: Client, _ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, version: String = "1.39"
    ) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, json: [String: Any]) {
        try await client.execute(
            uri: path, method: method, headers: .admin(version, json: body != nil), body: body.map { ByteBuffer(string: $0) }
        ) { response in
            (response.status, response.headers, response.body.jsonObject)
        }
    }

    static func code(_ json: [String: Any]) -> String? {
        ((json["errors"] as? [[String: Any]])?.first)?["code"] as? String
    }

    /// A root provider with `total` VCPU.
    static func provider(_ client: Client, total: Int = 2) async throws -> String {
        let rp = newUUID()
        try await call(client, .post, "/resource_providers", "{\"name\": \"rp-\(rp)\", \"uuid\": \"\(rp)\"}")
        #expect(try await call(client, .put, "/resource_providers/\(rp)/inventories",
            "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": \(total)}}}").status == .ok)
        return rp
    }

    static func allocation(_ rp: String, _ amount: String, generation: String = "null", type: String = "INSTANCE") -> String {
        "{\"allocations\": {\"\(rp)\": {\"resources\": {\"VCPU\": \(amount)}}}, \"project_id\": \"p\", \"user_id\": \"u\", "
            + "\"consumer_generation\": \(generation), \"consumer_type\": \"\(type)\"}"
    }

    @Test("a write over capacity is allowed when the provider's usage ends no higher (_check_capacity_exceeded)")
    func overCapacityWriteThatDoesNotMakeThingsWorse() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                let rp = try await Self.provider(client)
                let (c1, c2, c3) = (newUUID(), newUUID(), newUUID())
                #expect(try await Self.call(client, .put, "/allocations/\(c1)", Self.allocation(rp, "1")).status == .noContent)
                #expect(try await Self.call(client, .put, "/allocations/\(c2)", Self.allocation(rp, "1")).status == .noContent)
                #expect(try await Self.call(client, .put, "/resource_providers/\(rp)/inventories",
                    "{\"resource_provider_generation\": 3, \"inventories\": {\"VCPU\": {\"total\": 1}}}").status == .ok)
                // Same amount again: usage stays 2, as before.
                #expect(try await Self.call(client, .put, "/allocations/\(c1)",
                                            Self.allocation(rp, "1", generation: "1")).status == .noContent)
                // More than before is refused.
                #expect(try await Self.call(client, .put, "/allocations/\(c3)", Self.allocation(rp, "1")).status == .conflict)
            }
        }
    }

    @Test("a write with no allocations leaves a new consumer behind at generation 0")
    func emptyWritesLeaveTheConsumer() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                let consumer = newUUID()
                let post = "{\"\(consumer)\": {\"allocations\": {}, \"project_id\": \"p\", \"user_id\": \"u\", "
                    + "\"consumer_generation\": null, \"consumer_type\": \"INSTANCE\"}}"
                #expect(try await Self.call(client, .post, "/allocations", post).status == .noContent)
                let again = try await Self.call(client, .post, "/allocations", post)
                #expect(again.status == .conflict)
                #expect(Self.code(again.json) == "placement.concurrent_update")
                // It holds nothing, so GET shows no owner and DELETE finds nothing to delete.
                let shown = try await Self.call(client, .get, "/allocations/\(consumer)")
                #expect(shown.json["consumer_generation"] == nil)
                #expect(try await Self.call(client, .delete, "/allocations/\(consumer)").status == .notFound)
                // Generation 0 is what a client must send now.
                let put = "{\"allocations\": {}, \"project_id\": \"p\", \"user_id\": \"u\", \"consumer_generation\": 0, "
                    + "\"consumer_type\": \"INSTANCE\"}"
                #expect(try await Self.call(client, .put, "/allocations/\(consumer)", put).status == .noContent)

                let other = newUUID()
                let empty = "{\"allocations\": {}, \"project_id\": \"p\", \"user_id\": \"u\", \"consumer_generation\": null, "
                    + "\"consumer_type\": \"INSTANCE\"}"
                #expect(try await Self.call(client, .put, "/allocations/\(other)", empty, version: "1.38").status == .noContent)
                #expect(try await Self.call(client, .put, "/allocations/\(other)", empty, version: "1.38").status == .conflict)
            }
        }
    }

    @Test("a write refused for an unknown provider still creates the consumer, whose type a 1.16 write keeps")
    func unknownProviderLeavesTheConsumer() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                let rp = try await Self.provider(client)
                let consumer = newUUID()
                let refused = try await Self.call(
                    client, .put, "/allocations/\(consumer)", Self.allocation(newUUID(), "1", type: "MIGRATION"))
                #expect(refused.status == .badRequest)
                #expect(try await Self.call(client, .put, "/allocations/\(consumer)", Self.allocation(rp, "1")).status
                    == .conflict)
                let old = "{\"allocations\": {\"\(rp)\": {\"resources\": {\"VCPU\": 1}}}, \"project_id\": \"p\", "
                    + "\"user_id\": \"u\"}"
                #expect(try await Self.call(client, .put, "/allocations/\(consumer)", old, version: "1.16").status
                    == .noContent)
                let shown = try await Self.call(client, .get, "/allocations/\(consumer)")
                #expect(shown.json["consumer_type"] as? String == "MIGRATION")
                #expect(shown.json["consumer_generation"] as? Int == 1)
            }
        }
    }

    @Test("amounts beyond 2147483647 are a 409 from the unit rules, not a 400", arguments: ["2147483648", "1e29"])
    func hugeAmounts(_ amount: String) async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                let rp = try await Self.provider(client)
                #expect(try await Self.call(client, .put, "/allocations/\(newUUID())", Self.allocation(rp, amount)).status
                    == .conflict)
            }
        }
    }

    @Test("names in /allocation_candidates are resolved group by group; an empty group ends the search first")
    func lazyCandidateNames() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                let empty = try await Self.call(client, .get, "/allocation_candidates?resources=VCPU:1&resources1=CUSTOM_NOPE:1")
                #expect(empty.status == .ok)
                #expect((empty.json["allocation_requests"] as? [Any])?.isEmpty == true)
                #expect(try await Self.call(client, .get,
                    "/allocation_candidates?resources1=CUSTOM_NOPE:1&resources=VCPU:1").status == .badRequest)
                #expect(try await Self.call(client, .get,
                    "/allocation_candidates?root_required=HW_CPU_X86_AVX&resources=CUSTOM_NOPE:1").status == .ok)
                #expect(try await Self.call(client, .get,
                    "/allocation_candidates?resources1=VCPU:1&required1=CUSTOM_NOPE").status == .badRequest)
                _ = try await Self.provider(client)
                #expect(try await Self.call(client, .get,
                    "/allocation_candidates?resources=VCPU:1&member_of=\(newUUID())&required=CUSTOM_NOPE").status == .ok)
            }
        }
    }

    @Test("small divergences: resource class duplicates, usages of type all, empty path segments")
    func smallDivergences() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                #expect(try await Self.call(client, .post, "/resource_classes", "{\"name\": \"CUSTOM_X\"}").status == .created)
                let duplicate = try await Self.call(client, .post, "/resource_classes", "{\"name\": \"CUSTOM_X\"}")
                #expect(duplicate.status == .conflict)
                #expect(Self.code(duplicate.json) == "placement.undefined_code")
                let usages = try await Self.call(client, .get, "/usages?project_id=p&consumer_type=all")
                #expect((usages.json["usages"] as? [String: Any])?.isEmpty == true)
                let rp = try await Self.provider(client)
                #expect(try await Self.call(client, .put, "/resource_providers/\(rp)/inventories/",
                                            "{\"inventories\": {}}").status == .notFound)
                #expect(try await Self.call(client, .get, "/allocations/").status == .notFound)
            }
        }
    }

    @Test("PUT /resource_providers/{uuid} sends Last-Modified only for a provider updated before")
    func lastModifiedOfProviderUpdates() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                let (root, child) = (newUUID(), newUUID())
                try await Self.call(client, .post, "/resource_providers", "{\"name\": \"root\", \"uuid\": \"\(root)\"}")
                try await Self.call(client, .post, "/resource_providers",
                                    "{\"name\": \"child\", \"uuid\": \"\(child)\", \"parent_provider_uuid\": \"\(root)\"}")
                let first = try await Self.call(client, .put, "/resource_providers/\(child)", "{\"name\": \"child\"}")
                #expect(first.status == .ok)
                #expect(first.headers[.lastModified] == nil)
                #expect(first.headers[.cacheControl] == "no-cache")
                // A root's creation stamps it (upstream sets its root in a second UPDATE).
                #expect(try await Self.call(client, .put, "/resource_providers/\(root)", "{\"name\": \"root\"}")
                    .headers[.lastModified] != nil)
            }
        }
    }

    @Test("Vary is left out where upstream's error escapes its handler")
    func varyOnErrors() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                let unknown = newUUID()
                let vary = HTTPField.Name("vary")!
                #expect(try await Self.call(client, .get, "/resource_providers/\(unknown)").headers[vary] == nil)
                #expect(try await Self.call(client, .get, "/nope").headers[vary] == nil)
                #expect(try await Self.call(client, .get, "/resource_classes/CUSTOM_NOPE").headers[vary] == nil)
                #expect(try await Self.call(client, .get, "/resource_providers/\(unknown)/inventories").headers[vary]
                    == "openstack-api-version")
                #expect(try await Self.call(client, .get, "/traits/CUSTOM_NOPE").headers[vary] == "openstack-api-version")
                #expect(try await Self.call(client, .patch, "/resource_providers").headers[vary] == "openstack-api-version")
                // The content-type check runs before the handler.
                let missingType = try await client.execute(
                    uri: "/resource_providers", method: .post, headers: .admin(json: false),
                    body: ByteBuffer(string: "{\"name\": \"x\"}")) { $0 }
                #expect(missingType.status == .badRequest)
                #expect(missingType.headers[vary] == nil)
            }
        }
    }
}
