/// Everything that can go wrong while parsing check strings, reading policy
/// files or assembling a ``PolicyEnforcer``.
///
/// Each case carries enough context (rule name, file, line) for an operator
/// to find the offending entry. Evaluation itself never throws: an unknown
/// rule name is denied (see ``PolicyEnforcer/authorize(_:target:credentials:)``).
public enum PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Where a check string came from, for error messages.
    public struct Origin: Equatable, Sendable, CustomStringConvertible {
        /// The rule name the check string belongs to, if known.
        public var rule: String?
        /// The policy file, if the check string was read from one.
        public var file: String?
        /// 1-based line in `file`, if known.
        public var line: Int?

        public init(rule: String? = nil, file: String? = nil, line: Int? = nil) {
            self.rule = rule
            self.file = file
            self.line = line
        }

        public var description: String {
            var parts: [String] = []
            if let file {
                parts.append(line.map { "\(file):\($0)" } ?? file)
            } else if let line {
                parts.append("line \(line)")
            }
            if let rule { parts.append("rule \"\(rule)\"") }
            return parts.joined(separator: ", ")
        }

        var isEmpty: Bool { rule == nil && file == nil && line == nil }
    }

    /// The check string is not valid policy language.
    case syntax(checkString: String, reason: String, origin: Origin)
    /// The check string uses a check kind oslo.policy has but Allot refuses
    /// (`http:`/`https:` remote checks).
    case unsupportedCheck(kind: String, checkString: String, origin: Origin)
    /// A `rule:` check names a rule that is neither a default nor an override.
    case unknownRuleReference(reference: String, origin: Origin)
    /// `rule:` references form a cycle (the names are listed in cycle order).
    case cyclicRuleReference(cycle: [String])
    /// The same rule name was registered twice among the defaults.
    case duplicateDefault(name: String)
    /// The policy file is not valid YAML/JSON.
    case malformedFile(file: String, line: Int?, reason: String)
    /// The policy file is valid YAML but not a mapping of name to check string.
    case invalidEntry(file: String, line: Int?, reason: String)

    public var description: String {
        switch self {
        case let .syntax(checkString, reason, origin):
            return "\(Self.prefix(origin))invalid check string \"\(checkString)\": \(reason)"
        case let .unsupportedCheck(kind, checkString, origin):
            return "\(Self.prefix(origin))unsupported check \"\(kind):\" in \"\(checkString)\": "
                + "Allot does not support oslo.policy's \(kind): (remote HTTP) checks"
        case let .unknownRuleReference(reference, origin):
            return "\(Self.prefix(origin))\"rule:\(reference)\" refers to a rule that is not defined"
        case let .cyclicRuleReference(cycle):
            return "policy rules reference each other in a cycle: "
                + cycle.map { "\"\($0)\"" }.joined(separator: " -> ")
        case let .duplicateDefault(name):
            return "policy \"\(name)\" is registered more than once"
        case let .malformedFile(file, line, reason):
            return "\(file)\(line.map { ":\($0)" } ?? ""): malformed policy file: \(reason)"
        case let .invalidEntry(file, line, reason):
            return "\(file)\(line.map { ":\($0)" } ?? ""): \(reason)"
        }
    }

    private static func prefix(_ origin: Origin) -> String {
        origin.isEmpty ? "" : "\(origin): "
    }

    /// The same error with `origin` filled in where it was unknown.
    func located(_ origin: Origin) -> PolicyError {
        func merge(_ old: Origin) -> Origin {
            Origin(rule: old.rule ?? origin.rule, file: old.file ?? origin.file, line: old.line ?? origin.line)
        }
        switch self {
        case let .syntax(c, r, o): return .syntax(checkString: c, reason: r, origin: merge(o))
        case let .unsupportedCheck(k, c, o): return .unsupportedCheck(kind: k, checkString: c, origin: merge(o))
        case let .unknownRuleReference(r, o): return .unknownRuleReference(reference: r, origin: merge(o))
        default: return self
        }
    }
}
