import AllotCore
@testable import AllotPlacement
import AllotStore
import Foundation
import HTTPTypes
import Logging
import Synchronization
import Testing

/// `GET /resource_providers?resources=…` is answered from the search snapshot; the SQL listing it replaced
/// (`PlacementRoutes.listProvidersFromSQL`, which passes upstream's conformance suite) is the oracle. Over a varied
/// database, seeded random and hand-picked queries at several microversions must get the same status, body bytes
/// and headers (`Last-Modified` included) from both, also right after writes (the snapshot must see them).
@Suite struct ProviderListSnapshotTests {
    /// What a client would see of one answer.
    struct Answer: Equatable, CustomStringConvertible {
        var status: String
        var body: String
        /// Header names in order (the content type where the responder puts it for a `JSONValue` body).
        var headerNames: [String] = []
        var lastModified: String?
        var contentType: String?

        var description: String { "\(status) \(headerNames) \(lastModified ?? "-") \(body)" }
        var isEmptyList: Bool { body == #"{"resource_providers": []}"# }
    }

    static func answer(_ produce: () async throws -> Reply) async -> Answer {
        do {
            let reply = try await produce()
            let bytes = reply.raw ?? reply.body?.serializedBytes() ?? []
            var names = reply.headers.map(\.0.canonicalName)
            if reply.raw == nil, reply.body != nil { names.append("content-type") }
            var result = Answer(
                status: "\(reply.status.code)", body: String(decoding: bytes, as: UTF8.self), headerNames: names,
                lastModified: reply.headers.first { $0.0 == .lastModified }?.1,
                contentType: reply.raw == nil ? "application/json" : reply.headers.first { $0.0 == .contentType }?.1)
            // An empty list is stamped with the time of the call: only its presence can be compared.
            if result.isEmptyList, result.lastModified != nil { result.lastModified = "(now)" }
            return result
        } catch let error as PlacementError {
            return Answer(status: "\(error.kind)", body: "\(error.code.rawValue): \(error.detail)")
        } catch {
            return Answer(status: "unexpected", body: "\(error)")
        }
    }

    /// The routes over a fresh in-memory database whose clock moves 1,000 s per write, so every row's
    /// `updated_at` differs and `Last-Modified` tells which providers were listed.
    static func withRoutes(_ body: (PlacementRoutes, SQLPlacementStore) async throws -> Void) async throws {
        let logger = Logger(label: "test")
        let database = try await Database.open(.sqliteMemory, logger: logger)
        let clock = Mutex(1_700_000_000.0)
        let store = SQLPlacementStore(database: database, logger: logger, now: {
            clock.withLock { now in
                now += 1_000
                return now
            }
        })
        do {
            try await body(PlacementRoutes(store: store, configuration: PlacementConfiguration(auth: .noauth)), store)
            await database.close()
        } catch {
            await database.close()
            throw error
        }
    }

    static func call(_ version: String, _ query: [(String, String)]) -> Call {
        let parts = version.split(separator: ".").map { Int($0)! }
        return Call(
            version: Microversion(parts[0], parts[1]), parameters: [], query: query, headers: HTTPFields(),
            body: Data(), identity: nil, method: .get, baseURL: "http://127.0.0.1")
    }

