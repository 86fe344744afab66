/// A qualitative property of a provider: a standard os-traits name or `CUSTOM_[A-Z0-9_]+`.
public struct Trait: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The name exactly as Placement shows it.
    public let name: String

    /// Makes a trait without checking the name.
    public init(unchecked name: String) { self.name = name }

    public var description: String { name }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.name < rhs.name }

    /// Whether the trait is a standard os-traits name (which cannot be created or deleted).
    public var isStandard: Bool { Self.standardSet.contains(name) }

    /// Whether `name` matches `^CUSTOM_[A-Z0-9_]+$`.
    public static func isCustomName(_ name: String) -> Bool { NameRules.isCustom(name) }

    public static let standardSet: Set<String> = Set(standardNames)

    public static let sharesViaAggregate = Trait(unchecked: "MISC_SHARES_VIA_AGGREGATE")
    public static let computeNode = Trait(unchecked: "COMPUTE_NODE")
    public static let computeStatusDisabled = Trait(unchecked: "COMPUTE_STATUS_DISABLED")
}
