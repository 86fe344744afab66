/// The policy defaults of OpenStack Placement 16.0.0 (`placement/policies`),
/// in upstream's registration order.
public enum PlacementPolicyDefaults {
    /// `rule:admin_or_service_api`, the default of most placement rules.
    public static let adminOrService = "rule:admin_or_service_api"
    /// `rule:service_api`.
    public static let service = "rule:service_api"
    /// `rule:admin_or_project_reader_or_service_api`.
    public static let adminOrProjectReaderOrService = "rule:admin_or_project_reader_or_service_api"

    /// `base._DEPRECATED_REASON`, verbatim.
    static let deprecatedReason = """

        Placement API policies are introducing new default roles with scope_type
        capabilities. Old policies are deprecated and silently going to be ignored
        in the placement 6.0.0 (Xena) release.

        """

    /// `base.DEPRECATED_ADMIN_POLICY`: note its name includes `rule:`.
    public static let deprecatedAdminPolicy = RuleDefault.Deprecated(
        name: "rule:admin_api", checkString: "role:admin", reason: deprecatedReason, since: "W")

    /// Base rules and every `placement:` rule.
    public static let rules: [RuleDefault] = base + resourceProviders + resourceClasses + inventories
        + aggregates + usages + traits + allocations + allocationCandidates + reshaper

    /// `placement/policies/base.py`.
    public static let base: [RuleDefault] = [
        RuleDefault(name: "admin_api", checkString: "role:admin",
                    description: "Default rule for most placement APIs.", scopeTypes: ["project"]),
        RuleDefault(name: "service_api", checkString: "role:service",
                    description: "Default rule for service-to-service placement APIs.",
                    scopeTypes: ["project"], deprecatedRule: deprecatedAdminPolicy),
        RuleDefault(name: "admin_or_service_api", checkString: "role:admin or role:service",
                    description: "Default rule for most placement APIs.",
                    scopeTypes: ["project"], deprecatedRule: deprecatedAdminPolicy),
        RuleDefault(name: "project_reader_api", checkString: "role:reader and project_id:%(project_id)s",
                    description: "Default rule for Project level reader APIs.",
                    deprecatedRule: deprecatedAdminPolicy),
        RuleDefault(name: "admin_or_project_reader_or_service_api",
                    checkString: "role:admin or rule:project_reader_api or role:service",
                    description: "Default rule for project level reader APIs.",
                    scopeTypes: ["project"], deprecatedRule: deprecatedAdminPolicy),
    ]

    /// A project-scoped `DocumentedRuleDefault`.
    private static func documented(
        _ name: String, _ check: String, _ description: String, _ operations: [(String, String)]
    ) -> RuleDefault {
        RuleDefault(name: name, checkString: check, description: description, scopeTypes: ["project"],
                    operations: operations.map { RuleDefault.Operation(method: $0.0, path: $0.1) })
    }

    static let resourceProviders: [RuleDefault] = [
        documented("placement:resource_providers:list", adminOrService, "List resource providers.",
                   [("GET", "/resource_providers")]),
        documented("placement:resource_providers:create", adminOrService, "Create resource provider.",
                   [("POST", "/resource_providers")]),
        documented("placement:resource_providers:show", adminOrService, "Show resource provider.",
                   [("GET", "/resource_providers/{uuid}")]),
        documented("placement:resource_providers:update", adminOrService, "Update resource provider.",
                   [("PUT", "/resource_providers/{uuid}")]),
        documented("placement:resource_providers:delete", adminOrService, "Delete resource provider.",
                   [("DELETE", "/resource_providers/{uuid}")]),
    ]

    static let resourceClasses: [RuleDefault] = [
        documented("placement:resource_classes:list", adminOrService, "List resource classes.",
                   [("GET", "/resource_classes")]),
        documented("placement:resource_classes:create", adminOrService, "Create resource class.",
                   [("POST", "/resource_classes")]),
        documented("placement:resource_classes:show", adminOrService, "Show resource class.",
                   [("GET", "/resource_classes/{name}")]),
        documented("placement:resource_classes:update", adminOrService, "Update resource class.",
                   [("PUT", "/resource_classes/{name}")]),
        documented("placement:resource_classes:delete", adminOrService, "Delete resource class.",
                   [("DELETE", "/resource_classes/{name}")]),
    ]

