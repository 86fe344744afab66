@testable import AllotPolicy
import Testing

@Suite("Generators")
struct PolicyGeneratorTests {
    /// Byte for byte what `oslopolicy-sample-generator --namespace placement` printed.
    @Test func sampleMatchesOsloPolicySampleGenerator() {
        let expected = Fixtures.text("sample-policy.yaml")
        let actual = PolicyGenerator.sampleYAML(PlacementPolicyDefaults.rules)
        #expect(!expected.isEmpty)
        #expect(actual == expected)
        if actual != expected {
            let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
            let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
            if let i = a.indices.first(where: { $0 >= e.count || a[$0] != e[$0] }), i < e.count {
                Issue.record("line \(i + 1): got «\(a[i])», want «\(e[i])»")
            }
        }
    }

    /// Byte for byte what `oslopolicy-policy-generator --namespace placement`
    /// printed with the operator fixture as policy file.
    @Test func effectiveMatchesOsloPolicyPolicyGenerator() throws {
        let enforcer = try Fixtures.enforcer(scenario: "operator", legacy: false)
        #expect(PolicyGenerator.effectiveYAML(enforcer) == Fixtures.text("effective-policy.yaml"))
    }

    @Test func sampleIsValidPolicyFileOnceUncommented() throws {
        let uncommented = PolicyGenerator.sampleYAML(PlacementPolicyDefaults.rules)
            .split(separator: "\n").filter { $0.hasPrefix("#\"") }.map { $0.dropFirst() }.joined(separator: "\n")
        let rules = try PolicyFile.parse(uncommented, fileName: "sample")
        #expect(rules.count == PlacementPolicyDefaults.rules.count)
        _ = try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules, overrides: rules)
    }

    @Test(arguments: [
        ("Default rule for service-to-service placement APIs.", ["# Default rule for service-to-service placement APIs."]),
        (String(repeating: "x", count: 75), ["# " + String(repeating: "x", count: 68), "# xxxxxxx"]),
        ("para one\n\n    literal  block\nnext", ["# para one", "#", "#     literal  block", "# next"]),
    ])
    func helpText(_ description: String, _ lines: [String]) {
        #expect(PolicyGenerator.helpText(description) == lines.joined(separator: "\n"))
    }

    /// Expected lines from Python's `textwrap.wrap(text, 70, initial_indent='# ', subsequent_indent='# ')`.
    @Test(arguments: [
        (String(repeating: "a", count: 59) + " service-to-service",
         ["# " + String(repeating: "a", count: 59) + " service-", "# to-service"]),
        (String(repeating: "a", count: 60) + " service-to-service",
         ["# " + String(repeating: "a", count: 60), "# service-to-service"]),
        (String(repeating: "a", count: 50) + " xx-y-zzzz a-b x" + String(repeating: "q", count: 80),
         ["# " + String(repeating: "a", count: 50) + " xx-y-zzzz a-b xqq", "# " + String(repeating: "q", count: 68),
          "# " + String(repeating: "q", count: 10)]),
    ])
    func wrapLikePythonTextwrap(_ text: String, _ lines: [String]) {
        #expect(TextWrap.wrap(text, width: 70, indent: "# ") == lines)
    }
}
