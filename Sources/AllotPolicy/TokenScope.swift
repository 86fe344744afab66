/// The scope of a Keystone token.
public enum TokenScope: String, Sendable, Equatable, CustomStringConvertible {
    /// `system_scope` is set (e.g. `all`).
    case system
    /// Domain-scoped: `domain_id` is set.
    case domain
    /// Project-scoped: `project_id` is set.
    case project
    /// Unscoped: none of the above.
    case none

    public var description: String { rawValue }
}