    private static let inventoriesPath = "/resource_providers/{uuid}/inventories"

    static let inventories: [RuleDefault] = [
        documented("placement:resource_providers:inventories:list", adminOrService,
                   "List resource provider inventories.", [("GET", inventoriesPath)]),
        documented("placement:resource_providers:inventories:create", adminOrService,
                   "Create one resource provider inventory.", [("POST", inventoriesPath)]),
        documented("placement:resource_providers:inventories:show", adminOrService,
                   "Show resource provider inventory.", [("GET", inventoriesPath + "/{resource_class}")]),
        documented("placement:resource_providers:inventories:update", adminOrService,
                   "Update resource provider inventory.",
                   [("PUT", inventoriesPath), ("PUT", inventoriesPath + "/{resource_class}")]),
        documented("placement:resource_providers:inventories:delete", adminOrService,
                   "Delete resource provider inventory.",
                   [("DELETE", inventoriesPath), ("DELETE", inventoriesPath + "/{resource_class}")]),
    ]

    static let aggregates: [RuleDefault] = [
        documented("placement:resource_providers:aggregates:list", adminOrService,
                   "List resource provider aggregates.", [("GET", "/resource_providers/{uuid}/aggregates")]),
        documented("placement:resource_providers:aggregates:update", adminOrService,
                   "Update resource provider aggregates.", [("PUT", "/resource_providers/{uuid}/aggregates")]),
    ]

    static let usages: [RuleDefault] = [
        documented("placement:resource_providers:usages", adminOrService,
                   "List resource provider usages.", [("GET", "/resource_providers/{uuid}/usages")]),
        // Admin in any project (legacy admin) can get usage of other
        // projects; project readers only that of their own (the handler
        // passes target {'project_id': <project_id query parameter>}).
        documented("placement:usages", adminOrProjectReaderOrService,
                   "List total resource usages for a given project.", [("GET", "/usages")]),
    ]

    static let traits: [RuleDefault] = [
        documented("placement:traits:list", adminOrService, "List traits.", [("GET", "/traits")]),
        documented("placement:traits:show", adminOrService, "Show trait.", [("GET", "/traits/{name}")]),
        documented("placement:traits:update", adminOrService, "Update trait.", [("PUT", "/traits/{name}")]),
        documented("placement:traits:delete", adminOrService, "Delete trait.", [("DELETE", "/traits/{name}")]),
        documented("placement:resource_providers:traits:list", adminOrService,
                   "List resource provider traits.", [("GET", "/resource_providers/{uuid}/traits")]),
        documented("placement:resource_providers:traits:update", adminOrService,
                   "Update resource provider traits.", [("PUT", "/resource_providers/{uuid}/traits")]),
        documented("placement:resource_providers:traits:delete", adminOrService,
                   "Delete resource provider traits.", [("DELETE", "/resource_providers/{uuid}/traits")]),
    ]

    static let allocations: [RuleDefault] = [
        documented("placement:allocations:manage", adminOrService, "Manage allocations.",
                   [("POST", "/allocations")]),
        documented("placement:allocations:list", adminOrService, "List allocations.",
                   [("GET", "/allocations/{consumer_uuid}")]),
        documented("placement:allocations:update", adminOrService, "Update allocations.",
                   [("PUT", "/allocations/{consumer_uuid}")]),
        documented("placement:allocations:delete", adminOrService, "Delete allocations.",
                   [("DELETE", "/allocations/{consumer_uuid}")]),
        documented("placement:resource_providers:allocations:list", adminOrService,
                   "List resource provider allocations.", [("GET", "/resource_providers/{uuid}/allocations")]),
    ]

    static let allocationCandidates: [RuleDefault] = [
        documented("placement:allocation_candidates:list", adminOrService, "List allocation candidates.",
                   [("GET", "/allocation_candidates")]),
    ]

    static let reshaper: [RuleDefault] = [
        documented("placement:reshaper:reshape", service, "Reshape Inventory and Allocations.",
                   [("POST", "/reshaper")]),
    ]
}
