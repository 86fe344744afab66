public import AllotCore
import SQLKit

/// Usage totals for `GET /usages`, by consumer type.
public struct UsageTotals: Sendable {
    /// Amounts by class over all matching consumers.
    public var total: [String: Int]
    /// Per consumer type (`unknown` for untyped consumers): the count of consumers and amounts by class.
    public var byType: [String: (consumers: Int, amounts: [String: Int])]
}

extension SQLPlacementStore {
    /// A provider's usage of every class it has inventory or allocations of.
    /// - Throws: 404 when the provider does not exist.
    public func usages(providerUUID: String) async throws -> (ResourceProvider, [String: Int]) {
        try await database.readTransaction { tx in
            let provider = try await tx.requireProvider(uuid: providerUUID)
            var result: [String: Int] = [:]
            for row in try await tx.rows(
                """
                SELECT rc.name FROM inventories i JOIN resource_classes rc ON rc.id = i.resource_class_id
                WHERE i.resource_provider_id = \(bind: provider.id)
                """)
            {
                result[try row.decode(column: "name", as: String.self)] = 0
            }
            result.merge(try await tx.providerUsage(providerID: provider.id)) { _, used in used }
            return (provider.model, result)
        }
    }

    /// Usage totals of a project, optionally narrowed to a user and a consumer type
    /// (`all` matches every type, `unknown` matches untyped consumers).
    public func usageTotals(projectID: String, userID: String?, consumerType: String?) async throws -> UsageTotals {
        try await database.readTransaction { tx in
            var query = SQLQueryString(
                """
                SELECT c.uuid, ct.name AS consumer_type, rc.name AS class_name, CAST(SUM(a.used) AS BIGINT) AS used
                FROM allocations a JOIN consumers c ON c.uuid = a.consumer_id
                JOIN projects p ON p.id = c.project_id JOIN users u ON u.id = c.user_id
                JOIN resource_classes rc ON rc.id = a.resource_class_id
                LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id
                WHERE p.external_id =
                """)
            query.appendInterpolation(bind: projectID)
            if let userID { query.appendInterpolation(" AND u.external_id = \(bind: userID)" as SQLQueryString) }
            if let consumerType, consumerType != "all" {
                if consumerType == "unknown" {
                    query.appendInterpolation(unsafeRaw: " AND c.consumer_type_id IS NULL")
                } else {
                    query.appendInterpolation(" AND ct.name = \(bind: consumerType)" as SQLQueryString)
                }
            }
            query.appendInterpolation(unsafeRaw: " GROUP BY c.uuid, ct.name, rc.name")
            var totals = UsageTotals(total: [:], byType: [:])
            var consumersByType: [String: Set<String>] = [:]
            for row in try await tx.rows(query) {
                let type = try row.decode(column: "consumer_type", as: String?.self) ?? "unknown"
                let name = try row.decode(column: "class_name", as: String.self)
                let used = try row.decode(column: "used", as: Int.self)
                totals.total[name, default: 0] += used
                consumersByType[type, default: []].insert(try row.decode(column: "uuid", as: String.self))
                totals.byType[type, default: (0, [:])].amounts[name, default: 0] += used
            }
            for (type, consumers) in consumersByType { totals.byType[type]?.consumers = consumers.count }
            return totals
        }
    }
}