    /// The snapshot's answer to `query` at `version`, checked against the oracle's.
    @discardableResult
    static func expectSame(
        _ routes: PlacementRoutes, _ version: String, _ query: [(String, String)],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async -> Answer {
        let call = call(version, query)
        let subject = await answer { try await routes.listProviders(call) }
        let oracle = await answer { try await routes.listProvidersFromSQL(try routes.providerFilter(call), call) }
        #expect(subject == oracle, "\(version) \(query)", sourceLocation: sourceLocation)
        return subject
    }

    @Test("seeded random queries, between random writes, answer as the SQL listing")
    func randomQueries() async throws {
        try await Self.withRoutes { routes, store in
            var random = SplitMix64(seed: 20_260_415)
            var world = try await ListingWorld(store, random: &random)
            var counts: [String: Int] = [:]
            for step in 0..<600 {
                if step % 12 == 11 { try await world.randomWrite(store, step: step, random: &random) }
                let (version, query) = world.randomQuery(random: &random)
                let answer = await Self.expectSame(routes, version, query)
                counts[answer.status != "200" ? "refused" : answer.isEmptyList ? "empty" : "listed", default: 0] += 1
            }
            // The mix must exercise all three outcomes, not only refusals.
            #expect(counts["listed", default: 0] >= 100, "\(counts)")
            #expect(counts["empty", default: 0] >= 100, "\(counts)")
            #expect(counts["refused", default: 0] >= 50, "\(counts)")
        }
    }

    @Test("hand-picked edge cases: refusal order, early empty answers, bounds, every link set")
    func edgeCases() async throws {
        try await Self.withRoutes { routes, store in
            var random = SplitMix64(seed: 7)
            let world = try await ListingWorld(store, random: &random)
            let (first, root) = (world.providers[1], world.providers[0])
            let unknownUUID = newUUID()
            let cases: [(String, [(String, String)])] = [
                ("1.39", [("resources", "VCPU:1")]),
                ("1.39", [("resources", "VCPU:1,MEMORY_MB:1,DISK_GB:1")]),
                ("1.39", [("resources", "CUSTOM_UNUSED:1")]),
                ("1.39", [("resources", "CUSTOM_NOPE:1,CUSTOM_ALSO_NOPE:1")]),
                ("1.39", [("resources", "CUSTOM_NOPE:1"), ("in_tree", unknownUUID)]),
                ("1.39", [("resources", "CUSTOM_NOPE:1"), ("required", "CUSTOM_NOPE_TRAIT,CUSTOM_ZZZ")]),
                ("1.39", [("resources", "CUSTOM_NOPE:1"), ("required", "CUSTOM_NOBODY")]),
                ("1.39", [("resources", "CUSTOM_NOPE:1"), ("required", "!CUSTOM_NOPE_TRAIT")]),
                ("1.39", [("resources", "CUSTOM_NOPE:1"), ("required", "!CUSTOM_NOBODY")]),
                ("1.39", [("resources", "CUSTOM_NOPE:1"), ("member_of", unknownUUID)]),
                ("1.39", [("resources", "CUSTOM_NOPE:1"), ("member_of", "!" + unknownUUID)]),
                ("1.39", [("resources", "VCPU:1"), ("required", "CUSTOM_A,!CUSTOM_A")]),
                ("1.39", [("resources", "VCPU:1"), ("required", "in:CUSTOM_A,CUSTOM_B"), ("required", "!CUSTOM_C")]),
                ("1.38", [("resources", "VCPU:1"), ("required", "in:CUSTOM_A,CUSTOM_B")]),
                ("1.21", [("resources", "VCPU:1"), ("required", "!CUSTOM_A")]),
                ("1.18", [("resources", "VCPU:1"), ("required", "CUSTOM_A"), ("required", "CUSTOM_B")]),
                ("1.32", [("resources", "VCPU:1"), ("member_of", "in:\(world.aggregates[0]),\(world.aggregates[1])"),
                          ("member_of", "!\(world.aggregates[2])")]),
                ("1.31", [("resources", "VCPU:1"), ("member_of", "!\(world.aggregates[2])")]),
                ("1.23", [("resources", "VCPU:1"), ("member_of", world.aggregates[0]),
                          ("member_of", world.aggregates[1])]),
                ("1.39", [("resources", "VCPU:1"), ("name", first.name)]),
                ("1.39", [("resources", "VCPU:1"), ("name", root.name)]),
                ("1.39", [("resources", "VCPU:1"), ("uuid", first.uuid.uppercased())]),
                ("1.39", [("resources", "VCPU:1"), ("in_tree", first.uuid)]),
                ("1.39", [("resources", "VCPU:2147483647")]),
                ("1.39", [("resources", "VCPU:9223372036854775807")]),
                ("1.39", [("resources", "VCPU:0")]),
                ("1.39", [("resources", "VCPU:x")]),
                ("1.39", [("resources", "")]),
                ("1.39", [("resources", "VCPU")]),
                ("1.39", [("resources", "VCPU:1"), ("resources", "MEMORY_MB:1")]),
                ("1.3", [("resources", "VCPU:1")]),
                ("1.0", [("resources", "VCPU:1")]),
                ("1.13", [("resources", "VCPU:1"), ("in_tree", first.uuid)]),
            ]
            for (version, query) in cases { await Self.expectSame(routes, version, query) }
            for (name, amount) in world.edgeAmounts() {
                await Self.expectSame(routes, "1.39", [("resources", "\(name):\(amount)")])
            }
            // Every link set (the query parameter exists from 1.4: earlier versions are called with the filter),
            // with one provider sure to be listed.
            let plain = try await store.createProvider(
                uuid: newUUID(), name: "plain", parentUUID: world.providers[0].uuid)
            _ = try await store.replaceInventories(
                providerUUID: plain.uuid, generation: plain.generation, inventories: ["VCPU": Inventory(total: 8)])
            for version in ["1.0", "1.1", "1.5", "1.6", "1.10", "1.11", "1.13", "1.14", "1.15", "1.20"] {
                var filter = ProviderFilter()
                filter.resources = ["VCPU": 1]
                let call = Self.call(version, [])
                let subject = await Self.answer { try await routes.listProvidersFromSnapshot(filter, call) }
                let oracle = await Self.answer { try await routes.listProvidersFromSQL(filter, call) }
                #expect(subject == oracle, "\(version)")
                #expect(!subject.isEmptyList && subject.status == "200")
            }
        }
    }

    @Test("a write between two queries shows in the second answer")
    func writesBetweenQueries() async throws {
        try await Self.withRoutes { routes, store in
            let node = try await store.createProvider(uuid: newUUID(), name: "node", parentUUID: nil)
            _ = try await store.replaceInventories(
                providerUUID: node.uuid, generation: node.generation, inventories: ["VCPU": Inventory(total: 4)])
            let query = [("resources", "VCPU:2")]
            let before = await Self.expectSame(routes, "1.39", query)
            #expect(before.body.contains(#""name": "node""#))

            // A rename changes only the provider row (name, updated_at): the cached snapshot is patched.
            _ = try await store.updateProvider(
                uuid: node.uuid, name: "renamed", parentUUID: nil, setParent: false, allowReparent: false)
            let renamed = await Self.expectSame(routes, "1.39", query)
            #expect(renamed.body.contains(#""name": "renamed""#))
            #expect(renamed.lastModified != before.lastModified)

            // Usage: 3 of 4 used leaves too little for 2.
            let consumer = newUUID()
            try await store.replaceAllocations([ConsumerAllocationRequest(
                consumerUUID: consumer, items: [AllocationItem(providerUUID: node.uuid, resourceClass: .vcpu, used: 3)],
                owner: ConsumerOwner(projectID: "p", userID: "u"), expectedGeneration: .unchecked)])
            #expect(await Self.expectSame(routes, "1.39", query).isEmptyList)
            try await store.deleteAllocations(consumerUUID: consumer)
            #expect(!(await Self.expectSame(routes, "1.39", query)).isEmptyList)

            // A trait, then a new provider (the snapshot is read afresh).
            _ = try await store.setProviderTraits(providerUUID: node.uuid, generation: nil, traits: ["HW_CPU_X86_AVX2"])
            #expect(!(await Self.expectSame(routes, "1.39", query + [("required", "HW_CPU_X86_AVX2")])).isEmptyList)
            #expect(await Self.expectSame(routes, "1.39", query + [("required", "!HW_CPU_X86_AVX2")]).isEmptyList)
            let child = try await store.createProvider(uuid: newUUID(), name: "child", parentUUID: node.uuid)
            _ = try await store.replaceInventories(
                providerUUID: child.uuid, generation: child.generation, inventories: ["VCPU": Inventory(total: 2)])
            #expect(await Self.expectSame(routes, "1.39", query).body.contains(child.uuid))
        }
    }

    @Test("the capacity rule compares the float capacity with the integer need exactly")
    func capacityRule() {
        let huge = Inventory(total: 10, maxUnit: Int.max, allocationRatio: 1e30)
        #expect(PlacementSnapshot.listingAllows(huge, used: Int.max, amount: Int.max))
        #expect(PlacementSnapshot.listingAllows(Inventory(total: 3, allocationRatio: 1.5), used: 3, amount: 1))
        #expect(!PlacementSnapshot.listingAllows(Inventory(total: 3, allocationRatio: 1.5), used: 4, amount: 1))
        #expect(!PlacementSnapshot.listingAllows(Inventory(total: 10, stepSize: 0), used: 0, amount: 1))
        #expect(!PlacementSnapshot.listingAllows(Inventory(total: 10, stepSize: 3), used: 0, amount: 4))
        #expect(!PlacementSnapshot.listingAllows(Inventory(total: 10, minUnit: 2), used: 0, amount: 1))
        #expect(!PlacementSnapshot.listingAllows(Inventory(total: 10, maxUnit: 2), used: 0, amount: 3))
        #expect(!PlacementSnapshot.listingAllows(Inventory(total: 10, reserved: 10), used: 0, amount: 1))
        #expect(PlacementSnapshot.listingAllows(Inventory(total: 1, allocationRatio: .infinity), used: 0, amount: 1))
        // 0 * infinity is NaN (NULL in SQL): nothing matches.
        #expect(!PlacementSnapshot.listingAllows(Inventory(total: 1, reserved: 1, allocationRatio: .infinity),
                                                 used: 0, amount: 1))
    }
}
