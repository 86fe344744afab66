/// A parsed check tree of the oslo.policy language.
///
/// `description` renders the tree the way oslo.policy's `str(check)` does,
/// e.g. `(role:admin or (role:reader and project_id:%(project_id)s))`.
public indirect enum PolicyCheck: Sendable, Equatable, CustomStringConvertible {
    /// `@`, or the empty check string: always passes.
    case alwaysTrue
    /// `!`: always fails.
    case alwaysFalse
    /// `rule:NAME`: the result of another rule.
    case rule(String)
    /// `role:NAME`: the token has the role (case-insensitive).
    case role(PolicyMatch)
    /// `KIND:MATCH` for any other kind: a credential attribute (or literal)
    /// equals the match. `kind` is kept as written for `description`.
    case generic(kind: String, match: PolicyMatch)
    /// `not CHECK`.
    case not(PolicyCheck)
    /// `A and B and …`.
    case and([PolicyCheck])
    /// `A or B or …`.
    case or([PolicyCheck])

    public var description: String {
        switch self {
        case .alwaysTrue: return "@"
        case .alwaysFalse: return "!"
        case let .rule(name): return "rule:\(name)"
        case let .role(match): return "role:\(match.raw)"
        case let .generic(kind, match): return "\(kind):\(match.raw)"
        case let .not(check): return "not \(check)"
        case let .and(checks): return "(" + checks.map(\.description).joined(separator: " and ") + ")"
        case let .or(checks): return "(" + checks.map(\.description).joined(separator: " or ") + ")"
        }
    }

    /// Names referenced by `rule:` checks anywhere in the tree, in order.
    public var referencedRules: [String] {
        switch self {
        case .alwaysTrue, .alwaysFalse, .role, .generic: return []
        case let .rule(name): return [name]
        case let .not(check): return check.referencedRules
        case let .and(checks), let .or(checks): return checks.flatMap(\.referencedRules)
        }
    }

    /// Evaluates the tree.
    ///
    /// - Parameters:
    ///   - target: the object of the action; `%(key)s` reads from it.
    ///   - credentials: oslo.context's policy values.
    ///   - rules: what `rule:` checks resolve to; a missing name fails closed.
    public func evaluate(
        target: [String: String],
        credentials: Credentials,
        rules: [String: PolicyCheck] = [:]
    ) -> Bool {
        var context = Evaluation(target: target, values: credentials.policyValues,
                                 roles: Set(credentials.roles.map { $0.lowercased() }), rules: rules)
        return evaluate(in: &context, depth: 0)
    }

    struct Evaluation {
        let target: [String: String]
        let values: [String: CredentialValue]
        let roles: Set<String>
        let rules: [String: PolicyCheck]
    }

    /// Deeper than this, `rule:` chains are taken for a cycle and fail.
    static let maximumDepth = 100

    func evaluate(in context: inout Evaluation, depth: Int) -> Bool {
        switch self {
        case .alwaysTrue:
            return true
        case .alwaysFalse:
            return false
        case let .rule(name):
            guard depth < Self.maximumDepth, let check = context.rules[name] else { return false }
            return check.evaluate(in: &context, depth: depth + 1)
        case let .role(match):
            guard let role = match.resolve(against: context.target) else { return false }
            return context.roles.contains(role.lowercased())
        case let .generic(kind, match):
            guard let expected = match.resolve(against: context.target),
                  case let .valid(genericKind) = GenericKind.classify(kind)
            else { return false }
            switch genericKind {
            case let .literal(value):
                return value == expected
            case let .path(segments):
                guard let value = context.values[segments[0]] else { return false }
                return Self.find(expected, in: value, path: segments.dropFirst())
            }
        case let .not(check):
            return !check.evaluate(in: &context, depth: depth)
        case let .and(checks):
            for check in checks where !check.evaluate(in: &context, depth: depth) { return false }
            return true
        case let .or(checks):
            for check in checks where check.evaluate(in: &context, depth: depth) { return true }
            return false
        }
    }

    /// oslo.policy's `GenericCheck._find_in_dict` below the first key: a
    /// list matches when any element does. Credentials are flat, so a path
    /// that goes deeper never matches (upstream raises a TypeError there).
    private static func find(_ expected: String, in value: CredentialValue, path: ArraySlice<String>) -> Bool {
        func element(_ v: CredentialValue) -> Bool {
            path.isEmpty && v.pythonString == expected
        }
        if case let .list(items) = value { return items.contains(where: element) }
        return element(value)
    }
}
