import AllotCore
import AllotStore
import Testing

extension StoreTests {
    /// Four providers: `a` (with child `a1`), `b` and `c`, in aggregates, with traits and VCPU inventories.
    struct FilterWorld {
        var a = "", a1 = "", b = "", c = ""
        let agg1 = newUUID(), agg2 = newUUID()

        init(_ store: SQLPlacementStore) async throws {
            a = try await makeComputeNode(store, name: "a", vcpu: 4)
            a1 = try await store.createProvider(uuid: newUUID(), name: "a1", parentUUID: a).uuid
            b = try await makeComputeNode(store, name: "b", vcpu: 16)
            c = try await store.createProvider(uuid: newUUID(), name: "c", parentUUID: nil).uuid
            #expect(try await store.createTrait(named: "CUSTOM_GOLD"))
            _ = try await store.setProviderTraits(providerUUID: a, generation: nil, traits: ["HW_CPU_X86_AVX2"])
            _ = try await store.setProviderTraits(providerUUID: b, generation: nil, traits: ["CUSTOM_GOLD"])
            _ = try await store.setProviderAggregates(providerUUID: a, generation: nil, aggregates: [agg1])
            _ = try await store.setProviderAggregates(providerUUID: b, generation: nil, aggregates: [agg2])
            _ = try await store.setProviderAggregates(providerUUID: c, generation: nil, aggregates: [agg1, agg2])
        }
    }

    /// The uuids of the providers matching `configure`'s filter, in the store's order.
    func matching(_ store: SQLPlacementStore, _ configure: (inout ProviderFilter) -> Void) async throws -> [String] {
        var filter = ProviderFilter()
        configure(&filter)
        return try await store.providers(matching: filter).map(\.uuid)
    }

    @Test("listing filters by name, uuid and tree", arguments: TestBackend.all)
    func filterByIdentity(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let w = try await FilterWorld(store)
            #expect(try await matching(store) { _ in } == [w.a, w.a1, w.b, w.c])
            #expect(try await matching(store) { $0.name = "b" } == [w.b])
            #expect(try await matching(store) { $0.name = "nope" } == [])
            #expect(try await matching(store) { $0.uuid = w.c } == [w.c])
            #expect(
                try await matching(store) {
                    $0.uuid = w.c
                    $0.name = "a"
                } == [])
            #expect(try await matching(store) { $0.inTree = w.a } == [w.a, w.a1])
            #expect(try await matching(store) { $0.inTree = w.a1 } == [w.a, w.a1])
            #expect(try await matching(store) { $0.inTree = w.b } == [w.b])
            #expect(try await matching(store) { $0.inTree = newUUID() } == [])
        }
    }

    @Test("member_of: any of one list, all of several lists, none of the forbidden", arguments: TestBackend.all)
    func filterByAggregates(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let w = try await FilterWorld(store)
            #expect(try await matching(store) { $0.memberOf = [[w.agg1]] } == [w.a, w.c])
            #expect(try await matching(store) { $0.memberOf = [[w.agg1, w.agg2]] } == [w.a, w.b, w.c])
            #expect(try await matching(store) { $0.memberOf = [[w.agg1], [w.agg2]] } == [w.c])
            #expect(try await matching(store) { $0.memberOf = [[newUUID()]] } == [])
            #expect(try await matching(store) { $0.forbiddenAggregates = [w.agg2] } == [w.a, w.a1])
            #expect(
                try await matching(store) {
                    $0.memberOf = [[w.agg1]]
                    $0.forbiddenAggregates = [w.agg2]
                } == [w.a])
        }
    }

    @Test("required traits: any of one group, all groups, none of the forbidden", arguments: TestBackend.all)
    func filterByTraits(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let w = try await FilterWorld(store)
            #expect(try await matching(store) { $0.requiredTraits = [["HW_CPU_X86_AVX2"]] } == [w.a])
            #expect(
                try await matching(store) { $0.requiredTraits = [["HW_CPU_X86_AVX2", "CUSTOM_GOLD"]] } == [w.a, w.b])
            #expect(try await matching(store) { $0.requiredTraits = [["HW_CPU_X86_AVX2"], ["CUSTOM_GOLD"]] } == [])
            #expect(try await matching(store) { $0.forbiddenTraits = ["HW_CPU_X86_AVX2"] } == [w.a1, w.b, w.c])
            #expect(
                try await matching(store) {
                    $0.requiredTraits = [["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]]
                    $0.forbiddenTraits = ["CUSTOM_GOLD"]
                } == [w.a])
            // A standard trait nobody has matches nobody; an unknown one is an error.
            #expect(try await matching(store) { $0.requiredTraits = [["MISC_SHARES_VIA_AGGREGATE"]] } == [])
            await expectPlacementError(.badRequest) {
                try await matching(store) { $0.requiredTraits = [["CUSTOM_NOPE"]] }
            }
            await expectPlacementError(.badRequest) {
                try await matching(store) { $0.forbiddenTraits = ["CUSTOM_NOPE"] }
            }
        }
    }

    @Test("resources: only providers with enough free capacity within their unit rules", arguments: TestBackend.all)
    func filterByResources(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let w = try await FilterWorld(store)
            #expect(try await matching(store) { $0.resources = ["VCPU": 4] } == [w.a, w.b])
            #expect(try await matching(store) { $0.resources = ["VCPU": 5] } == [w.b])
            #expect(try await matching(store) { $0.resources = ["VCPU": 17] } == [])
            #expect(try await matching(store) { $0.resources = ["VCPU": 1, "MEMORY_MB": 1] } == [])
            try await store.replaceAllocations([allocation(newUUID(), [(w.b, .vcpu, 10)])])
            #expect(try await matching(store) { $0.resources = ["VCPU": 6] } == [w.b])
            #expect(try await matching(store) { $0.resources = ["VCPU": 7] } == [])
            #expect(try await matching(store) { $0.resources = ["VCPU": 4] } == [w.a, w.b])
            await expectPlacementError(.badRequest) {
                try await matching(store) { $0.resources = ["CUSTOM_NOPE": 1] }
            }
        }
    }

    @Test("resources honour reserved, allocation ratio, min_unit, max_unit and step_size", arguments: TestBackend.all)
    func filterByResourceRules(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = newUUID()
            _ = try await store.createProvider(uuid: uuid, name: "cn", parentUUID: nil)
            _ = try await store.replaceInventories(
                providerUUID: uuid, generation: 0,
                inventories: [
                    "VCPU": Inventory(total: 4, reserved: 1, allocationRatio: 2.0),  // capacity 6
                    "DISK_GB": Inventory(total: 100, minUnit: 10, maxUnit: 50, stepSize: 5),
                ])
            #expect(try await matching(store) { $0.resources = ["VCPU": 6] } == [uuid])
            #expect(try await matching(store) { $0.resources = ["VCPU": 7] } == [])
            #expect(try await matching(store) { $0.resources = ["DISK_GB": 20] } == [uuid])
            #expect(try await matching(store) { $0.resources = ["DISK_GB": 5] } == [], "below min_unit")
            #expect(try await matching(store) { $0.resources = ["DISK_GB": 55] } == [], "above max_unit")
            #expect(try await matching(store) { $0.resources = ["DISK_GB": 12] } == [], "not a multiple of step_size")
        }
    }
}
