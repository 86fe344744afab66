import AllotPolicy
import Testing

@Suite("Policy files")
struct PolicyFileTests {
    @Test func yamlWithQuotedColonKeys() throws {
        let text = """
            # comment
            "placement:resource_providers:list": "rule:admin_api"
            'placement:traits:list': role:admin or role:service
            placement:usages: ""
            """
        let rules = try PolicyFile.parse(text, fileName: "policy.yaml")
        #expect(rules == [
            "placement:resource_providers:list": "rule:admin_api",
            "placement:traits:list": "role:admin or role:service",
            "placement:usages": "",
        ])
        #expect(try PolicyFile.entries(text, fileName: "policy.yaml").map(\.line) == [2, 3, 4])
    }

    @Test func json() throws {
        let text = """
            {
                "admin_api": "role:admin",
                "placement:usages": "rule:admin_api or (role:reader and project_id:%(project_id)s)"
            }
            """
        let entries = try PolicyFile.entries(text, fileName: "policy.json")
        #expect(entries == [
            PolicyOverride(name: "admin_api", checkString: "role:admin", line: 2),
            PolicyOverride(name: "placement:usages",
                           checkString: "rule:admin_api or (role:reader and project_id:%(project_id)s)", line: 3),
        ])
    }

    @Test(arguments: ["", "# only comments\n", "---\n", "{}"])
    func emptyFilesHaveNoRules(_ text: String) throws {
        #expect(try PolicyFile.parse(text, fileName: "policy.yaml").isEmpty)
    }

    @Test(arguments: [
        ("\"a\": \"role:x\"\n\"b\": 5\n", 2, "must be a string, found a number (5)"),
        ("\"a\": \"role:x\"\n\"b\":\n", 2, "must be a string, found null"),
        ("\"a\": \"role:x\"\n\"b\": !\n", 2, "a bare ! is a YAML tag"),
        ("\"a\": @\n", 1, "malformed"),
        ("\"a\": \"role:x\"\n\n\"b\": true\n", 3, "found a boolean"),
        ("\"a\": [[\"role:x\"]]\n", 1, "found a list"),
        ("\"a\": {\"b\": \"c\"}\n", 1, "found a mapping"),
        ("5: \"role:x\"\n", 1, "rule names must be strings"),
        ("- \"role:x\"\n", 1, "must be a mapping"),
        ("\"a\": \"role:x\"\n\"a\": \"role:y\"\n", 1, "more than once"),
        ("\"a\": \"role:x\"\n\"b\": \"role:y\n", 3, "malformed"),
        ("\"a\": \"role:x\"\n  \"b\": \"role:y\"\n", 2, "malformed"),
        ("{\"a\": \"role:x\",\n \"b\" \"role:y\"}\n", 2, "malformed"),
    ])
    func badFilesNameTheLine(_ text: String, _ line: Int, _ fragment: String) {
        do {
            _ = try PolicyFile.parse(text, fileName: "policy.yaml")
            Issue.record("parsed: \(text)")
        } catch {
            let message = "\(error)"
            #expect(message.hasPrefix("policy.yaml:\(line): "), "\(message)")
            #expect(message.contains(fragment), "\(message)")
        }
    }

    @Test func operatorFixtureLoads() throws {
        let entries = try PolicyFile.entries(Fixtures.text("operator-policy.yaml"), fileName: "operator-policy.yaml")
        #expect(entries.count == 10)
        #expect(entries.first == PolicyOverride(name: "cloud_admin", checkString: "system_scope:all and role:admin",
                                                line: 2))
        #expect(entries.last?.name == "placement:inventories:custom")
    }
}
