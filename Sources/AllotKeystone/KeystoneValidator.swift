import AllotCore
public import AsyncHTTPClient
public import Foundation
public import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

/// Who called, after keystonemiddleware's `auth_token` checks: the user token's identity and, when an
/// `X-Service-Token` came with it, the service token's roles.
public struct KeystoneCaller: Sendable, Equatable {
    public var user: KeystoneToken
    public var serviceRoles: [String]
}

/// Validates Keystone tokens the way keystonemiddleware's `auth_token` does, for `allot serve --auth keystone`.
///
/// Each token is checked with `GET /v3/auth/tokens` (`X-Subject-Token`), authorised by the service's own token,
/// which is obtained with its password and renewed before it expires or when Keystone refuses it. Validated
/// tokens are cached (bounded, by digest) for `cacheSeconds` and never past their expiry; refusals for a few
/// seconds at most. When Keystone cannot be reached, tokens already cached keep working and others get
/// ``KeystoneError/unavailable(_:)``. Tokens and the password never reach a log: a token appears as the first
/// 8 hex digits of its SHA-256 at most.
public final class KeystoneValidator: Sendable {
    public let configuration: KeystoneConfiguration
    let http: HTTPClient
    let logger: Logger
    let now: @Sendable () -> Date

    private struct ServiceToken: Sendable {
        var token: String
        var expiresAt: Date
    }

    private struct State: Sendable {
        var cache: TokenCache
        var serviceToken: ServiceToken?
        /// The sign-in in flight, shared by every request that needs it meanwhile.
        var signingIn: Task<ServiceToken, any Error>?
    }

    private let state: Mutex<State>

    /// - Parameters:
    ///   - http: the client for Keystone's API (a process-wide one; not shut down here).
    ///   - now: the clock (tests move it).
    public init(
        configuration: KeystoneConfiguration, http: HTTPClient, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.configuration = configuration
        self.http = http
        self.logger = logger
        self.now = now
        state = Mutex(State(cache: TokenCache(capacity: configuration.cacheCapacity)))
    }

    /// Checks a request's tokens as `auth_token` does.
    ///
    /// An `X-Service-Token` is validated first: when it is invalid the request is refused; when it is valid and
    /// carries one of `serviceTokenRoles`, the user token is accepted even past its expiry (as Keystone's
    /// `allow_expired`). Then the user token is validated.
    /// - Returns: the caller.
    /// - Throws: ``KeystoneError/invalidToken`` (no user token, or a token Keystone refuses or that has expired),
    ///   ``KeystoneError/unavailable(_:)`` when Keystone could not be asked.
    public func authenticate(userToken: String?, serviceToken: String?) async throws(KeystoneError) -> KeystoneCaller {
        var serviceRoles: [String] = []
        var allowExpired = false
        if let serviceToken = serviceToken?.trimmingCharacters(in: .whitespaces), !serviceToken.isEmpty {
            let service = try await validate(serviceToken, allowExpired: false)
            serviceRoles = service.roles
            allowExpired = !configuration.serviceTokenRoles.isDisjoint(with: service.roles)
        }
        guard let userToken = userToken?.trimmingCharacters(in: .whitespaces), !userToken.isEmpty else {
            throw .invalidToken
        }
        let user = try await validate(userToken, allowExpired: allowExpired)
        return KeystoneCaller(user: user, serviceRoles: serviceRoles)
    }

    /// Validates one token, from the cache when it is there.
    /// - Throws: ``KeystoneError/invalidToken`` or ``KeystoneError/unavailable(_:)``.
    public func validate(_ token: String, allowExpired: Bool) async throws(KeystoneError) -> KeystoneToken {
        let digest = TokenDigest(token)
        let started = now()
        let cached = state.withLock { $0.cache.lookup(digest, now: started) }
        switch cached {
        case .valid(let known):
            return try checkExpiry(known, allowExpired: allowExpired, at: started)
        case .invalid where !allowExpired:
            throw .invalidToken
        case .invalid, nil:
            break
        }
        let answer: KeystoneToken
        do {
            answer = try await fetch(token, allowExpired: allowExpired)
        } catch .invalidToken {
            let until = now().addingTimeInterval(Double(configuration.failureCacheSeconds))
            state.withLock { $0.cache.store(.invalid, for: digest, until: until, now: now()) }
            logger.info("Keystone refused a token", metadata: ["allot.token.digest": .string(digest.short)])
            throw .invalidToken
        }
        let stored = now()
        let until = stored.addingTimeInterval(Double(configuration.cacheSeconds))
        state.withLock { $0.cache.store(.valid(answer), for: digest, until: until, now: stored) }
        return try checkExpiry(answer, allowExpired: allowExpired, at: stored)
    }

    /// Forgets every cached token (tests; an operator's reload).
    public func flushCache() {
        state.withLock { $0.cache = TokenCache(capacity: configuration.cacheCapacity) }
    }

    private func checkExpiry(_ token: KeystoneToken, allowExpired: Bool, at date: Date) throws(KeystoneError) -> KeystoneToken {
        if !allowExpired, token.expiresAt <= date { throw .invalidToken }
        return token
    }

