import AllotCore
import AllotStore
import Testing

extension StoreTests {
    @Test("custom traits: create once, list and filter, delete when unused", arguments: TestBackend.all)
    func customTraits(backend: TestBackend) async throws {
        try await backend.withStore { store in
            #expect(try await store.createTrait(named: "CUSTOM_GOLD"))
            #expect(try await store.createTrait(named: "CUSTOM_GOLD") == false)
            #expect(try await store.createTrait(named: "CUSTOM_SILVER"))
            #expect(try await store.trait(named: "CUSTOM_GOLD")?.name == "CUSTOM_GOLD")
            #expect(try await store.trait(named: "CUSTOM_GOLD")?.lastModified == TestBackend.now)
            #expect(try await store.trait(named: "CUSTOM_NOPE") == nil)
            #expect(try await store.trait(named: "MISC_SHARES_VIA_AGGREGATE") != nil)

            let custom = try await store.traits(TraitFilter(startsWith: "CUSTOM_"))
            #expect(custom.map(\.name) == ["CUSTOM_GOLD", "CUSTOM_SILVER"])
            let named = try await store.traits(TraitFilter(names: ["HW_CPU_X86_AVX2", "CUSTOM_GOLD", "CUSTOM_NOPE"]))
            #expect(named.map(\.name) == ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"])
            #expect(try await store.traits(TraitFilter(names: [])).isEmpty)
            #expect(try await store.traits(TraitFilter()).count == AllotCore.Trait.standardNames.count + 2)

            try await store.deleteTrait(named: "CUSTOM_SILVER")
            #expect(try await store.trait(named: "CUSTOM_SILVER") == nil)
            await expectPlacementError(.notFound) { try await store.deleteTrait(named: "CUSTOM_SILVER") }
            await expectPlacementError(.badRequest) { try await store.deleteTrait(named: "HW_CPU_X86_AVX2") }
            #expect(try await store.trait(named: "HW_CPU_X86_AVX2") != nil)
        }
    }

