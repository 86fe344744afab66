import AllotCore
import Testing

@Suite("Inventory")
struct InventoryTests {
    @Test("defaults follow Placement: nothing reserved, units of 1 up to the integer limit, ratio 1")
    func defaults() {
        let inventory = Inventory(total: 8)
        #expect(inventory.reserved == 0)
        #expect(inventory.minUnit == 1)
        #expect(inventory.maxUnit == Limits.maxInt)
        #expect(inventory.stepSize == 1)
        #expect(inventory.allocationRatio == 1.0)
        #expect(inventory.capacity == 8)
    }

    struct CapacityCase: Sendable, CustomTestStringConvertible {
        var total: Int
        var reserved: Int
        var ratio: Double
        var expected: Int
        var testDescription: String { "(\(total) - \(reserved)) * \(ratio) = \(expected)" }
    }

    @Test(
        "capacity is (total - reserved) * allocation_ratio, rounded down",
        arguments: [
            CapacityCase(total: 10, reserved: 0, ratio: 1.0, expected: 10),
            CapacityCase(total: 10, reserved: 2, ratio: 1.0, expected: 8),
            CapacityCase(total: 10, reserved: 10, ratio: 1.0, expected: 0),
            CapacityCase(total: 10, reserved: 0, ratio: 1.5, expected: 15),
            CapacityCase(total: 3, reserved: 0, ratio: 1.5, expected: 4),  // 4.5
            CapacityCase(total: 7, reserved: 0, ratio: 0.5, expected: 3),  // 3.5
            CapacityCase(total: 1, reserved: 0, ratio: 0.999, expected: 0),
            CapacityCase(total: 16, reserved: 4, ratio: 16.0, expected: 192),
            CapacityCase(total: 5, reserved: 2, ratio: 0.7, expected: 2),  // 2.1
            CapacityCase(total: 0, reserved: 0, ratio: 1.0, expected: 0),
        ])
    func capacity(_ c: CapacityCase) {
        #expect(Inventory(total: c.total, reserved: c.reserved, allocationRatio: c.ratio).capacity == c.expected)
    }

    @Test("capacity saturates at Int.max instead of trapping on a huge ratio")
    func capacitySaturates() {
        let inventory = Inventory(total: Limits.maxInt, allocationRatio: Limits.maxAllocationRatio)
        #expect(inventory.capacity == Int.max)
    }

    @Test("reserved above total is refused whatever the microversion", arguments: [false, true])
    func reservedAboveTotal(allowEqual: Bool) {
        let inventory = Inventory(total: 4, reserved: 5)
        #expect(inventory.validationProblem(allowReservedEqualTotal: allowEqual) == .reservedExceedsTotal)
    }

    @Test("reserved just above total with a ratio below 1 leaves capacity int(-0.5) == 0, as upstream: accepted from 1.26")
    func reservedAboveTotalTruncatesToZero() {
        let inventory = Inventory(total: 1, reserved: 2, allocationRatio: 0.5)
        #expect(inventory.validationProblem(allowReservedEqualTotal: false) == .reservedExceedsTotal)
        #expect(inventory.validationProblem(allowReservedEqualTotal: true) == nil)
    }

    @Test("reserved equal to total is refused before 1.26 and accepted from 1.26")
    func reservedEqualTotal() {
        let inventory = Inventory(total: 4, reserved: 4)
        #expect(inventory.validationProblem(allowReservedEqualTotal: false) == .reservedExceedsTotal)
        #expect(inventory.validationProblem(allowReservedEqualTotal: true) == nil)
    }

    @Test("an inventory without capacity (total 0) is refused before 1.26 and accepted from 1.26")
    func emptyInventory() {
        let inventory = Inventory(total: 0)
        #expect(inventory.validationProblem(allowReservedEqualTotal: false) == .reservedExceedsTotal)
        #expect(inventory.validationProblem(allowReservedEqualTotal: true) == nil)
    }

    @Test("a capacity that rounds down to zero counts as no capacity")
    func capacityRoundingToZero() {
        let inventory = Inventory(total: 1, allocationRatio: 0.5)
        #expect(inventory.capacity == 0)
        #expect(inventory.validationProblem(allowReservedEqualTotal: false) == .reservedExceedsTotal)
        #expect(inventory.validationProblem(allowReservedEqualTotal: true) == nil)
    }

