/// A kind of countable resource: a standard os-resource-classes name or `CUSTOM_[A-Z0-9_]+`.
public struct ResourceClass: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The name exactly as Placement shows it.
    public let name: String

    /// Makes a resource class from a name without checking it; use ``validated(_:)`` for user input.
    public init(unchecked name: String) { self.name = name }

    public var description: String { name }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.name < rhs.name }

    /// Whether the class is one of the standard names (which cannot be created, changed or deleted).
    public var isStandard: Bool { Self.standardSet.contains(name) }

    /// Whether the class is a custom one (`CUSTOM_` followed by upper-case letters, digits and `_`).
    public var isCustom: Bool { Self.isCustomName(name) }

    /// Returns the class when `name` is standard or a well-formed custom name.
    /// - Returns: `nil` when the name is neither.
    public static func validated(_ name: String) -> ResourceClass? {
        standardSet.contains(name) || isCustomName(name) ? ResourceClass(unchecked: name) : nil
    }

    /// Whether `name` matches `^CUSTOM_[A-Z0-9_]+$`.
    public static func isCustomName(_ name: String) -> Bool {
        NameRules.isCustom(name)
    }

    /// Whether `name` matches the shape any resource class name must have: `^[A-Z0-9_]+$`.
    public static func isWellFormedName(_ name: String) -> Bool {
        NameRules.isUpperIdentifier(name)
    }

    public static let standardSet: Set<String> = Set(standardNames)

    public static let vcpu = ResourceClass(unchecked: "VCPU")
    public static let pcpu = ResourceClass(unchecked: "PCPU")
    public static let memoryMB = ResourceClass(unchecked: "MEMORY_MB")
    public static let diskGB = ResourceClass(unchecked: "DISK_GB")
    public static let sriovNetVF = ResourceClass(unchecked: "SRIOV_NET_VF")
    public static let vgpu = ResourceClass(unchecked: "VGPU")
    public static let pciDevice = ResourceClass(unchecked: "PCI_DEVICE")

    /// A custom class; the caller guarantees the `CUSTOM_` shape.
    public static func custom(_ name: String) -> ResourceClass { ResourceClass(unchecked: name) }
}

/// Character rules shared by resource class and trait names.
package enum NameRules {
    /// `^CUSTOM_[A-Z0-9_]+$`
    package static func isCustom(_ name: String) -> Bool {
        guard name.hasPrefix("CUSTOM_"), name.utf8.count > 7 else { return false }
        return isUpperIdentifier(name)
    }

    /// `^[A-Z0-9_]+$`
    package static func isUpperIdentifier(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }
}
