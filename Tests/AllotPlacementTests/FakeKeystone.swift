import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import Synchronization

/// A small Identity v3 service for tests: password sign-in and token validation as Keystone answers them, with
/// switches for what a test needs (revoke a token, refuse the service's own token, fail).
final class FakeKeystone: Sendable {
    struct Token: Sendable {
        var user: String
        var project: String?
        var roles: [String]
        var system: Bool = false
        var expiresAt: Date
        var revoked = false
    }

    struct State: Sendable {
        var passwords: [String: String] = ["placement": "placement-secret"]
        var tokens: [String: Token] = [:]
        var signIns = 0
        var validations = 0
        var failing = false
    }

    let state = Mutex(State())
    static let servicePassword = "placement-secret"
    /// The fake's clock (a test's own, so that expiry does not depend on how fast the machine runs the test).
    let now: @Sendable () -> Date

    init(now: @escaping @Sendable () -> Date = { Date() }) {
        self.now = now
    }

    /// Adds a token and returns it.
    @discardableResult
    func issue(user: String, project: String? = "p1", roles: [String], system: Bool = false,
               expiresIn: TimeInterval = 3600, token: String = "tok-" + UUID().uuidString) -> String {
        state.withLock {
            $0.tokens[token] = Token(user: user, project: project, roles: roles, system: system,
                                     expiresAt: now().addingTimeInterval(expiresIn))
        }
        return token
    }

    func revoke(_ token: String) { state.withLock { $0.tokens[token]?.revoked = true } }
    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }
    var validations: Int { state.withLock { $0.validations } }
    var signIns: Int { state.withLock { $0.signIns } }

    /// Revokes every token the service signed in with (Keystone then answers 401 to its validations).
    func revokeServiceTokens() {
        state.withLock { state in
            for (key, token) in state.tokens where token.user == "placement" { state.tokens[key]?.revoked = true }
        }
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date).replacingOccurrences(of: "Z", with: "000Z")
    }

    func document(_ token: Token) -> [String: Any] {
        var body: [String: Any] = [
            "user": ["id": token.user + "-id", "name": token.user, "domain": ["id": "default", "name": "Default"]],
            "roles": token.roles.map { ["id": $0 + "-id", "name": $0] },
            "expires_at": Self.timestamp(token.expiresAt), "methods": ["password"],
        ]
        if token.system { body["system"] = ["all": true] }
        if let project = token.project {
            body["project"] = ["id": project, "name": project, "domain": ["id": "default", "name": "Default"]]
        }
        return ["token": body]
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/v3/auth/tokens") { request, context -> Response in
            let body = try await request.body.collect(upTo: 1 << 16)
            guard let json = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
                let auth = json["auth"] as? [String: Any], let identity = auth["identity"] as? [String: Any],
                let password = identity["password"] as? [String: Any], let user = password["user"] as? [String: Any],
                let name = user["name"] as? String, let secret = user["password"] as? String
            else { return Response(status: .badRequest) }
            let answer: (String, [String: Any])? = self.state.withLock { state in
                guard !state.failing, state.passwords[name] == secret else { return nil }
                state.signIns += 1
                let token = "svc-" + UUID().uuidString
                let record = Token(user: name, project: "service", roles: ["service", "admin"],
                                   expiresAt: self.now().addingTimeInterval(3600))
                state.tokens[token] = record
                return (token, self.document(record))
            }
            guard let (token, document) = answer else { return Response(status: .unauthorized) }
            var headers = HTTPFields()
            headers[HTTPField.Name("x-subject-token")!] = token
            headers[.contentType] = "application/json"
            let data = try JSONSerialization.data(withJSONObject: document)
            return Response(status: .created, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("/v3/auth/tokens") { request, context -> Response in
            let allowExpired = request.uri.query?.contains("allow_expired=1") ?? false
            let caller = request.headers[HTTPField.Name("x-auth-token")!] ?? ""
            let subject = request.headers[HTTPField.Name("x-subject-token")!] ?? ""
            let result: (HTTPResponse.Status, [String: Any]?) = self.state.withLock { state in
                if state.failing { return (.internalServerError, nil) }
                state.validations += 1
                guard let service = state.tokens[caller], !service.revoked, service.expiresAt > self.now() else {
                    return (.unauthorized, nil)
                }
                guard let token = state.tokens[subject], !token.revoked,
                    allowExpired || token.expiresAt > self.now()
                else { return (.notFound, nil) }
                return (.ok, self.document(token))
            }
            guard let document = result.1 else { return Response(status: result.0) }
            let data = try JSONSerialization.data(withJSONObject: document)
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        return router
    }

    /// Runs `body` with the fake listening on a loopback port; `body` gets its Identity v3 URL.
    func serve<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let app = Application(router: router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(client.port!)/v3")
        }
    }
}
