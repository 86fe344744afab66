/// oslo.policy's `Enforcer`, reduced to what placement uses: defaults
/// registered in code, merged with an operator's overrides, and
/// `authorize(rule, target, credentials)`.
///
/// Merging follows `Enforcer.load_rules`:
/// - an override replaces the default of the same name (and may add rules
///   that only other rules reference);
/// - a default with a deprecated rule, not overridden, becomes
///   `(new or deprecated)` when `enforceNewDefaults` is false and the two
///   check strings differ;
/// - an override of the *deprecated* name (placement's is `rule:admin_api`)
///   replaces every default that names it as deprecated rule, unless it
///   equals the deprecated check, is `rule:<new name>`, or the new name is
///   overridden too — whatever `enforceNewDefaults` says.
///
/// Unlike upstream, which only logs them, a `rule:` reference to an unknown
/// name, a cycle of references, or a check string it cannot parse make the
/// initializer throw.
public struct PolicyEnforcer: Sendable {
    /// The defaults, in registration order.
    public let defaults: [RuleDefault]
    /// The operator's overrides, in file order.
    public let overrides: [PolicyOverride]
    /// Whether a rule's `scope_types` are checked against the token's scope.
    public let enforceScope: Bool
    /// Whether deprecated defaults are ignored (else OR-ed with the new ones).
    public let enforceNewDefaults: Bool

    private let registered: [String: RuleDefault]
    /// What each rule name evaluates to.
    private let rules: [String: PolicyCheck]
    /// Optional file name, for messages.
    public let fileName: String?

    /// Builds an enforcer from defaults and `name -> check string` overrides.
    public init(
        defaults: [RuleDefault],
        overrides: [String: String] = [:],
        enforceScope: Bool = true,
        enforceNewDefaults: Bool = true
    ) throws(PolicyError) {
        try self.init(
            defaults: defaults,
            overrides: overrides.sorted { $0.key < $1.key }.map { PolicyOverride(name: $0.key, checkString: $0.value) },
            fileName: nil, enforceScope: enforceScope, enforceNewDefaults: enforceNewDefaults)
    }

    /// Builds an enforcer from defaults and overrides read from a policy
    /// file (see ``PolicyFile/entries(_:fileName:)``), so errors name the line.
    public init(
        defaults: [RuleDefault],
        overrides: [PolicyOverride],
        fileName: String?,
        enforceScope: Bool = true,
        enforceNewDefaults: Bool = true
    ) throws(PolicyError) {
        self.defaults = defaults
        self.overrides = overrides
        self.fileName = fileName
        self.enforceScope = enforceScope
        self.enforceNewDefaults = enforceNewDefaults

        var registered: [String: RuleDefault] = [:]
        var defaultChecks: [String: PolicyCheck] = [:]
        var deprecatedChecks: [String: PolicyCheck] = [:]
        for rule in defaults {
            guard registered[rule.name] == nil else { throw .duplicateDefault(name: rule.name) }
            registered[rule.name] = rule
            defaultChecks[rule.name] = try Self.parse(rule.checkString, origin: .init(rule: rule.name))
            if let deprecated = rule.deprecatedRule {
                deprecatedChecks[rule.name] = try Self.parse(deprecated.checkString,
                                                             origin: .init(rule: deprecated.name))
            }
        }

        var fileChecks: [String: PolicyCheck] = [:]
        var origins: [String: PolicyError.Origin] = [:]
        for entry in overrides {
            guard fileChecks[entry.name] == nil else {
                throw .invalidEntry(file: fileName ?? "policy overrides", line: entry.line,
                                    reason: "rule \"\(entry.name)\" is defined more than once")
            }
            let origin = PolicyError.Origin(rule: entry.name, file: fileName, line: entry.line)
            fileChecks[entry.name] = try Self.parse(entry.checkString, origin: origin)
            origins[entry.name] = origin
        }

        var rules = fileChecks
        for rule in defaults where fileChecks[rule.name] == nil {
            var check = defaultChecks[rule.name]!
            if let deprecated = rule.deprecatedRule, let oldCheck = deprecatedChecks[rule.name] {
                if deprecated.name != rule.name, let renamed = fileChecks[deprecated.name],
                   renamed != oldCheck, renamed.description != "rule:\(rule.name)" {
                    check = renamed
                } else if !enforceNewDefaults, deprecated.checkString != rule.checkString {
                    check = .or([check, oldCheck])
                }
            }
            rules[rule.name] = check
        }

        // Every reference must resolve, and none may loop.
        for name in rules.keys.sorted() {
            for reference in rules[name]!.referencedRules where rules[reference] == nil {
                throw .unknownRuleReference(reference: reference, origin: origins[name] ?? .init(rule: name))
            }
        }
        try Self.checkCycles(rules)

        self.registered = registered
        self.rules = rules
    }

