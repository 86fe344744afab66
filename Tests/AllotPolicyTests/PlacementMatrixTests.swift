import AllotPolicy
import Testing

/// Every registered placement rule × every persona, against upstream
/// oslo.policy's decisions (see `Fixtures/generate_fixtures.py`).
@Suite("Placement 16.0.0 decision matrix")
struct PlacementMatrixTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var scenario: String
        var legacy: Bool
        var testDescription: String { "\(scenario) / \(legacy ? "legacy" : "new defaults")" }
    }

    static let cases: [Case] = ["defaults", "operator", "renamed_deprecated"].flatMap {
        [Case(scenario: $0, legacy: false), Case(scenario: $0, legacy: true)]
    }

    private func expected(_ c: Case) throws -> OsloExpectations.Mode {
        try #require(Fixtures.expectations.scenarios[c.scenario]?[c.legacy ? "legacy" : "new"])
    }

    @Test(arguments: cases)
    func decisionsMatchOslo(_ c: Case) throws {
        let enforcer = try Fixtures.enforcer(scenario: c.scenario, legacy: c.legacy)
        let mode = try expected(c)
        let target = Fixtures.expectations.target
        var compared = 0
        for (rule, row) in mode.decisions {
            for (personaName, decision) in row {
                let persona = try #require(Fixtures.expectations.personas[personaName])
                let actual = enforcer.authorize(rule, target: target, credentials: persona.credentials)
                #expect(actual.fixtureName == decision, "\(rule) for \(personaName): \(actual)")
                compared += 1
            }
        }
        #expect(compared == PlacementPolicyDefaults.rules.count * Fixtures.expectations.personas.count)
    }

    /// The merged trees (`new or deprecated` in legacy mode, renamed
    /// deprecated overrides, operator overrides) print as upstream's.
    @Test(arguments: cases)
    func evaluatedTreesMatchOslo(_ c: Case) throws {
        let enforcer = try Fixtures.enforcer(scenario: c.scenario, legacy: c.legacy)
        for (rule, tree) in try expected(c).evaluated {
            #expect(enforcer.evaluatedCheck(for: rule)?.description == tree, "\(rule)")
        }
    }

    @Test func defaultsAreExactlyUpstreams() throws {
        let names = PlacementPolicyDefaults.rules.map(\.name)
        let upstream = try #require(Fixtures.expectations.scenarios["defaults"]?["new"]).decisions.keys
        #expect(Set(names) == Set(upstream))
        #expect(names.count == 38)
        #expect(Set(names).count == names.count)
        #expect(Fixtures.expectations.versions["openstack-placement"] == "16.0.0")
    }

    /// Placement 16.0.0 runs with oslo.policy >= 6, whose only switch left is
    /// enforce_new_defaults (default True); scope types are always enforced.
    @Test func upstreamConfigurationDefaults() {
        #expect(Fixtures.expectations.defaults.enforce_new_defaults == true)
        #expect(Fixtures.expectations.defaults.has_enforce_scope_option == false)
    }

    /// What legacy mode (`--legacy-policy`) lets a reader-only or role-less
    /// project token do: the same as new defaults — only the usages rules
    /// for its own project.
    @Test func legacyModeForReadersAndRolelessTokens() throws {
        let legacy = try Fixtures.enforcer(scenario: "defaults", legacy: true)
        let reader = Credentials(userID: "u", projectID: "p1", roles: ["reader"])
        let nobody = Credentials(userID: "u", projectID: "p1", roles: [])
        let readerAllowed = PlacementPolicyDefaults.rules.map(\.name).filter {
            legacy.authorize($0, target: ["project_id": "p1"], credentials: reader).isAllowed
        }
        #expect(readerAllowed == ["project_reader_api", "admin_or_project_reader_or_service_api", "placement:usages"])
        #expect(!legacy.authorize("placement:usages", target: ["project_id": "p2"], credentials: reader).isAllowed)
        #expect(PlacementPolicyDefaults.rules.allSatisfy {
            !legacy.authorize($0.name, target: ["project_id": "p1"], credentials: nobody).isAllowed
        })
    }

    @Test func legacyModeAdmitsAdminsEverywhereAndIgnoresScope() throws {
        let legacy = try Fixtures.enforcer(scenario: "defaults", legacy: true)
        let modern = try Fixtures.enforcer(scenario: "defaults", legacy: false)
        let systemAdmin = Credentials(userID: "u", roles: ["admin"], systemScope: "all")
        let projectAdmin = Credentials(userID: "u", projectID: "p1", roles: ["admin"])
        #expect(legacy.authorize("placement:reshaper:reshape", credentials: projectAdmin) == .allowed)
        #expect(modern.authorize("placement:reshaper:reshape", credentials: projectAdmin)
            == .denied("placement:reshaper:reshape is disallowed by policy"))
        #expect(legacy.authorize("placement:resource_providers:list", credentials: systemAdmin) == .allowed)
        #expect(modern.authorize("placement:resource_providers:list", credentials: systemAdmin)
            == .invalidScope(required: ["project"], tokenScope: .system))
        #expect(legacy.evaluatedCheck(for: "service_api")?.description == "(role:service or role:admin)")
    }
}
