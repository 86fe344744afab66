import AllotPolicy
import Foundation

/// Ground truth produced by `Fixtures/generate_fixtures.py` running upstream
/// oslo.policy with placement 16.0.0's registered defaults.
struct OsloExpectations: Decodable, Sendable {
    struct Persona: Decodable, Sendable {
        var user_id: String?
        var project_id: String?
        var domain_id: String?
        var system_scope: String?
        var roles: [String]?
        var service_roles: [String]?

        var credentials: Credentials {
            Credentials(userID: user_id, projectID: project_id, domainID: domain_id, roles: roles ?? [],
                        systemScope: system_scope, serviceRoles: service_roles ?? [])
        }
    }

    struct ParseCase: Decodable, Sendable {
        var rule: String
        var tree: String
        var error: Bool
    }

    struct EvalCase: Decodable, Sendable {
        var rule: String
        var persona: String
        var target: [String: String]
        var result: Bool
    }

    struct Mode: Decodable, Sendable {
        /// rule -> persona -> "allowed" | "denied" | "invalid_scope"
        var decisions: [String: [String: String]]
        /// rule -> str(enforcer.rules[rule])
        var evaluated: [String: String]
    }

    struct Defaults: Decodable, Sendable {
        var enforce_new_defaults: Bool
        var has_enforce_scope_option: Bool
    }

    var versions: [String: String]
    var defaults: Defaults
    var personas: [String: Persona]
    var target: [String: String]
    var parse: [ParseCase]
    var evaluate: [EvalCase]
    /// scenario ("defaults", "operator", "renamed_deprecated") -> "new"/"legacy" -> results
    var scenarios: [String: [String: Mode]]
}

enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func text(_ name: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    static let expectations: OsloExpectations = {
        let data = (try? Data(contentsOf: directory.appendingPathComponent("oslo_expectations.json"))) ?? Data()
        do {
            return try JSONDecoder().decode(OsloExpectations.self, from: data)
        } catch {
            fatalError("cannot read oslo_expectations.json: \(error)")
        }
    }()

    /// Operator policy files of the scenarios, as the generator script wrote them.
    static func policyFile(for scenario: String) -> String? {
        switch scenario {
        case "defaults": return nil
        case "operator": return text("operator-policy.yaml")
        case "renamed_deprecated":
            return "\"rule:admin_api\": \"role:superuser\"\n\"service_api\": \"role:service or role:nova\"\n"
        default: fatalError("unknown scenario \(scenario)")
        }
    }

    static func enforcer(scenario: String, legacy: Bool) throws -> PolicyEnforcer {
        let entries = try policyFile(for: scenario).map { try PolicyFile.entries($0, fileName: "\(scenario).yaml") } ?? []
        return try PolicyEnforcer(defaults: PlacementPolicyDefaults.rules, overrides: entries,
                                  fileName: "\(scenario).yaml", enforceScope: !legacy, enforceNewDefaults: !legacy)
    }
}

extension PolicyDecision {
    /// The fixture's spelling of a decision.
    var fixtureName: String {
        switch self {
        case .allowed: "allowed"
        case .denied: "denied"
        case .invalidScope: "invalid_scope"
        }
    }
}
