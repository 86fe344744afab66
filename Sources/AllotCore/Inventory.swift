/// The amount of one resource class that a provider offers, with the rules for allocating it.
public struct Inventory: Hashable, Sendable, Codable {
    public var total: Int
    public var reserved: Int
    public var minUnit: Int
    public var maxUnit: Int
    public var stepSize: Int
    public var allocationRatio: Double

    /// Makes an inventory with Placement's defaults: nothing reserved, units of 1 up to `total`, ratio 1.
    public init(
        total: Int, reserved: Int = 0, minUnit: Int = 1, maxUnit: Int? = nil, stepSize: Int = 1,
        allocationRatio: Double = 1.0
    ) {
        self.total = total
        self.reserved = reserved
        self.minUnit = minUnit
        self.maxUnit = maxUnit ?? Limits.maxInt
        self.stepSize = stepSize
        self.allocationRatio = allocationRatio
    }

    /// What can be allocated in all: `(total - reserved) * allocation_ratio`, rounded down as upstream does; a
    /// product beyond the integers (a huge ratio, up to ±infinity) is the nearest one (upstream's int() fails there).
    public var capacity: Int {
        let raw = Double(total - reserved) * allocationRatio
        if raw >= Double(Int.max) { return Int.max }
        if raw <= Double(Int.min) { return Int.min }
        return raw.isNaN ? 0 : Int(raw)
    }

    /// Checks that the inventory is coherent: its capacity must be positive (or zero when
    /// `allowReservedEqualTotal`, microversion 1.26 and later).
    /// - Returns: the first problem found, or `nil`.
    public func validationProblem(allowReservedEqualTotal: Bool) -> InventoryProblem? {
        // Only the capacity counts, truncated toward zero as Python's int(): with a ratio below 1, a reserved
        // amount just above the total still leaves capacity 0 (upstream accepts that from 1.26 on).
        if allowReservedEqualTotal ? capacity < 0 : capacity <= 0 {
            return .reservedExceedsTotal
        }
        if minUnit > maxUnit { return .minUnitAboveMaxUnit }
        if stepSize > maxUnit { return .stepSizeAboveMaxUnit }
        return nil
    }

    /// Checks one allocation amount against the unit rules of this inventory.
    /// - Returns: the rule broken, or `nil` when `amount` is acceptable.
    public func unitProblem(amount: Int) -> AllocationUnitProblem? {
        if amount < minUnit { return .belowMinUnit(minUnit) }
        if amount > maxUnit { return .aboveMaxUnit(maxUnit) }
        if stepSize > 0, amount % stepSize != 0 { return .notMultipleOfStepSize(stepSize) }
        return nil
    }

    /// Whether `additional` more units fit on top of `used`.
    public func fits(additional: Int, used: Int) -> Bool {
        used + additional <= capacity
    }
}

/// Why an inventory is refused.
public enum InventoryProblem: Equatable, Sendable {
    case reservedExceedsTotal
    case minUnitAboveMaxUnit
    case stepSizeAboveMaxUnit
}

/// Why an allocation amount is refused by an inventory's unit rules.
public enum AllocationUnitProblem: Equatable, Sendable {
    case belowMinUnit(Int)
    case aboveMaxUnit(Int)
    case notMultipleOfStepSize(Int)
}