    @Test(
        "provider traits: replaced as a whole with a generation check; a trait in use stays", arguments: TestBackend.all
    )
    func providerTraits(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = try await store.createProvider(uuid: newUUID(), name: "cn", parentUUID: nil).uuid
            #expect(try await store.createTrait(named: "CUSTOM_GOLD"))
            let (provider, traits) = try await store.setProviderTraits(
                providerUUID: uuid, generation: 0, traits: ["HW_CPU_X86_AVX2", "CUSTOM_GOLD", "CUSTOM_GOLD"])
            #expect(provider.generation == 1)
            #expect(traits == ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"])
            #expect(try await store.providerTraits(providerUUID: uuid).1 == ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"])

            await expectPlacementError(.conflict, code: .concurrentUpdate) {
                try await store.setProviderTraits(providerUUID: uuid, generation: 0, traits: [])
            }
            await expectPlacementError(.badRequest) {
                try await store.setProviderTraits(providerUUID: uuid, generation: 1, traits: ["CUSTOM_NOPE"])
            }
            #expect(try await store.providerTraits(providerUUID: uuid).1 == ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"])
            #expect(try await store.provider(uuid: uuid)?.generation == 1)

            let associated = try await store.traits(TraitFilter(associated: true))
            #expect(associated.map(\.name) == ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"])
            let unassociated = try await store.traits(TraitFilter(startsWith: "CUSTOM_", associated: false))
            #expect(unassociated.isEmpty)

            await expectPlacementError(.conflict) { try await store.deleteTrait(named: "CUSTOM_GOLD") }
            #expect(try await store.trait(named: "CUSTOM_GOLD") != nil)
            // Setting the same traits again changes nothing, not even the generation.
            let (same, _) = try await store.setProviderTraits(
                providerUUID: uuid, generation: 1, traits: ["HW_CPU_X86_AVX2", "CUSTOM_GOLD"])
            #expect(same.generation == 1)
            let (cleared, none) = try await store.setProviderTraits(providerUUID: uuid, generation: 1, traits: [])
            #expect(cleared.generation == 2)
            #expect(none.isEmpty)
            try await store.deleteTrait(named: "CUSTOM_GOLD")
            #expect(try await store.trait(named: "CUSTOM_GOLD") == nil)
            await expectPlacementError(.notFound) { try await store.providerTraits(providerUUID: newUUID()) }
        }
    }

    @Test("custom resource classes: create, conflict, rename, delete when unused", arguments: TestBackend.all)
    func customResourceClasses(backend: TestBackend) async throws {
        try await backend.withStore { store in
            #expect(try await store.createResourceClass(named: "CUSTOM_FPGA", failIfExists: true))
            // Upstream gives duplicate resource classes no error code (duplicate provider names have one).
            await expectPlacementError(.conflict, code: .undefined) {
                try await store.createResourceClass(named: "CUSTOM_FPGA", failIfExists: true)
            }
            #expect(try await store.createResourceClass(named: "CUSTOM_FPGA", failIfExists: false) == false)
            #expect(try await store.createResourceClass(named: "CUSTOM_GPU", failIfExists: true))
            let all = try await store.resourceClasses().map(\.name)
            #expect(all == ResourceClass.standardNames + ["CUSTOM_FPGA", "CUSTOM_GPU"])
            #expect(try await store.resourceClass(named: "CUSTOM_FPGA")?.lastModified == TestBackend.now)
            #expect(try await store.resourceClass(named: "CUSTOM_NOPE") == nil)

            try await store.renameResourceClass(from: "CUSTOM_GPU", to: "CUSTOM_GPU2")
            #expect(try await store.resourceClass(named: "CUSTOM_GPU") == nil)
            #expect(try await store.resourceClass(named: "CUSTOM_GPU2") != nil)
            await expectPlacementError(.conflict, code: .undefined) {
                try await store.renameResourceClass(from: "CUSTOM_GPU2", to: "CUSTOM_FPGA")
            }
            await expectPlacementError(.badRequest) {
                try await store.renameResourceClass(from: "VCPU", to: "CUSTOM_X")
            }
            await expectPlacementError(.notFound) {
                try await store.renameResourceClass(from: "CUSTOM_NOPE", to: "CUSTOM_Y")
            }

            let uuid = try await store.createProvider(uuid: newUUID(), name: "cn", parentUUID: nil).uuid
            _ = try await store.replaceInventories(
                providerUUID: uuid, generation: 0, inventories: ["CUSTOM_FPGA": Inventory(total: 2)])
            await expectPlacementError(.conflict) { try await store.deleteResourceClass(named: "CUSTOM_FPGA") }
            #expect(try await store.resourceClass(named: "CUSTOM_FPGA") != nil)
            await expectPlacementError(.badRequest) { try await store.deleteResourceClass(named: "VCPU") }
            await expectPlacementError(.notFound) { try await store.deleteResourceClass(named: "CUSTOM_NOPE") }

            try await store.deleteAllInventories(providerUUID: uuid)
            try await store.deleteResourceClass(named: "CUSTOM_FPGA")
            #expect(try await store.resourceClass(named: "CUSTOM_FPGA") == nil)
            #expect(try await store.resourceClasses().map(\.name) == ResourceClass.standardNames + ["CUSTOM_GPU2"])
        }
    }

    @Test("a custom class can be allocated like a standard one", arguments: TestBackend.all)
    func customClassAllocation(backend: TestBackend) async throws {
        try await backend.withStore { store in
            #expect(try await store.createResourceClass(named: "CUSTOM_FPGA", failIfExists: true))
            let uuid = try await store.createProvider(uuid: newUUID(), name: "cn", parentUUID: nil).uuid
            _ = try await store.replaceInventories(
                providerUUID: uuid, generation: 0, inventories: ["CUSTOM_FPGA": Inventory(total: 2)])
            let consumer = newUUID()
            try await store.replaceAllocations([allocation(consumer, [(uuid, .custom("CUSTOM_FPGA"), 2)])])
            #expect(try await store.usages(providerUUID: uuid).1 == ["CUSTOM_FPGA": 2])
            await expectPlacementError(.conflict) {
                try await store.replaceAllocations([allocation(newUUID(), [(uuid, .custom("CUSTOM_FPGA"), 1)])])
            }
            await expectPlacementError(.conflict) { try await store.deleteResourceClass(named: "CUSTOM_FPGA") }
        }
    }

    @Test("aggregates: replaced as a whole, generation checked when given", arguments: TestBackend.all)
    func aggregates(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = try await store.createProvider(uuid: newUUID(), name: "cn", parentUUID: nil).uuid
            let other = try await store.createProvider(uuid: newUUID(), name: "other", parentUUID: nil).uuid
            let (agg1, agg2, agg3) = (newUUID(), newUUID(), newUUID())

            let (provider, set) = try await store.setProviderAggregates(
                providerUUID: uuid, generation: 0, aggregates: [agg1, agg2, agg1])
            #expect(provider.generation == 1)
            #expect(set.count == 2)
            #expect(Set(set) == [agg1, agg2])
            #expect(Set(try await store.providerAggregates(providerUUID: uuid).1) == [agg1, agg2])

            await expectPlacementError(.conflict, code: .concurrentUpdate) {
                try await store.setProviderAggregates(providerUUID: uuid, generation: 0, aggregates: [agg3])
            }
            #expect(Set(try await store.providerAggregates(providerUUID: uuid).1) == [agg1, agg2])

            // Before 1.19 there is no generation to check, and the generation stays.
            let (unchecked, replaced) = try await store.setProviderAggregates(
                providerUUID: uuid, generation: nil, aggregates: [agg2, agg3])
            #expect(unchecked.generation == 1)
            #expect(Set(replaced) == [agg2, agg3])

            _ = try await store.setProviderAggregates(providerUUID: other, generation: 0, aggregates: [agg3])
            var filter = ProviderFilter()
            filter.memberOf = [[agg3]]
            #expect(try await store.providers(matching: filter).map(\.uuid) == [uuid, other])

            let (emptied, cleared) = try await store.setProviderAggregates(
                providerUUID: uuid, generation: 1, aggregates: [])
            #expect(emptied.generation == 2)
            #expect(cleared.isEmpty)
            #expect(try await store.providerAggregates(providerUUID: uuid).1.isEmpty)
            #expect(try await store.providers(matching: filter).map(\.uuid) == [other])
            await expectPlacementError(.notFound) { try await store.providerAggregates(providerUUID: newUUID()) }
        }
    }
}
