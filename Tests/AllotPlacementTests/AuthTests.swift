import AllotCore
import AllotPlacement
import AllotStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Every call but `GET /` needs a known token, and the caller's role must allow the route.
@Suite struct AuthTests {
    static let tokens: [TokenRecord] = [
        TokenRecord(token: "admin-token-0123456789", user: "admin", project: "admin", roles: ["admin"]),
        TokenRecord(token: "reader-token-0123456789", user: "eve", project: "p1", roles: ["reader"]),
        TokenRecord(token: "member-token-0123456789", user: "bob", project: "p1", roles: ["member"]),
    ]

    @Test func rootIsPublicEverythingElseNeedsAToken() async throws {
        try await TestAPI.with(auth: .tokens(Self.tokens)) { api in
            try await api.app.test(.router) { client in
                try await client.execute(uri: "/", method: .get) { #expect($0.status == .ok) }
                try await client.execute(uri: "/resource_providers", method: .get) { #expect($0.status == .unauthorized) }
                try await client.execute(uri: "/resource_providers", method: .get,
                                         headers: [HTTPField.Name("x-auth-token")!: "wrong-token-0123456789"]) {
                    #expect($0.status == .unauthorized)
                    #expect(String(buffer: $0.body).contains("wrong-token") == false)
                }
            }
        }
    }

    /// Upstream 16.0.0's secure-RBAC defaults: admins and services manage everything, a project reader reads
    /// only its own project's usage (a member holds `reader` only when Keystone implies it, as these tokens don't).
    @Test func adminsAndServicesManageReadersSeeTheirOwnUsageOnly() async throws {
        try await TestAPI.with(auth: .tokens(Self.tokens)) { api in
            try await api.app.test(.router) { client in
                let create = ByteBuffer(string: "{\"name\": \"rp1\"}")
                try await client.execute(uri: "/resource_providers", method: .post,
                                         headers: .admin(token: "reader-token-0123456789"), body: create) {
                    #expect($0.status == .forbidden)
                }
                #expect(try await api.store.providers(matching: .init()).isEmpty)
                try await client.execute(uri: "/resource_providers", method: .post,
                                         headers: .admin(token: "admin-token-0123456789"), body: create) {
                    #expect($0.status == .ok)
                }
                for token in ["reader-token-0123456789", "member-token-0123456789"] {
                    try await client.execute(uri: "/resource_providers", method: .get, headers: .admin(token: token)) {
                        #expect($0.status == .forbidden)
                    }
                }
                try await client.execute(uri: "/usages?project_id=p1", method: .get,
                                         headers: .admin(token: "reader-token-0123456789")) {
                    #expect($0.status == .ok)
                }
                for (token, project) in [("reader-token-0123456789", "p2"), ("member-token-0123456789", "p1")] {
                    try await client.execute(uri: "/usages?project_id=\(project)", method: .get,
                                             headers: .admin(token: token)) {
                        #expect($0.status == .forbidden)
                    }
                }
            }
        }
    }

    @Test func policyFileOverridesARule() async throws {
        // Readers may list providers, admins no longer may (an operator's choice, not a sane one).
        let policy = try Policy(overrides: ["placement:resource_providers:list": "role:reader and not role:admin"])
        try await TestAPI.with(auth: .tokens(Self.tokens), policy: policy) { api in
            try await api.app.test(.router) { client in
                try await client.execute(uri: "/resource_providers", method: .get,
                                         headers: .admin(token: "admin-token-0123456789")) {
                    #expect($0.status == .forbidden)
                }
                try await client.execute(uri: "/resource_providers", method: .get,
                                         headers: .admin(token: "reader-token-0123456789")) {
                    #expect($0.status == .ok)
                }
            }
        }
    }

    @Test func noauthFollowsUpstreamNoauth2() async throws {
        try await TestAPI.with(auth: .noauth, policy: Policy(legacy: true)) { api in
            try await api.app.test(.router) { client in
                try await client.execute(uri: "/resource_providers", method: .get, headers: .admin(token: "admin:admin")) {
                    #expect($0.status == .ok)
                }
                try await client.execute(uri: "/resource_providers", method: .get, headers: .admin(token: "user:p1")) {
                    #expect($0.status == .forbidden)
                }
                var headers = HTTPFields.admin(token: "user:p1")
                headers[HTTPField.Name("x-roles")!] = "admin"
                try await client.execute(uri: "/resource_providers", method: .get, headers: headers) {
                    #expect($0.status == .ok)
                }
            }
        }
    }

    @Test func tokenFileIsCreatedOwnerOnlyAndReadBack() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("allot-token-\(newUUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = TokenFile.defaultPath(forDatabase: dir.appendingPathComponent("allot.sqlite").path)
        #expect(path.hasSuffix("allot.sqlite.tokens.json"))
        let token = try await TokenFile.createAdmin(path: path)
        for file in [path, TokenFile.firstStartPath(for: path)] {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        }
        let loaded = try await TokenFile.load(path: path)
        #expect(loaded.records == [TokenRecord(token: token, user: "admin", project: "admin", roles: ["admin"], name: "admin")])
        #expect(loaded.rewrittenPlaintext == 0)
        #expect(token.count == 64)
        #expect(try await TokenFile.firstStartToken(tokensFile: path) == token)
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains(token) == false)
    }
}
