@testable import AllotPolicy
import Testing

@Suite("Check-string parser")
struct PolicyParserTests {
    /// Every case oslo.policy parses must give the same tree (compared via
    /// `str()`); every case it fails to understand must throw.
    @Test(arguments: Fixtures.expectations.parse)
    func matchesOsloParser(_ example: OsloExpectations.ParseCase) throws {
        if example.error {
            #expect(throws: PolicyError.self) { try PolicyRule(parsing: example.rule) }
        } else {
            let rule = try PolicyRule(parsing: example.rule)
            #expect(rule.description == example.tree, "\(example.rule)")
        }
    }

    @Test func precedenceAndFlattening() throws {
        #expect(try PolicyRule(parsing: "role:a or role:b and role:c").check
            == .or([.role(try PolicyMatch(parsing: "a")), .and([.role(try PolicyMatch(parsing: "b")),
                                                               .role(try PolicyMatch(parsing: "c"))])]))
        #expect(try PolicyRule(parsing: "not role:a and role:b").description == "(not role:a and role:b)")
        #expect(try PolicyRule(parsing: "role:a and (role:b or not role:c)").description
            == "(role:a and (role:b or not role:c))")
    }

    @Test func checkKinds() throws {
        #expect(try PolicyRule(parsing: "@").check == .alwaysTrue)
        #expect(try PolicyRule(parsing: "").check == .alwaysTrue)
        #expect(try PolicyRule(parsing: "!").check == .alwaysFalse)
        #expect(try PolicyRule(parsing: "rule:admin_api").check == .rule("admin_api"))
        guard case let .generic(kind, match) = try PolicyRule(parsing: "project_id:%(project_id)s").check else {
            Issue.record("not a generic check")
            return
        }
        #expect(kind == "project_id")
        #expect(match.raw == "%(project_id)s")
        #expect(try PolicyRule(parsing: "role:admin and rule:x or rule:y").check.referencedRules == ["x", "y"])
    }

    @Test(arguments: ["http://policy.example/check", "https://policy.example/%(project_id)s",
                      "role:admin or http://policy.example/check"])
    func remoteChecksAreRefused(_ source: String) {
        #expect {
            try PolicyRule(parsing: source)
        } throws: { error in
            guard case let .unsupportedCheck(kind, checkString, _) = error as? PolicyError else { return false }
            return kind.hasPrefix("http") && checkString == source
                && "\(error)".contains("does not support oslo.policy's \(kind): (remote HTTP) checks")
        }
    }

    @Test(arguments: [
        ("role:50%", "lone '%'"),
        ("project_id:%(project_id)d", "must be followed by 's'"),
        ("project_id:%s", "only %(name)s substitutions"),
        ("project_id:%(project_id", "unterminated"),
        ("1.5:%(x)s", "unsupported numeric literal"),
        ("007:%(x)s", "leading zeros"),
        ("a-b:%(x)s", "neither a credential name"),
        (":foo", "empty kind"),
        ("admin", "is not a check"),
        ("'admin'", "quoted string"),
        ("(role:admin", "unbalanced"),
        ("role:admin)", "unbalanced"),
        ("role:admin or", "ends with an operator"),
        ("or role:admin", "starts with an operator"),
        ("role:a role:b", "must be joined"),
        ("   ", "contains no check"),
    ])
    func syntaxErrorsExplainThemselves(_ source: String, _ fragment: String) {
        do {
            _ = try PolicyRule(parsing: source)
            Issue.record("\(source) parsed")
        } catch {
            #expect("\(error)".contains(fragment), "\(error)")
        }
    }

    @Test func keywordsAreCaseInsensitiveButKindsAreNot() throws {
        #expect(try PolicyRule(parsing: "NOT role:a AND role:b OR role:c").description
            == "((not role:a and role:b) or role:c)")
        // `ROLE:admin` is a generic check on a credential named ROLE, as upstream.
        guard case .generic = try PolicyRule(parsing: "ROLE:admin").check else {
            Issue.record("ROLE: must be generic")
            return
        }
    }
}
