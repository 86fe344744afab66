import AllotCore
import Testing

@Suite("Microversion")
struct MicroversionTests {
    @Test(
        "parse reads X.Y",
        arguments: [
            ("1.0", Microversion(1, 0)), ("1.39", Microversion(1, 39)), ("1.05", Microversion(1, 5)),
            ("1.10", Microversion(1, 10)), ("2.1", Microversion(2, 1)), (" 1.2\t", Microversion(1, 2)),
        ])
    func parse(text: String, expected: Microversion) {
        #expect(Microversion.parse(text) == expected)
    }

    @Test("\"1.05\" is the same version as \"1.5\"")
    func leadingZero() throws {
        let version = try #require(Microversion.parse("1.05"))
        #expect(version == Microversion(1, 5))
        #expect(version.description == "1.5")
    }

    @Test("latest is the highest supported version")
    func latest() {
        #expect(Microversion.parse("latest") == Microversion.maximum)
        #expect(Microversion.maximum == Microversion(1, 39))
    }

    @Test(
        "parse refuses malformed text",
        arguments: [
            "pony.horse", "1.2.3", "", "1.", ".1", ".", "1", "-1.2", "+1.2", "1.-2", "1. 2", "1 .2", "1,2",
            "v1.2", "1.2a", "١.٢", "1.12345678901",
        ])
    func parseRefuses(text: String) {
        #expect(Microversion.parse(text) == nil)
    }

    @Test(
        "fromHeader picks the placement entry",
        arguments: [
            ("placement 1.20", Microversion(1, 20)), ("compute 2.1, placement 1.3", Microversion(1, 3)),
            ("placement 1.20, compute 2.1", Microversion(1, 20)), ("PLACEMENT 1.4", Microversion(1, 4)),
            ("placement\t1.7", Microversion(1, 7)), ("placement latest", Microversion.maximum),
            ("compute 2.1,placement 1.30", Microversion(1, 30)),
            ("placement 1.2, placement 1.5", Microversion(1, 5)),  // the last one wins
        ])
    func fromHeader(value: String, expected: Microversion) {
        #expect(Microversion.fromHeader(value) == .version(expected))
    }

    @Test(
        "fromHeader reports a header without a well-formed placement entry as absent",
        arguments: ["", "  ", "compute 2.1", "placement", "placement 1.2 extra", "placementt 1.2"])
    func fromHeaderAbsent(value: String) {
        #expect(Microversion.fromHeader(value) == .absent)
    }

    @Test(
        "fromHeader reports a placement entry it cannot read as malformed, with the offending text",
        arguments: [
            ("placement pony", "pony"), ("placement 1.2.3", "1.2.3"), ("compute 2.1, placement 1.", "1."),
            ("placement 1.2, placement pony", "pony"),
        ])
    func fromHeaderMalformed(value: String, offending: String) {
        #expect(Microversion.fromHeader(value) == .malformed(offending))
    }

    @Test("versions order numerically, major first")
    func ordering() {
        #expect(Microversion(1, 2) < Microversion(1, 10))
        #expect(Microversion(1, 39) < Microversion(2, 0))
        #expect(Microversion.minimum < Microversion.maximum)
        #expect(!(Microversion(1, 5) < Microversion(1, 5)))
        let shuffled = [Microversion(1, 10), Microversion(2, 0), Microversion(1, 2), Microversion(1, 0)]
        #expect(shuffled.sorted() == [Microversion(1, 0), Microversion(1, 2), Microversion(1, 10), Microversion(2, 0)])
        #expect(shuffled.max() == Microversion(2, 0))
    }

    @Test("isAtLeast is inclusive")
    func isAtLeast() {
        let version = Microversion(1, 26)
        #expect(version.isAtLeast(1, 26))
        #expect(version.isAtLeast(1, 25))
        #expect(!version.isAtLeast(1, 27))
        #expect(!version.isAtLeast(2, 0))
        #expect(Microversion(2, 0).isAtLeast(1, 39))
    }
}