    @Test("a coherent inventory has no problem", arguments: [false, true])
    func coherent(allowEqual: Bool) {
        let inventory = Inventory(total: 64, reserved: 8, minUnit: 2, maxUnit: 32, stepSize: 2, allocationRatio: 1.5)
        #expect(inventory.validationProblem(allowReservedEqualTotal: allowEqual) == nil)
    }

    @Test("min_unit above max_unit is refused")
    func minAboveMax() {
        let inventory = Inventory(total: 10, minUnit: 5, maxUnit: 4)
        #expect(inventory.validationProblem(allowReservedEqualTotal: true) == .minUnitAboveMaxUnit)
    }

    @Test("step_size above max_unit is refused")
    func stepAboveMax() {
        let inventory = Inventory(total: 10, maxUnit: 4, stepSize: 5)
        #expect(inventory.validationProblem(allowReservedEqualTotal: true) == .stepSizeAboveMaxUnit)
    }

    @Test("the reserved problem is reported before the unit problems")
    func problemOrder() {
        let inventory = Inventory(total: 1, reserved: 2, minUnit: 9, maxUnit: 3, stepSize: 7)
        #expect(inventory.validationProblem(allowReservedEqualTotal: true) == .reservedExceedsTotal)
    }

    struct UnitCase: Sendable, CustomTestStringConvertible {
        var amount: Int
        var expected: AllocationUnitProblem?
        var testDescription: String { "\(amount) -> \(expected.map { "\($0)" } ?? "ok")" }
    }

    @Test(
        "unit rules: min_unit 2, max_unit 10, step_size 2",
        arguments: [
            UnitCase(amount: 0, expected: .belowMinUnit(2)),
            UnitCase(amount: 1, expected: .belowMinUnit(2)),
            UnitCase(amount: 2, expected: nil),
            UnitCase(amount: 3, expected: .notMultipleOfStepSize(2)),
            UnitCase(amount: 4, expected: nil),
            UnitCase(amount: 9, expected: .notMultipleOfStepSize(2)),
            UnitCase(amount: 10, expected: nil),
            UnitCase(amount: 11, expected: .aboveMaxUnit(10)),
            UnitCase(amount: 12, expected: .aboveMaxUnit(10)),
        ])
    func unitRules(_ c: UnitCase) {
        let inventory = Inventory(total: 100, minUnit: 2, maxUnit: 10, stepSize: 2)
        #expect(inventory.unitProblem(amount: c.amount) == c.expected)
    }

    @Test("the default unit rules accept any positive amount and refuse zero")
    func defaultUnitRules() {
        let inventory = Inventory(total: 4)
        #expect(inventory.unitProblem(amount: 1) == nil)
        #expect(inventory.unitProblem(amount: 1_000_000) == nil)
        #expect(inventory.unitProblem(amount: 0) == .belowMinUnit(1))
    }

    struct FitCase: Sendable, CustomTestStringConvertible {
        var used: Int
        var additional: Int
        var fits: Bool
        var testDescription: String { "\(used) used + \(additional) -> \(fits ? "fits" : "does not fit")" }
    }

    @Test(
        "fits compares used + additional with the capacity (12 - 2 reserved = 10)",
        arguments: [
            FitCase(used: 0, additional: 10, fits: true),
            FitCase(used: 5, additional: 5, fits: true),
            FitCase(used: 9, additional: 1, fits: true),
            FitCase(used: 5, additional: 6, fits: false),
            FitCase(used: 10, additional: 1, fits: false),
            FitCase(used: 0, additional: 11, fits: false),
        ])
    func fits(_ c: FitCase) {
        let inventory = Inventory(total: 12, reserved: 2)
        #expect(inventory.fits(additional: c.additional, used: c.used) == c.fits)
    }

    @Test("fits uses the overcommitted capacity")
    func fitsWithRatio() {
        let inventory = Inventory(total: 4, allocationRatio: 4.0)
        #expect(inventory.fits(additional: 16, used: 0))
        #expect(!inventory.fits(additional: 1, used: 16))
    }
}
