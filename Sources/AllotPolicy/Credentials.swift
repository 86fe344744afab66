/// The identity a request carries, as oslo.context's
/// `RequestContext.to_policy_values()` hands it to oslo.policy.
///
/// `roles` are compared case-insensitively by `role:` checks (as oslo.policy
/// lower-cases both sides) but case-sensitively by generic checks such as
/// `roles:admin`. `serviceRoles` are the roles of an `X-Service-Token`; they
/// are only visible to generic checks (`service_roles:service`), never to
/// `role:` checks.
public struct Credentials: Sendable, Equatable {
    public var userID: String?
    public var projectID: String?
    public var domainID: String?
    public var userDomainID: String?
    public var projectDomainID: String?
    /// Roles of the token, as given.
    public var roles: [String]
    /// `"all"` for a system-scoped token; nil otherwise.
    public var systemScope: String?
    /// Roles of the service token (`service_roles` in oslo.context).
    public var serviceRoles: [String]
    public var serviceUserID: String?
    public var serviceUserDomainID: String?
    public var serviceProjectID: String?
    public var serviceProjectDomainID: String?
    /// oslo.context's `is_admin_project`; true unless Keystone says otherwise.
    public var isAdminProject: Bool

    public init(
        userID: String? = nil,
        projectID: String? = nil,
        domainID: String? = nil,
        userDomainID: String? = nil,
        projectDomainID: String? = nil,
        roles: [String] = [],
        systemScope: String? = nil,
        serviceRoles: [String] = [],
        serviceUserID: String? = nil,
        serviceUserDomainID: String? = nil,
        serviceProjectID: String? = nil,
        serviceProjectDomainID: String? = nil,
        isAdminProject: Bool = true
    ) {
        self.userID = userID
        self.projectID = projectID
        self.domainID = domainID
        self.userDomainID = userDomainID
        self.projectDomainID = projectDomainID
        self.roles = roles
        self.systemScope = systemScope
        self.serviceRoles = serviceRoles
        self.serviceUserID = serviceUserID
        self.serviceUserDomainID = serviceUserDomainID
        self.serviceProjectID = serviceProjectID
        self.serviceProjectDomainID = serviceProjectDomainID
        self.isAdminProject = isAdminProject
    }

    /// The scope of the token, as far as the token says.
    ///
    /// oslo.policy's scope check only distinguishes system (a non-empty
    /// `system_scope`), domain (a non-empty `domain_id`) and everything else,
    /// which it treats as project scope — an unscoped token (``TokenScope/none``)
    /// passes a `scope_types=['project']` check. See ``enforcementScope``.
    public var tokenScope: TokenScope {
        if let systemScope, !systemScope.isEmpty { return .system }
        if let domainID, !domainID.isEmpty { return .domain }
        if let projectID, !projectID.isEmpty { return .project }
        return .none
    }

    /// The scope oslo.policy's `Enforcer._enforce_scope` compares with a
    /// rule's `scope_types`: ``tokenScope`` with ``TokenScope/none`` folded
    /// into ``TokenScope/project``.
    public var enforcementScope: TokenScope {
        tokenScope == .none ? .project : tokenScope
    }

    /// The default target placement's `RequestContext.can()` uses when a
    /// handler passes none: the requester's own project and user. Absent
    /// values are left out, so `%(project_id)s` against them never matches.
    public var defaultTarget: [String: String] {
        var target: [String: String] = [:]
        if let projectID { target["project_id"] = projectID }
        if let userID { target["user_id"] = userID }
        return target
    }

    /// The credential dictionary generic checks look into, keyed like
    /// `to_policy_values()` (plus `system`, which `Enforcer.enforce` adds
    /// for a system-scoped token).
    var policyValues: [String: CredentialValue] {
        func opt(_ s: String?) -> CredentialValue { s.map(CredentialValue.string) ?? .null }
        var values: [String: CredentialValue] = [
            "user_id": opt(userID),
            "user_domain_id": opt(userDomainID),
            "system_scope": opt(systemScope),
            "domain_id": opt(domainID),
            "project_id": opt(projectID),
            "project_domain_id": opt(projectDomainID),
            "roles": .list(roles.map(CredentialValue.string)),
            "is_admin_project": .bool(isAdminProject),
            "service_user_id": opt(serviceUserID),
            "service_user_domain_id": opt(serviceUserDomainID),
            "service_project_id": opt(serviceProjectID),
            "service_project_domain_id": opt(serviceProjectDomainID),
            "service_roles": .list(serviceRoles.map(CredentialValue.string)),
        ]
        if let systemScope, !systemScope.isEmpty { values["system"] = .string(systemScope) }
        return values
    }
}

/// A value in the credential dictionary as generic checks see it.
enum CredentialValue: Sendable, Equatable {
    case string(String)
    case bool(Bool)
    case list([CredentialValue])
    case null

    /// Python's `str()` of the value; nil for `None`, which Allot never
    /// lets match (oslo.policy would compare against the text `"None"`).
    var pythonString: String? {
        switch self {
        case let .string(s): return s
        case let .bool(b): return b ? "True" : "False"
        case .null: return nil
        case let .list(items):
            // str() of a list: only reachable for a path ending on a list
            // nested in a list, which flat credentials never have.
            return "[" + items.map { "'\($0.pythonString ?? "None")'" }.joined(separator: ", ") + "]"
        }
    }
}
