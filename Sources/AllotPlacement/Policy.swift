import AllotCore
public import AllotPolicy
import Foundation
/// Access rules: upstream Placement 16.0.0's secure-RBAC defaults for every `placement:` rule, Allot's own
/// `allot:` rules for the compute API, an operator's overrides (oslo.policy YAML or JSON), evaluated as
/// oslo.policy does, scope types included.
public struct Policy: Sendable {
    public let enforcer: PolicyEnforcer

    /// - Parameters:
    ///   - overrides: rules from an operator's policy file, by name.
    ///   - fileName: that file, for error messages.
    ///   - legacy: upstream's deprecated defaults too (`enforce_new_defaults = False`): each base rule also admits
    ///     `role:admin`, whatever the role's project. Scope types are checked either way, as oslo.policy 6 does.
    /// - Throws: `PolicyError` naming the rule (and line) that does not parse or refers to an unknown rule.
    public init(overrides: [PolicyOverride], fileName: String? = nil, legacy: Bool = false) throws(PolicyError) {
        enforcer = try PolicyEnforcer(
            defaults: Self.defaults, overrides: overrides, fileName: fileName, enforceScope: true,
            enforceNewDefaults: !legacy)
    }

    /// The defaults alone, or with upstream's deprecated ones (`legacy`).
    public init(legacy: Bool = false) {
        do {
            try self.init(overrides: [], legacy: legacy)
        } catch {
            // The built-in rules are constants that PolicyTests parse; they cannot fail at run time.
            preconditionFailure("built-in policy defaults do not parse: \(error)")
        }
    }

    /// Overrides given as `name: check string` (tests, the environment).
    public init(overrides: [String: String], legacy: Bool = false) throws(PolicyError) {
        enforcer = try PolicyEnforcer(
            defaults: Self.defaults, overrides: overrides, enforceScope: true, enforceNewDefaults: !legacy)
    }

    /// Every rule Allot knows: upstream's base and `placement:` rules, then Allot's compute API rules.
    public static let defaults: [RuleDefault] = PlacementPolicyDefaults.rules + allotRules

    /// Allot's compute API (`/compute/v1`) and its agents' ledger protocol.
    public static let allotRules: [RuleDefault] = [
        RuleDefault(
            name: "allot:compute:read", checkString: "rule:admin_or_service_api or role:reader",
            description: "Read compute nodes, instances, migrations and the event stream.", scopeTypes: ["project"],
            operations: [
                .init(method: "GET", path: "/compute/v1/nodes"), .init(method: "GET", path: "/compute/v1/nodes/{uuid}"),
                .init(method: "GET", path: "/compute/v1/instances"),
                .init(method: "GET", path: "/compute/v1/instances/{uuid}"),
                .init(method: "GET", path: "/compute/v1/migrations"),
                .init(method: "GET", path: "/compute/v1/migrations/{uuid}"),
                .init(method: "GET", path: "/compute/v1/events"),
            ]),
        RuleDefault(
            name: "allot:compute:claim", checkString: "rule:admin_or_service_api",
            description: "Claim, release and move instances (builds, deletes, state changes, moves).",
            scopeTypes: ["project"],
            operations: [
                .init(method: "POST", path: "/compute/v1/instances"),
                .init(method: "DELETE", path: "/compute/v1/instances/{uuid}"),
                .init(method: "POST", path: "/compute/v1/instances/{uuid}/state"),
                .init(method: "POST", path: "/compute/v1/instances/{uuid}/abort"),
                .init(method: "POST", path: "/compute/v1/migrations"),
                .init(method: "POST", path: "/compute/v1/migrations/{uuid}/{action}"),
            ]),
        RuleDefault(
            name: "allot:compute:audit", checkString: "rule:admin_or_service_api",
            description: "Run an audit of this host's nodes now.", scopeTypes: ["project"],
            operations: [.init(method: "POST", path: "/compute/v1/audit")]),
        RuleDefault(
            name: "allot:compute:ledger", checkString: "rule:admin_or_service_api",
            description: "The compute ledger protocol of Allot's agents.", scopeTypes: ["project"],
            operations: [
                .init(method: "GET", path: "/compute/v1/ledger"), .init(method: "POST", path: "/compute/v1/ledger/{call}"),
            ]),
    ]
}

extension PlacementResponder {
    /// Decides whether `identity` may call `endpoint`, before the body is read.
    /// - Throws: `403` naming the rule when the policy says no.
    func authorize(_ endpoint: Endpoint, identity: Identity, query: [(String, String)]) throws {
        guard let rule = endpoint.policyRule else { return }
        let credentials = identity
        var target = credentials.defaultTarget
        if endpoint == .usages {
            // As upstream's handler: the target is the project asked about (webob's `GET.get`: the last value).
            target = [:]
            if let project = query.last(where: { $0.0 == "project_id" })?.1 {
                target["project_id"] = project
            }
        }
        switch configuration.policy.enforcer.authorize(rule, target: target, credentials: credentials) {
        case .allowed:
            return
        case .denied:
            throw PlacementError(.forbidden, "Policy does not allow \(rule) to be performed.").escaping
        case .invalidScope:
            // Upstream turns oslo.policy's InvalidScope into PolicyNotAuthorized(action): the rule's name alone.
            throw PlacementError(.forbidden, rule).escaping
        }
    }
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
        // Explaining candidates shows what listing them shows, and no more (capacity, traits, aggregates).
        case .allocationCandidates, .computeFit: return "placement:allocation_candidates:list"
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
