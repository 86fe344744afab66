import AllotCore
import AllotStore
import Foundation

extension PlacementRoutes {
    /// `GET /compute/v1/fit?<an allocation candidates query>`: the provider trees some allocation candidate uses
    /// (`fitting`), and for every other tree why it was left out (`excluded`, each with its reasons), from the
    /// same snapshot and search as `GET /allocation_candidates`, without `limit` or the server's cap. Unknown
    /// classes and traits are refused (`400`) where upstream would sometimes answer empty.
    func computeFit(_ call: Call) async throws -> Reply {
        let search = try await candidateSearch(call, explaining: true)
        let snapshot = search.state.snapshot
        let roots = snapshot.providers.indices.filter { snapshot.providers[$0].parent == nil }
        let report: FitReport
        if let uuid = search.unknownTree {
            var excluded: [Int: [ExclusionReason]] = [:]
            for root in roots {
                excluded[root] = [ExclusionReason(
                    kind: .notInTree, group: "", detail: "in_tree names \(uuid), which is no provider")]
            }
            report = FitReport(fitting: [], excluded: excluded, candidateCount: 0)
        } else {
            report = CandidateExplainer.explain(search.query, in: snapshot)
        }
        /// Trees in name order (then uuid), as the console lists them.
        func byName(_ a: Int, _ b: Int) -> Bool {
            (snapshot.providers[a].name, snapshot.providers[a].uuid) < (snapshot.providers[b].name, snapshot.providers[b].uuid)
        }
        func provider(_ index: Int) -> JSONValue {
            .object(["uuid": .string(snapshot.providers[index].uuid), "name": .string(snapshot.providers[index].name)])
        }
        let excluded: [JSONValue] = report.excluded.keys.sorted(by: byName).map { root in
            let reasons = (report.excluded[root] ?? []).map { reason -> JSONValue in
                var fields: [String: JSONValue] = [
                    "kind": .string(reason.kind.rawValue), "group": .string(reason.group),
                    "detail": .string(reason.detail), "traits": .array(reason.traits.map { .string($0) }),
                    "aggregates": .array(reason.aggregates.map { .string($0) }),
                ]
                if let name = reason.resourceClass { fields["resource_class"] = .string(name) }
                if let index = reason.provider {
                    fields["provider"] = .string(snapshot.providers[index].uuid)
                    fields["provider_name"] = .string(snapshot.providers[index].name)
                }
                if let requested = reason.requested { fields["requested"] = .int(requested) }
                if let limit = reason.limit { fields["limit"] = .int(limit) }
                return .sortedObject(fields)
            }
            return .object([
                "uuid": .string(snapshot.providers[root].uuid), "name": .string(snapshot.providers[root].name),
                "reasons": .array(reasons),
            ])
        }
        let fitting = report.fitting.sorted(by: byName).map(provider)
        return .json(.object([
            "candidates": .int(report.candidateCount), "fitting": .array(fitting), "excluded": .array(excluded),
        ]))
    }
}
