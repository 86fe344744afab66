/// A check string of the oslo.policy language, parsed.
///
/// ```swift
/// let rule = try PolicyRule(parsing: "role:admin or (role:reader and project_id:%(project_id)s)")
/// rule.check.description  // "(role:admin or (role:reader and project_id:%(project_id)s))"
/// ```
///
/// Supported: `@`, `!`, the empty string (allow), `rule:`, `role:`
/// (case-insensitive), generic `attribute:value` checks with `%(key)s`
/// substitution from the target, literal left sides (`True`, `False`,
/// `None`, quoted strings, decimal integers), dotted credential paths,
/// `not`, `and`, `or` (any case) and parentheses. `http:`/`https:` checks
/// are refused with ``PolicyError/unsupportedCheck(kind:checkString:origin:)``.
public struct PolicyRule: Sendable, Equatable, CustomStringConvertible {
    /// The check string as written.
    public let source: String
    /// The parsed tree.
    public let check: PolicyCheck

    /// Parses `source`; throws ``PolicyError`` on anything oslo.policy would
    /// fail to understand (and silently deny) or that Allot does not support.
    public init(parsing source: String) throws(PolicyError) {
        self.source = source
        self.check = try PolicyRuleParser.parse(source)
    }

    /// Wraps an already-built tree; `source` becomes its description.
    public init(check: PolicyCheck) {
        self.source = check.description
        self.check = check
    }

    /// oslo.policy's `str()` of the parsed rule.
    public var description: String { check.description }
}
