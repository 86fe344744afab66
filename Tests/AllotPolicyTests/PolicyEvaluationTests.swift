@testable import AllotPolicy
import Testing

@Suite("Check evaluation")
struct PolicyEvaluationTests {
    /// Each single check string evaluated by oslo.policy's `_checks._check`.
    @Test(arguments: Fixtures.expectations.evaluate)
    func matchesOslo(_ example: OsloExpectations.EvalCase) throws {
        let persona = try #require(Fixtures.expectations.personas[example.persona])
        let rule = try PolicyRule(parsing: example.rule)
        #expect(rule.check.evaluate(target: example.target, credentials: persona.credentials) == example.result,
                "\(example.rule) for \(example.persona)")
    }

    @Test func ruleReferencesResolveAndMissingOnesFailClosed() throws {
        let rules: [String: PolicyCheck] = ["admin": try PolicyRule(parsing: "role:admin").check]
        let admin = Credentials(projectID: "p", roles: ["ADMIN"])
        #expect(try PolicyRule(parsing: "rule:admin").check.evaluate(target: [:], credentials: admin, rules: rules))
        #expect(!(try PolicyRule(parsing: "rule:missing").check.evaluate(target: [:], credentials: admin, rules: rules)))
        #expect(try PolicyRule(parsing: "not rule:missing").check.evaluate(target: [:], credentials: admin, rules: rules))
    }

    @Test func absentCredentialAttributesNeverMatch() throws {
        // oslo.policy compares str(None) == "None"; Allot fails closed.
        let unscoped = Credentials(userID: "u", roles: ["reader"])
        #expect(!(try PolicyRule(parsing: "project_id:None").check.evaluate(target: [:], credentials: unscoped)))
        #expect(!(try PolicyRule(parsing: "project_id:%(project_id)s").check
            .evaluate(target: unscoped.defaultTarget, credentials: unscoped)))
    }

    @Test func dottedPathsIntoFlatCredentialsNeverMatch() throws {
        let user = Credentials(userID: "u", projectID: "p", roles: ["reader"])
        #expect(!(try PolicyRule(parsing: "user.id:u").check.evaluate(target: [:], credentials: user)))
        #expect(!(try PolicyRule(parsing: "roles.name:reader").check.evaluate(target: [:], credentials: user)))
    }

    @Test func tokenScope() {
        #expect(Credentials(projectID: "p", systemScope: "all").tokenScope == .system)
        #expect(Credentials(domainID: "d").tokenScope == .domain)
        #expect(Credentials(projectID: "p").tokenScope == .project)
        #expect(Credentials(userID: "u").tokenScope == .none)
        #expect(Credentials(userID: "u").enforcementScope == .project)
        #expect(Credentials(projectID: "p", systemScope: "").tokenScope == .project)
    }
}
