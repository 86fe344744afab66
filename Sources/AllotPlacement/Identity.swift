import AllotCore
/// Who made a request: from a token, or from `noauth`'s `user[:project]` convention.
public struct Identity: Sendable, Equatable {
    public var userID: String
    public var projectID: String?
    public var roles: Set<String>
    public var systemScope: Bool

    public init(userID: String, projectID: String?, roles: Set<String>, systemScope: Bool = false) {
        self.userID = userID
        self.projectID = projectID
        self.roles = roles
        self.systemScope = systemScope
    }
}

/// One configured API token. The secret itself is never logged or shown.
public struct TokenRecord: Sendable, Codable, Equatable {
    public var token: String
    public var user: String
    public var project: String?
    public var roles: [String]

    public init(token: String, user: String, project: String?, roles: [String]) {
        self.token = token
        self.user = user
        self.project = project
        self.roles = roles
    }
}

/// How requests are authenticated.
public enum AuthMode: Sendable {
    /// Upstream's `noauth2`: the token names the user, for development and tests only.
    case noauth
    /// Tokens looked up in a fixed table.
    case tokens([TokenRecord])

    /// The identity behind `X-Auth-Token`, or `nil` when it is missing or unknown.
    func identify(token: String?, rolesHeader: String?, systemScope: String?) -> Identity? {
        guard let token, !token.isEmpty else { return nil }
        switch self {
        case .noauth:
            let parts = token.split(separator: ":", maxSplits: 1).map(String.init)
            var roles: Set<String> = parts[0] == "admin" ? ["admin"] : []
            if let rolesHeader {
                roles = Set(rolesHeader.split(separator: ",").map { $0.trimmingCharacters() }.filter { !$0.isEmpty })
            }
            return Identity(
                userID: parts[0], projectID: parts.count > 1 ? parts[1] : parts[0], roles: roles,
                systemScope: systemScope?.lowercased() == "all")
        case .tokens(let records):
            guard let record = records.first(where: { constantTimeEquals($0.token, token) }) else { return nil }
            return Identity(userID: record.user, projectID: record.project, roles: Set(record.roles))
        }
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
