import AllotCore
import Foundation
/// Access rules by upstream Placement's policy names, with defaults and optional overrides.
///
/// A rule is a disjunction (`or`) of conjunctions (`and`) of checks: `role:NAME`, `project_id:%(project_id)s`,
/// `@` (always) and `!` (never). Defaults: reads need `admin`, `service` or `reader`; writes need `admin` or
/// `service`; `GET /usages` also lets a member or reader of the project in question read its own usage.
public struct Policy: Sendable {
    /// Overrides by rule name, e.g. `"placement:resource_providers:list": "role:admin"`.
    public var overrides: [String: String]
    /// Upstream's legacy behaviour (admin for everything), as the conformance tests expect.
    public var legacyAdminOnly: Bool

    public init(overrides: [String: String] = [:], legacyAdminOnly: Bool = false) {
        self.overrides = overrides
        self.legacyAdminOnly = legacyAdminOnly
    }

    static let reader = "role:admin or role:service or role:reader"
    static let writer = "role:admin or role:service"
    static let projectReader = "role:admin or role:service or role:reader and project_id:%(project_id)s"
        + " or role:member and project_id:%(project_id)s"

    /// Whether `identity` may call `rule` for a request about `projectID`.
    func allows(_ rule: String, identity: Identity, projectID: String?) -> Bool {
        let text = overrides[rule] ?? (legacyAdminOnly ? "role:admin" : Self.defaults[rule] ?? "role:admin")
        return text.components(separatedBy: " or ").contains { conjunction in
            conjunction.components(separatedBy: " and ").allSatisfy { check in
                let check = check.trimmingSpaces()
                if check == "@" { return true }
                if check == "!" { return false }
                if check.hasPrefix("role:") { return identity.roles.contains(String(check.dropFirst(5))) }
                if check == "project_id:%(project_id)s" {
                    return projectID != nil && identity.projectID == projectID
                }
                return false
            }
        }
    }

    /// Upstream's rule names with Allot's defaults.
    static let defaults: [String: String] = [
        "allot:compute:read": reader,
        "allot:compute:claim": writer,
        "allot:compute:audit": writer,
        "allot:compute:ledger": writer,
        "placement:resource_providers:list": reader,
        "placement:resource_providers:create": writer,
        "placement:resource_providers:show": reader,
        "placement:resource_providers:update": writer,
        "placement:resource_providers:delete": writer,
        "placement:resource_providers:inventories:list": reader,
        "placement:resource_providers:inventories:create": writer,
        "placement:resource_providers:inventories:show": reader,
        "placement:resource_providers:inventories:update": writer,
        "placement:resource_providers:inventories:delete": writer,
        "placement:resource_providers:aggregates:list": reader,
        "placement:resource_providers:aggregates:update": writer,
        "placement:resource_providers:usages": reader,
        "placement:resource_providers:allocations:list": reader,
        "placement:resource_providers:traits:list": reader,
        "placement:resource_providers:traits:update": writer,
        "placement:resource_providers:traits:delete": writer,
        "placement:resource_classes:list": reader,
        "placement:resource_classes:create": writer,
        "placement:resource_classes:show": reader,
        "placement:resource_classes:update": writer,
        "placement:resource_classes:delete": writer,
        "placement:traits:list": reader,
        "placement:traits:show": reader,
        "placement:traits:update": writer,
        "placement:traits:delete": writer,
        "placement:allocations:list": reader,
        "placement:allocations:manage": writer,
        "placement:allocations:update": writer,
        "placement:allocations:delete": writer,
        "placement:usages": projectReader,
        "placement:allocation_candidates:list": reader,
        "placement:reshaper:reshape": writer,
    ]
}

extension Endpoint {
    /// The upstream policy rule that guards this endpoint (`nil`: public).
    var policyRule: String? {
        switch self {
        case .root: return nil
        case .listProviders: return "placement:resource_providers:list"
        case .createProvider: return "placement:resource_providers:create"
        case .showProvider: return "placement:resource_providers:show"
        case .updateProvider: return "placement:resource_providers:update"
        case .deleteProvider: return "placement:resource_providers:delete"
        case .listInventories: return "placement:resource_providers:inventories:list"
        case .createInventory: return "placement:resource_providers:inventories:create"
        case .showInventory: return "placement:resource_providers:inventories:show"
        case .replaceInventories, .updateInventory: return "placement:resource_providers:inventories:update"
        case .deleteInventories, .deleteInventory: return "placement:resource_providers:inventories:delete"
        case .listResourceClasses: return "placement:resource_classes:list"
        case .createResourceClass: return "placement:resource_classes:create"
        case .showResourceClass: return "placement:resource_classes:show"
        case .updateResourceClass: return "placement:resource_classes:update"
        case .deleteResourceClass: return "placement:resource_classes:delete"
        case .listTraits: return "placement:traits:list"
        case .showTrait: return "placement:traits:show"
        case .createTrait: return "placement:traits:update"
        case .deleteTrait: return "placement:traits:delete"
        case .providerTraits: return "placement:resource_providers:traits:list"
        case .setProviderTraits: return "placement:resource_providers:traits:update"
        case .deleteProviderTraits: return "placement:resource_providers:traits:delete"
        case .providerAggregates: return "placement:resource_providers:aggregates:list"
        case .setProviderAggregates: return "placement:resource_providers:aggregates:update"
        case .consumerAllocations: return "placement:allocations:list"
        case .setConsumerAllocations: return "placement:allocations:update"
        case .deleteConsumerAllocations: return "placement:allocations:delete"
        case .postAllocations: return "placement:allocations:manage"
        case .providerAllocations: return "placement:resource_providers:allocations:list"
        case .providerUsages: return "placement:resource_providers:usages"
        case .usages: return "placement:usages"
        case .allocationCandidates: return "placement:allocation_candidates:list"
        case .reshaper: return "placement:reshaper:reshape"
        case .computeNodes, .computeNode, .computeInstances, .computeInstance, .computeMigrations, .computeMigration,
            .computeEvents:
            return "allot:compute:read"
        case .computeBuild, .computeDeleteInstance, .computeInstanceState, .computeInstanceAbort, .computeMove,
            .computeMigrationAction:
            return "allot:compute:claim"
        case .computeAudit: return "allot:compute:audit"
        case .computeLedgerInfo, .computeLedger: return "allot:compute:ledger"
        }
    }
}
