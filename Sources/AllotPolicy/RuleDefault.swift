/// A policy rule registered in code, as oslo.policy's `RuleDefault` /
/// `DocumentedRuleDefault`.
public struct RuleDefault: Sendable, Equatable {
    /// An API operation the rule guards (for documentation).
    public struct Operation: Sendable, Equatable {
        public var method: String
        public var path: String

        public init(method: String, path: String) {
            self.method = method
            self.path = path
        }
    }

    /// The rule a default replaced, as oslo.policy's `DeprecatedRule`.
    public struct Deprecated: Sendable, Equatable {
        /// The old rule's name (placement's is literally `rule:admin_api`).
        public var name: String
        /// The old check string.
        public var checkString: String
        /// Why the old rule was replaced.
        public var reason: String?
        /// The release it was deprecated in (`W` for Wallaby).
        public var since: String?

        public init(name: String, checkString: String, reason: String? = nil, since: String? = nil) {
            self.name = name
            self.checkString = checkString
            self.reason = reason
            self.since = since
        }
    }

    public var name: String
    public var checkString: String
    public var description: String?
    /// Token scopes the rule accepts; empty means no scope check (upstream's
    /// `scope_types=None`).
    public var scopeTypes: [String]
    public var operations: [Operation]
    public var deprecatedRule: Deprecated?
    /// Reason/since for a rule that is itself deprecated for removal, or
    /// (upstream's fallback) for the deprecated rule's text.
    public var deprecatedForRemoval: Bool
    public var deprecatedReason: String?
    public var deprecatedSince: String?

    public init(
        name: String,
        checkString: String,
        description: String? = nil,
        scopeTypes: [String] = [],
        operations: [Operation] = [],
        deprecatedRule: Deprecated? = nil,
        deprecatedForRemoval: Bool = false,
        deprecatedReason: String? = nil,
        deprecatedSince: String? = nil
    ) {
        self.name = name
        self.checkString = checkString
        self.description = description
        self.scopeTypes = scopeTypes
        self.operations = operations
        self.deprecatedRule = deprecatedRule
        self.deprecatedForRemoval = deprecatedForRemoval
        self.deprecatedReason = deprecatedReason
        self.deprecatedSince = deprecatedSince
    }
}
