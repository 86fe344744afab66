import AllotPolicy
import Testing

@Suite("Enforcer")
struct PolicyEnforcerTests {
    let projectAdmin = Credentials(userID: "u1", projectID: "p1", roles: ["admin"])
    let reader = Credentials(userID: "u2", projectID: "p1", roles: ["reader"])
    let systemAdmin = Credentials(userID: "u3", roles: ["admin"], systemScope: "all")

    @Test func unknownRuleNameIsDenied() throws {
        let enforcer = try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules)
        #expect(!enforcer.authorize("placement:nonexistent", target: [:], credentials: projectAdmin).isAllowed)
        // A rule that exists only in the operator file is not registered either.
        let withExtra = try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules, overrides: ["extra": "@"])
        #expect(withExtra.authorize("extra", target: [:], credentials: projectAdmin)
            == .denied("policy extra is not registered"))
    }

    @Test func operatorFileOverridesDefaults() throws {
        let file = """
            # rule: references, system scope, not, role:
            "cloud_admin": "system_scope:all and role:admin"
            "placement:resource_providers:list": "rule:cloud_admin or (role:reader and not role:suspended)"
            "placement:traits:list": "role:admin or role:Auditor"
            """
        let entries = try PolicyFile.entries(file, fileName: "policy.yaml")
        let relaxed = try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules, overrides: entries,
                                         fileName: "policy.yaml", enforceScope: false, enforceNewDefaults: true)
        let strict = try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules, overrides: entries,
                                        fileName: "policy.yaml")
        let list = "placement:resource_providers:list"
        #expect(relaxed.authorize(list, credentials: systemAdmin) == .allowed)
        #expect(strict.authorize(list, credentials: systemAdmin)
            == .invalidScope(required: ["project"], tokenScope: .system))
        #expect(strict.authorize(list, credentials: reader) == .allowed)
        #expect(!strict.authorize(list, credentials: Credentials(projectID: "p1", roles: ["reader", "suspended"])).isAllowed)
        #expect(!strict.authorize(list, credentials: projectAdmin).isAllowed)
        #expect(strict.authorize("placement:traits:list", credentials: Credentials(projectID: "p", roles: ["auditor"]))
            == .allowed)
        #expect(strict.effectiveRules().first! == ("cloud_admin", "system_scope:all and role:admin"))
        #expect(strict.effectiveRules().count == PlacementPolicyDefaults.rules.count + 1)
    }

    @Test func unknownRuleReferenceRefusesToLoadNamingTheLine() throws {
        let file = """
            "placement:traits:list": "rule:admin_api"
            "placement:traits:show": "rule:admin_api or rule:no_such_rule"
            """
        let entries = try PolicyFile.entries(file, fileName: "/etc/placement/policy.yaml")
        #expect {
            try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules, overrides: entries,
                               fileName: "/etc/placement/policy.yaml")
        } throws: { error in
            guard case let .unknownRuleReference(reference, origin) = error as? PolicyError else { return false }
            return reference == "no_such_rule" && origin.line == 2 && origin.rule == "placement:traits:show"
                && "\(error)" == "/etc/placement/policy.yaml:2, rule \"placement:traits:show\": "
                + "\"rule:no_such_rule\" refers to a rule that is not defined"
        }
    }

    @Test func remoteCheckRefusesToLoad() throws {
        let entries = try PolicyFile.entries(
            "\n\"placement:usages\": \"http://authz.example/check\"\n", fileName: "policy.yaml")
        #expect {
            try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules, overrides: entries, fileName: "policy.yaml")
        } throws: { error in
            "\(error)" == "policy.yaml:2, rule \"placement:usages\": unsupported check \"http:\" in "
                + "\"http://authz.example/check\": Allot does not support oslo.policy's http: (remote HTTP) checks"
        }
    }

    @Test func badSyntaxRefusesToLoad() {
        #expect {
            try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules,
                               overrides: ["placement:usages": "role:admin or or role:reader"])
        } throws: { error in
            guard case let .syntax(_, _, origin) = error as? PolicyError else { return false }
            return origin.rule == "placement:usages"
        }
    }

    @Test func cyclesRefuseToLoad() {
        #expect {
            try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules,
                               overrides: ["a": "rule:b", "b": "role:x or rule:a"])
        } throws: { error in
            guard case let .cyclicRuleReference(cycle) = error as? PolicyError else { return false }
            return cycle == ["a", "b", "a"]
        }
    }

    @Test func duplicateDefaultsRefuse() {
        let rule = RuleDefault(name: "x", checkString: "@")
        #expect(throws: PolicyError.duplicateDefault(name: "x")) {
            try PolicyEnforcer(defaults: [rule, rule])
        }
    }

    @Test func legacyMergesOnlyUnoverriddenDeprecatedRules() throws {
        let enforcer = try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules,
                                          overrides: ["service_api": "role:nova"],
                                          enforceScope: false, enforceNewDefaults: false)
        #expect(enforcer.evaluatedCheck(for: "service_api")?.description == "role:nova")
        #expect(enforcer.evaluatedCheck(for: "admin_or_service_api")?.description
            == "((role:admin or role:service) or role:admin)")
        #expect(enforcer.evaluatedCheck(for: "admin_api")?.description == "role:admin")
    }

    @Test func scopeLessRulesSkipTheScopeCheck() throws {
        let enforcer = try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules)
        let systemReader = Credentials(userID: "u", projectID: "p1", roles: ["reader"], systemScope: "all")
        // project_reader_api has no scope_types upstream.
        #expect(enforcer.authorize("project_reader_api", target: ["project_id": "p1"], credentials: systemReader)
            == .allowed)
    }

    @Test func emptyOverrideAllowsEveryoneAndBangDeniesEveryone() throws {
        let enforcer = try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules,
                                          overrides: ["placement:traits:list": "", "placement:traits:show": "!"])
        let nobody = Credentials(projectID: "p1")
        #expect(enforcer.authorize("placement:traits:list", credentials: nobody) == .allowed)
        #expect(!enforcer.authorize("placement:traits:show", credentials: projectAdmin).isAllowed)
    }
}