    private static func parse(_ source: String, origin: PolicyError.Origin) throws(PolicyError) -> PolicyCheck {
        do {
            return try PolicyRuleParser.parse(source)
        } catch {
            throw error.located(origin)
        }
    }

    private static func checkCycles(_ rules: [String: PolicyCheck]) throws(PolicyError) {
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var path: [String] = []
        func visit(_ name: String) -> [String]? {
            switch marks[name] {
            case .done?: return nil
            case .visiting?:
                let start = path.firstIndex(of: name)!
                return Array(path[start...]) + [name]
            case nil: break
            }
            marks[name] = .visiting
            path.append(name)
            for reference in rules[name]?.referencedRules ?? [] {
                if let cycle = visit(reference) { return cycle }
            }
            path.removeLast()
            marks[name] = .done
            return nil
        }
        for name in rules.keys.sorted() {
            if let cycle = visit(name) { throw .cyclicRuleReference(cycle: cycle) }
        }
    }

    /// Checks whether `credentials` may perform the action `name` on `target`.
    ///
    /// As `Enforcer.authorize`: a name that is not a registered default is
    /// refused (upstream raises `PolicyNotRegistered`; here it is
    /// ``PolicyDecision/denied(_:)``); then, with `enforceScope`, the token
    /// scope must be one of the rule's scope types; then the (merged) check
    /// is evaluated.
    ///
    /// - Parameter target: placement passes `{'project_id': …, 'user_id': …}`
    ///   of the requester unless the handler says otherwise (`GET /usages`
    ///   passes the `project_id` query parameter); see
    ///   ``Credentials/defaultTarget``.
    public func authorize(_ name: String, target: [String: String], credentials: Credentials) -> PolicyDecision {
        guard let rule = registered[name], let check = rules[name] else {
            return .denied("policy \(name) is not registered")
        }
        if enforceScope, !rule.scopeTypes.isEmpty {
            let scope = credentials.enforcementScope
            if !rule.scopeTypes.contains(scope.rawValue) {
                return .invalidScope(required: rule.scopeTypes, tokenScope: scope)
            }
        }
        return check.evaluate(target: target, credentials: credentials, rules: rules)
            ? .allowed : .denied("\(name) is disallowed by policy")
    }

    /// ``authorize(_:target:credentials:)`` with placement's default target.
    public func authorize(_ name: String, credentials: Credentials) -> PolicyDecision {
        authorize(name, target: credentials.defaultTarget, credentials: credentials)
    }

    /// The rules as `oslopolicy-policy-generator` lists them: overrides in
    /// file order, then every default that is not overridden, with its own
    /// check string (not the `new or deprecated` merge; see
    /// ``evaluatedCheck(for:)`` for what is actually evaluated).
    public func effectiveRules() -> [(name: String, checkString: String)] {
        let overridden = Set(overrides.map(\.name))
        return overrides.map { ($0.name, $0.checkString) }
            + defaults.filter { !overridden.contains($0.name) }.map { ($0.name, $0.checkString) }
    }

    /// The check tree `name` evaluates to after merging, or nil for an
    /// unknown name. Its description is oslo.policy's `str(enforcer.rules[name])`.
    public func evaluatedCheck(for name: String) -> PolicyCheck? {
        rules[name]
    }

    /// Names of the registered defaults, in registration order.
    public var registeredNames: [String] { defaults.map(\.name) }
}
