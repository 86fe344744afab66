public import Foundation

/// How Allot validates Keystone tokens, as keystonemiddleware's `[keystone_authtoken]` section does.
///
/// Keys (command line `--keystone-…`, environment `ALLOT_KEYSTONE_…`):
/// - `identityURL` (`--keystone-url`): the Identity v3 URL, e.g. `http://keystone:5000/v3` (required).
/// - `username`, `password` (`--keystone-username`, `ALLOT_KEYSTONE_PASSWORD`): the service's own user, which
///   must be allowed to validate tokens (Keystone's `identity:validate_token`: the `service` or `admin` role).
/// - `projectName` (`--keystone-project`, default `service`), `userDomainName` and `projectDomainName`
///   (`--keystone-user-domain`, `--keystone-project-domain`, default `Default`).
/// - `cacheSeconds` (`--keystone-cache-seconds`, default 300): how long a validated token is trusted without
///   asking Keystone again (never past the token's own expiry); `cacheCapacity` (default 10,000 tokens).
/// - `failureCacheSeconds` (default 2, at most 5): how long a token Keystone refused is refused without asking.
/// - `serviceTokenRoles` (default `service`): roles an `X-Service-Token` needs for the user token to be accepted
///   past its expiry (keystonemiddleware's `service_token_roles`, with `service_token_roles_required = false`).
/// - `timeout` (default 10 s): how long one call to Keystone may take before the request gets `503`.
public struct KeystoneConfiguration: Sendable {
    public var identityURL: String
    public var username: String
    public var password: String
    public var projectName: String
    public var userDomainName: String
    public var projectDomainName: String
    public var cacheSeconds: Int
    public var cacheCapacity: Int
    public var failureCacheSeconds: Int
    public var serviceTokenRoles: Set<String>
    public var timeout: Duration

    public init(
        identityURL: String, username: String, password: String, projectName: String = "service",
        userDomainName: String = "Default", projectDomainName: String = "Default", cacheSeconds: Int = 300,
        cacheCapacity: Int = 10_000, failureCacheSeconds: Int = 2, serviceTokenRoles: Set<String> = ["service"],
        timeout: Duration = .seconds(10)
    ) {
        var url = identityURL
        while url.hasSuffix("/") { url.removeLast() }
        self.identityURL = url
        self.username = username
        self.password = password
        self.projectName = projectName
        self.userDomainName = userDomainName
        self.projectDomainName = projectDomainName
        self.cacheSeconds = max(0, cacheSeconds)
        self.cacheCapacity = max(1, cacheCapacity)
        self.failureCacheSeconds = min(5, max(0, failureCacheSeconds))
        self.serviceTokenRoles = serviceTokenRoles
        self.timeout = timeout
    }

    /// What `WWW-Authenticate: Keystone uri="…"` names: where clients get a token.
    public var wwwAuthenticateURI: String { identityURL }

    /// Checks the values a server cannot start without.
    /// - Throws: ``KeystoneError/misconfigured(_:)`` naming the missing or bad setting (never its value).
    public func validate() throws(KeystoneError) {
        guard let url = URL(string: identityURL), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", url.host != nil
        else {
            throw .misconfigured("--keystone-url must be an http(s) URL of the Identity v3 API, e.g. http://keystone:5000/v3")
        }
        if username.isEmpty { throw .misconfigured("--keystone-username is required with --auth keystone") }
        if password.isEmpty {
            throw .misconfigured("the service user's password is required with --auth keystone (ALLOT_KEYSTONE_PASSWORD)")
        }
        if projectName.isEmpty { throw .misconfigured("--keystone-project must not be empty") }
    }
}

/// Why a token could not be accepted.
public enum KeystoneError: Error, Equatable, CustomStringConvertible {
    /// Keystone does not know the token, or it has expired or been revoked.
    case invalidToken
    /// Keystone could not be asked (unreachable, timed out, failed, or refused the service's own credentials).
    case unavailable(String)
    /// The configuration cannot work.
    case misconfigured(String)

    public var description: String {
        switch self {
        case .invalidToken: "the token is not valid"
        case .unavailable(let reason): "Keystone is unavailable: \(reason)"
        case .misconfigured(let reason): reason
        }
    }
}
