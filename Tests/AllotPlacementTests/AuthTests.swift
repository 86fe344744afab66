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
        /// The statuses of listing providers as the admin and as the reader under `policy`, and the 403's detail.
        func listAsAdminAndReader(_ policy: Policy) async throws -> (HTTPResponse.Status, HTTPResponse.Status, String?) {
            try await TestAPI.with(auth: .tokens(Self.tokens), policy: policy) { api in
                try await api.app.test(.router) { client in
                    var statuses: [HTTPResponse.Status] = []
                    var denial: String?
                    for token in ["admin-token-0123456789", "reader-token-0123456789"] {
                        try await client.execute(uri: "/resource_providers", method: .get,
                                                 headers: .admin(token: token)) {
                            statuses.append($0.status)
                            if $0.status == .forbidden { denial = $0.body.errorDetail }
                        }
                    }
                    return (statuses[0], statuses[1], denial)
                }
            }
        }
        let rule = "placement:resource_providers:list"
        // Upstream's defaults: the admin may list providers, a project reader may not.
        let defaults = try await listAsAdminAndReader(Policy())
        #expect(defaults.0 == .ok)
        #expect(defaults.1 == .forbidden)
        #expect(defaults.2?.contains("Policy does not allow \(rule) to be performed.") == true, "\(defaults.2 ?? "")")
        // Overridden (an operator's choice, not a sane one): the reader may, the admin no longer may, and the
        // refusal names the overridden rule; every other rule keeps its default.
        let overridden = try await listAsAdminAndReader(try Policy(overrides: [rule: "role:reader and not role:admin"]))
        #expect(overridden.0 == .forbidden)
        #expect(overridden.1 == .ok)
        #expect(overridden.2?.contains("Policy does not allow \(rule) to be performed.") == true,
                "\(overridden.2 ?? "")")
        try await TestAPI.with(auth: .tokens(Self.tokens), policy: try Policy(overrides: [rule: "role:reader"])) { api in
            try await api.app.test(.router) { client in
                try await client.execute(uri: "/traits", method: .get, headers: .admin(token: "reader-token-0123456789")) {
                    #expect($0.status == .forbidden)
                }
                try await client.execute(uri: "/traits", method: .get, headers: .admin(token: "admin-token-0123456789")) {
                    #expect($0.status == .ok)
                }
            }
        }
    }

    /// Authorisation fails closed and comes before the body: without a caller every route but `GET /` is `401`,
    /// and a caller the policy refuses gets `403` even for a body too large or malformed to be read.
    @Test(arguments: [AuthMode.noauth, .tokens(AuthTests.tokens)])
    func authorisationIsUnconditionalAndPrecedesTheBody(mode: AuthMode) async throws {
        let rp = newUUID()
        let routes: [(HTTPRequest.Method, String)] = [
            (.get, "/resource_providers"), (.post, "/resource_providers"), (.get, "/resource_providers/\(rp)"),
            (.put, "/resource_providers/\(rp)/inventories"), (.get, "/traits"), (.put, "/traits/CUSTOM_X"),
            (.put, "/allocations/\(newUUID())"), (.post, "/allocations"), (.get, "/usages?project_id=p1"),
            (.get, "/allocation_candidates?resources=VCPU:1"), (.post, "/reshaper"), (.get, "/compute/v1/nodes"),
            (.post, "/compute/v1/instances"), (.get, "/compute/v1/ledger"), (.post, "/compute/v1/ledger/save"),
        ]
        let reader: HTTPFields = {
            if case .noauth = mode {
                var headers = HTTPFields.admin(token: "eve:p1")
                headers[HTTPField.Name("x-roles")!] = "reader"
                return headers
            }
            return .admin(token: "reader-token-0123456789")
        }()
        try await TestAPI.with(auth: mode, maxBodyBytes: 1024, compute: true) { api in
            try await api.app.test(.router) { client in
                for (method, path) in routes {
                    var anonymous = HTTPFields.admin()
                    anonymous[HTTPField.Name("x-auth-token")!] = nil
                    let body = method == .get ? nil : ByteBuffer(string: "{\"name\": \"x\"}")
                    try await client.execute(uri: path, method: method, headers: anonymous, body: body) {
                        #expect($0.status == .unauthorized, "\(method) \(path) without a token")
                    }
                    guard method != .get else { continue }
                    for refused in [String(repeating: "x", count: 4096), "{\"name\": "] {
                        try await client.execute(uri: path, method: method, headers: reader,
                                                 body: ByteBuffer(string: refused)) {
                            #expect($0.status == .forbidden, "\(method) \(path) as a reader: \($0.status)")
                        }
                    }
                }
                try await client.execute(uri: "/", method: .get) { #expect($0.status == .ok) }
                #expect(try await api.store.providers(matching: ProviderFilter()).isEmpty)
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