    /// Asks Keystone about `token`, renewing the service's own token and asking once more when Keystone refuses it.
    private func fetch(_ token: String, allowExpired: Bool) async throws(KeystoneError) -> KeystoneToken {
        var renewed = false
        while true {
            let service = try await currentServiceToken(renew: renewed)
            var request = HTTPClientRequest(
                url: configuration.identityURL + "/auth/tokens" + (allowExpired ? "?allow_expired=1" : ""))
            request.method = .GET
            request.headers.add(name: "X-Auth-Token", value: service.token)
            request.headers.add(name: "X-Subject-Token", value: token)
            request.headers.add(name: "Accept", value: "application/json")
            let (status, body) = try await send(request, what: "token validation")
            switch status {
            case 200, 203:
                return try KeystoneToken.decode(body)
            case 404:
                throw .invalidToken
            case 401 where !renewed:
                logger.warning("Keystone refused the service's own token; signing in again")
                renewed = true
            case 401:
                throw .unavailable("Keystone refused the service's own credentials")
            default:
                throw .unavailable("Keystone answered \(status) to a token validation")
            }
        }
    }

    /// The service's own token: the current one while it has more than a minute left, else a new sign-in
    /// (one at a time: concurrent requests wait for the same one).
    private func currentServiceToken(renew: Bool) async throws(KeystoneError) -> ServiceToken {
        enum Next { case ready(ServiceToken), wait(Task<ServiceToken, any Error>) }
        let moment = now()
        let next: Next = state.withLock { state in
            if renew { state.serviceToken = nil }
            if let current = state.serviceToken, current.expiresAt.timeIntervalSince(moment) > 60 {
                return .ready(current)
            }
            if let pending = state.signingIn { return .wait(pending) }
            let pending = Task { try await self.signIn() }
            state.signingIn = pending
            return .wait(pending)
        }
        let task: Task<ServiceToken, any Error>
        switch next {
        case .ready(let current): return current
        case .wait(let pending): task = pending
        }
        do {
            let token = try await task.value
            state.withLock { state in
                if state.signingIn == task {
                    state.signingIn = nil
                    state.serviceToken = token
                }
            }
            return token
        } catch {
            state.withLock { state in
                if state.signingIn == task { state.signingIn = nil }
            }
            throw (error as? KeystoneError) ?? .unavailable("the service could not sign in to Keystone")
        }
    }

    /// `POST /v3/auth/tokens` with the service user's password, scoped to its project.
    private func signIn() async throws(KeystoneError) -> ServiceToken {
        let body = PasswordSignIn(
            user: configuration.username, password: configuration.password, userDomain: configuration.userDomainName,
            project: configuration.projectName, projectDomain: configuration.projectDomainName)
        guard let data = try? JSONCoding.encode(body) else {
            throw .misconfigured("the sign-in request could not be encoded")
        }
        var request = HTTPClientRequest(url: configuration.identityURL + "/auth/tokens")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: data))
        let (status, responseBody, headers) = try await sendKeepingHeaders(request, what: "the service's sign-in")
        guard status == 201 || status == 200 else {
            logger.error("Keystone refused the service's sign-in", metadata: [
                "allot.keystone.status": .stringConvertible(status),
                "allot.keystone.user": .string(configuration.username),
            ])
            throw .unavailable("Keystone refused the service's own credentials (HTTP \(status))")
        }
        guard let token = headers.first(name: "X-Subject-Token"), !token.isEmpty else {
            throw .unavailable("Keystone's sign-in answer carried no X-Subject-Token")
        }
        let info = try KeystoneToken.decode(responseBody)
        logger.info("Signed in to Keystone", metadata: [
            "allot.keystone.user": .string(configuration.username),
            "allot.token.digest": .string(TokenDigest(token).short),
        ])
        return ServiceToken(token: token, expiresAt: info.expiresAt)
    }

    private func send(_ request: HTTPClientRequest, what: String) async throws(KeystoneError) -> (Int, Data) {
        let (status, body, _) = try await sendKeepingHeaders(request, what: what)
        return (status, body)
    }

    private func sendKeepingHeaders(
        _ request: HTTPClientRequest, what: String
    ) async throws(KeystoneError) -> (Int, Data, HTTPHeaders) {
        let timeout = TimeAmount.nanoseconds(configuration.timeout.nanoseconds)
        do {
            let response = try await http.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 8 << 20)
            return (Int(response.status.code), Data(buffer: body), response.headers)
        } catch {
            logger.error("Keystone could not be reached", metadata: [
                "allot.keystone.call": .string(what), "allot.error": .string(String(describing: type(of: error))),
            ])
            throw .unavailable("\(what) could not reach Keystone")
        }
    }
}

/// The body of a password sign-in scoped to a project (`POST /v3/auth/tokens`).
struct PasswordSignIn: Encodable {
    struct Name: Encodable { var name: String }
    struct User: Encodable {
        var name: String
        var password: String
        var domain: Name
    }
    struct Password: Encodable { var user: User }
    struct Identity: Encodable {
        var methods = ["password"]
        var password: Password
    }
    struct Project: Encodable {
        var name: String
        var domain: Name
    }
    struct Scope: Encodable { var project: Project }
    struct Auth: Encodable {
        var identity: Identity
        var scope: Scope
    }

    var auth: Auth

    init(user: String, password: String, userDomain: String, project: String, projectDomain: String) {
        auth = Auth(
            identity: Identity(password: Password(user: User(name: user, password: password, domain: Name(name: userDomain)))),
            scope: Scope(project: Project(name: project, domain: Name(name: projectDomain))))
    }
}
