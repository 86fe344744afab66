import AllotCore
public import AllotKeystone
public import AllotPolicy
import HTTPTypes

/// Who made a request, as oslo.context's `RequestContext` holds it for oslo.policy: the same fields whichever way
/// the caller authenticated (a Keystone token, one of Allot's own tokens, or upstream noauth2's headers).
public typealias Identity = Credentials

extension Identity {
    /// The identity behind a validated Keystone token.
    init(keystone caller: KeystoneCaller) {
        let user = caller.user
        self.init(
            userID: user.userID, projectID: user.projectID, domainID: user.domainID, userDomainID: user.userDomainID,
            projectDomainID: user.projectDomainID, roles: user.roles, systemScope: user.systemScope,
            serviceRoles: caller.serviceRoles, isAdminProject: user.isAdminProject)
    }

    /// Upstream's `noauth2` (placement/auth.py `NoAuthMiddleware` and oslo.context's `from_environ`): the token
    /// `user[:project]` names the caller; `X-Roles` sets the roles (without it, user `admin` is admin and others
    /// have none); `OpenStack-System-Scope` makes the caller system-scoped and drops the token's project;
    /// `X-Project-Id`, `X-Domain-Id`, `X-User-Domain-Id`, `X-Project-Domain-Id`, `X-Service-Roles` and
    /// `X-Is-Admin-Project` are taken as sent, as oslo.context does behind noauth2.
    init(noauthToken token: String, headers: HTTPFields) {
        let parts = token.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let user = parts[0]
        let tokenProject = parts.count > 1 && !parts[1].isEmpty ? parts[1] : user
        let roles: [String]
        if let header = headers[.roles] {
            roles = Self.list(header)
        } else {
            roles = user == "admin" ? ["admin"] : []
        }
        let systemScope = headers[.systemScope].flatMap { $0.isEmpty ? nil : $0 }
        let project = headers[.projectIDHeader] ?? (systemScope == nil ? tokenProject : headers[.tenantIDHeader])
        self.init(
            userID: user, projectID: project, domainID: headers[.domainIDHeader],
            userDomainID: headers[.userDomainIDHeader], projectDomainID: headers[.projectDomainIDHeader],
            roles: roles, systemScope: systemScope, serviceRoles: headers[.serviceRolesHeader].map(Self.list) ?? [],
            isAdminProject: (headers[.isAdminProjectHeader] ?? "true").lowercased() == "true")
    }

    /// A comma-separated header as oslo.context reads it: items trimmed, empty ones dropped.
    static func list(_ header: String) -> [String] {
        header.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters() }
            .filter { !$0.isEmpty }
    }
}

/// One configured API token, known by its SHA-256 digest: the token itself is never stored, logged or shown.
public struct TokenRecord: Sendable, Codable, Equatable {
    /// The token's SHA-256, lower-case hex (``digest(of:)``).
    public var digest: String
    /// What the operator called it (`allot token create --name`).
    public var name: String?
    public var user: String
    public var project: String?
    public var roles: [String]
    /// The hosts whose nodes this token may save, remove and claim on through the ledger protocol; `nil`: any.
    public var hosts: [String]?

    /// A record for `token` (only its digest is kept).
    public init(
        token: String, user: String, project: String?, roles: [String], hosts: [String]? = nil, name: String? = nil
    ) {
        self.init(digest: Self.digest(of: token), user: user, project: project, roles: roles, hosts: hosts, name: name)
    }

    public init(
        digest: String, user: String, project: String?, roles: [String], hosts: [String]? = nil, name: String? = nil
    ) {
        self.digest = digest
        self.name = name
        self.user = user
        self.project = project
        self.roles = roles
        self.hosts = hosts
    }
}

/// How requests are authenticated.
public enum AuthMode: Sendable {
    /// Upstream's `noauth2`: the token names the user, for development and tests only.
    case noauth
    /// Tokens looked up in a fixed table.
    case tokens([TokenRecord])
    /// Keystone tokens, validated as keystonemiddleware's `auth_token` does.
    case keystone(KeystoneValidator)
}

/// Why a request could not be authenticated.
enum AuthFailure: Error {
    /// No token, or a token that is unknown, expired or revoked: `401`.
    case unauthenticated
    /// The identity service could not be asked: `503`.
    case unavailable
}

extension AuthMode {
    /// The caller behind a request's headers.
    /// - Throws: ``AuthFailure``.
    func identify(_ headers: HTTPFields) async throws(AuthFailure) -> Identity {
        switch self {
        case .noauth:
            guard let token = headers[.authToken] else { throw .unauthenticated }
            return Identity(noauthToken: token, headers: headers)
        case .tokens(let records):
            guard let record = Self.record(headers, in: records) else { throw .unauthenticated }
            return Identity(userID: record.user, projectID: record.project, roles: record.roles)
        case .keystone(let validator):
            do {
                let caller = try await validator.authenticate(
                    userToken: headers[.authToken] ?? headers[.storageToken], serviceToken: headers[.serviceToken])
                return Identity(keystone: caller)
            } catch .invalidToken {
                throw .unauthenticated
            } catch {
                throw .unavailable
            }
        }
    }
}

extension AuthMode {
    /// The record of the request's token: looked up by digest, each record compared in constant time.
    static func record(_ headers: HTTPFields, in records: [TokenRecord]) -> TokenRecord? {
        guard let token = headers[.authToken], !token.isEmpty else { return nil }
        let digest = TokenRecord.digest(of: token)
        var found: TokenRecord?
        for record in records where constantTimeEquals(record.digest, digest) { found = record }
        return found
    }

    /// The hosts the request's token is bound to (``TokenRecord/hosts``); `nil` when it is bound to none, or
    /// authentication is not by Allot's tokens.
    func boundHosts(_ headers: HTTPFields) -> [String]? {
        guard case .tokens(let records) = self else { return nil }
        return Self.record(headers, in: records)?.hosts
    }
}

/// Compares two secrets without an early exit on the first difference.
func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    let left = Array(lhs.utf8)
    let right = Array(rhs.utf8)
    var difference = UInt8(left.count == right.count ? 0 : 1)
    for index in 0..<max(left.count, right.count) {
        difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
    }
    return difference == 0
}

extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingSpaces() }
}

extension HTTPField.Name {
    static let storageToken = HTTPField.Name("x-storage-token")!
    static let serviceToken = HTTPField.Name("x-service-token")!
    static let projectIDHeader = HTTPField.Name("x-project-id")!
    static let tenantIDHeader = HTTPField.Name("x-tenant-id")!
    static let domainIDHeader = HTTPField.Name("x-domain-id")!
    static let userDomainIDHeader = HTTPField.Name("x-user-domain-id")!
    static let projectDomainIDHeader = HTTPField.Name("x-project-domain-id")!
    static let serviceRolesHeader = HTTPField.Name("x-service-roles")!
    static let isAdminProjectHeader = HTTPField.Name("x-is-admin-project")!
}
