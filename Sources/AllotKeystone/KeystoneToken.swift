import AllotCore
public import Foundation

/// What Keystone says about a validated token: the caller's user, scope, roles and expiry.
public struct KeystoneToken: Sendable, Equatable {
    public var userID: String
    public var userName: String?
    public var userDomainID: String?
    /// The project of a project-scoped token.
    public var projectID: String?
    public var projectDomainID: String?
    /// The domain of a domain-scoped token.
    public var domainID: String?
    /// Role names, implied roles included (Keystone expands them).
    public var roles: [String]
    /// `"all"` for a system-scoped token.
    public var systemScope: String?
    public var isAdminProject: Bool
    public var expiresAt: Date

    public init(
        userID: String, userName: String? = nil, userDomainID: String? = nil, projectID: String? = nil,
        projectDomainID: String? = nil, domainID: String? = nil, roles: [String], systemScope: String? = nil,
        isAdminProject: Bool = true, expiresAt: Date
    ) {
        self.userID = userID
        self.userName = userName
        self.userDomainID = userDomainID
        self.projectID = projectID
        self.projectDomainID = projectDomainID
        self.domainID = domainID
        self.roles = roles
        self.systemScope = systemScope
        self.isAdminProject = isAdminProject
        self.expiresAt = expiresAt
    }

    /// Decodes the body of `GET /v3/auth/tokens` (or of `POST /v3/auth/tokens`).
    /// - Throws: ``KeystoneError/unavailable(_:)`` when the body is not a v3 token (a missing user or expiry).
    public static func decode(_ data: Data) throws(KeystoneError) -> KeystoneToken {
        let body: Body
        do {
            body = try JSONCoding.decode(Body.self, from: data)
        } catch {
            throw .unavailable("Keystone's token document could not be read")
        }
        let token = body.token
        guard let expiresAt = parseTimestamp(token.expires_at) else {
            throw .unavailable("Keystone's token document has no valid expires_at")
        }
        var systemScope: String?
        if let system = token.system, system["all"] == true { systemScope = "all" }
        return KeystoneToken(
            userID: token.user.id, userName: token.user.name, userDomainID: token.user.domain?.id,
            projectID: token.project?.id, projectDomainID: token.project?.domain?.id, domainID: token.domain?.id,
            roles: (token.roles ?? []).compactMap(\.name), systemScope: systemScope,
            isAdminProject: token.is_admin_project ?? true, expiresAt: expiresAt)
    }

    /// Keystone's timestamps: `2026-12-03T21:00:00.000000Z` (fractional seconds optional).
    static func parseTimestamp(_ text: String) -> Date? {
        var main = text
        var fraction = 0.0
        if main.hasSuffix("Z") { main.removeLast() }
        if let dot = main.firstIndex(of: ".") {
            fraction = Double("0" + main[dot...]) ?? 0
            main = String(main[..<dot])
        }
        let parts = main.split(whereSeparator: { "-T:".contains($0) }).compactMap { Int($0) }
        guard parts.count == 6 else { return nil }
        var components = DateComponents()
        components.calendar = Calendar(identifier: .gregorian)
        components.timeZone = TimeZone(identifier: "UTC")
        (components.year, components.month, components.day) = (parts[0], parts[1], parts[2])
        (components.hour, components.minute, components.second) = (parts[3], parts[4], parts[5])
        return components.date.map { $0.addingTimeInterval(fraction) }
    }

    // Keystone's field names (internal for the tests that check them against Foundation's decoder).
    // swiftlint:disable identifier_name
    struct Body: Decodable, Equatable {
        var token: Token
    }

    struct Token: Decodable, Equatable {
        var user: Named
        var project: Named?
        var domain: Named?
        var roles: [Named]?
        var system: [String: Bool]?
        var expires_at: String
        var is_admin_project: Bool?
    }

    struct Named: Decodable, Equatable {
        var id: String
        var name: String?
        var domain: Reference?
    }

    struct Reference: Decodable, Equatable {
        var id: String
    }
    // swiftlint:enable identifier_name
}
