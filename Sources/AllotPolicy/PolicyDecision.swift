/// The outcome of ``PolicyEnforcer/authorize(_:target:credentials:)``.
///
/// Placement answers 403 to both ``denied(_:)`` and ``invalidScope(required:tokenScope:)``
/// (`placement.policy.authorize` turns oslo.policy's `InvalidScope` into
/// `PolicyNotAuthorized`).
public enum PolicyDecision: Sendable, Equatable, CustomStringConvertible {
    case allowed
    /// The check string evaluated to false, or the rule is not registered.
    case denied(String)
    /// The token's scope is not among the rule's `scope_types`.
    case invalidScope(required: [String], tokenScope: TokenScope)

    public var isAllowed: Bool { self == .allowed }

    public var description: String {
        switch self {
        case .allowed: return "allowed"
        case let .denied(reason): return "denied: \(reason)"
        case let .invalidScope(required, tokenScope):
            return "invalid scope: requires \(required.joined(separator: ", ")), token is \(tokenScope)-scoped"
        }
    }
}
