import AllotCore
import AllotStore
import Testing

extension StoreTests {
    @Test("replacing inventories checks and bumps the provider generation", arguments: TestBackend.all)
    func replaceInventories(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = try await store.createProvider(uuid: newUUID(), name: "cn", parentUUID: nil).uuid
            let wanted = [
                "VCPU": Inventory(total: 8, allocationRatio: 4.0),
                "MEMORY_MB": Inventory(total: 16384, reserved: 512, minUnit: 1, maxUnit: 8192, stepSize: 256),
            ]
            let written = try await store.replaceInventories(providerUUID: uuid, generation: 0, inventories: wanted)
            #expect(written.provider.generation == 1)
            #expect(written.inventories == wanted)
            let read = try await store.inventories(providerUUID: uuid)
            #expect(read.inventories == wanted)
            #expect(read.provider.generation == 1)

            await expectPlacementError(.conflict, code: .concurrentUpdate) {
                try await store.replaceInventories(
                    providerUUID: uuid, generation: 0, inventories: ["DISK_GB": Inventory(total: 1)])
            }
            let after = try await store.inventories(providerUUID: uuid)
            #expect(after.inventories == wanted)
            #expect(after.provider.generation == 1)

            let emptied = try await store.replaceInventories(providerUUID: uuid, generation: 1, inventories: [:])
            #expect(emptied.inventories.isEmpty)
            #expect(emptied.provider.generation == 2)
        }
    }

    @Test("inventories of unknown classes or providers are refused", arguments: TestBackend.all)
    func inventoryRefusals(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = try await store.createProvider(uuid: newUUID(), name: "cn", parentUUID: nil).uuid
            await expectPlacementError(.badRequest) {
                try await store.replaceInventories(
                    providerUUID: uuid, generation: 0, inventories: ["CUSTOM_NOPE": Inventory(total: 1)])
            }
            #expect(try await store.provider(uuid: uuid)?.generation == 0)
            await expectPlacementError(.notFound, code: .undefined) {
                try await store.inventories(providerUUID: newUUID())
            }
            await expectPlacementError(.notFound) {
                try await store.replaceInventories(providerUUID: newUUID(), generation: 0, inventories: [:])
            }
        }
    }

    @Test("one class at a time: create, update and delete", arguments: TestBackend.all)
    func singleInventory(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = try await makeComputeNode(store, name: "cn", vcpu: 8)  // generation 1
            let created = try await store.createInventory(
                providerUUID: uuid, generation: 1, resourceClass: "DISK_GB", inventory: Inventory(total: 100))
            #expect(created.provider.generation == 2)
            #expect(created.inventories == ["VCPU": Inventory(total: 8), "DISK_GB": Inventory(total: 100)])
            await expectPlacementError(.conflict, code: .concurrentUpdate) {
                try await store.createInventory(
                    providerUUID: uuid, generation: 2, resourceClass: "DISK_GB", inventory: Inventory(total: 5))
            }
            #expect(try await store.inventories(providerUUID: uuid).inventories["DISK_GB"] == Inventory(total: 100))
            // Like upstream's POST, creating one class does not check the generation it is given; it still bumps it.
            let memory = try await store.createInventory(
                providerUUID: uuid, generation: 0, resourceClass: "MEMORY_MB", inventory: Inventory(total: 5))
            #expect(memory.provider.generation == 3)
            #expect(memory.inventories["MEMORY_MB"] == Inventory(total: 5))
            try await store.deleteInventory(providerUUID: uuid, resourceClass: "MEMORY_MB")  // generation 4

            let updated = try await store.updateInventory(
                providerUUID: uuid, generation: 4, resourceClass: "VCPU", inventory: Inventory(total: 16, reserved: 2))
            #expect(updated.provider.generation == 5)
            #expect(updated.inventories["VCPU"] == Inventory(total: 16, reserved: 2))
            await expectPlacementError(.conflict, code: .concurrentUpdate) {
                try await store.updateInventory(
                    providerUUID: uuid, generation: 4, resourceClass: "VCPU", inventory: Inventory(total: 1))
            }
            await expectPlacementError(.badRequest) {
                try await store.updateInventory(
                    providerUUID: uuid, generation: 5, resourceClass: "MEMORY_MB", inventory: Inventory(total: 1))
            }

            try await store.deleteInventory(providerUUID: uuid, resourceClass: "DISK_GB")
            let afterDelete = try await store.inventories(providerUUID: uuid)
            #expect(afterDelete.inventories == ["VCPU": Inventory(total: 16, reserved: 2)])
            #expect(afterDelete.provider.generation == 6)
            await expectPlacementError(.notFound) {
                try await store.deleteInventory(providerUUID: uuid, resourceClass: "DISK_GB")
            }

            try await store.deleteAllInventories(providerUUID: uuid)
            let none = try await store.inventories(providerUUID: uuid)
            #expect(none.inventories.isEmpty)
            #expect(none.provider.generation == 7)
        }
    }

    @Test("an allocated class cannot be removed from the inventory", arguments: TestBackend.all)
    func inventoryInUse(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = try await makeComputeNode(store, name: "cn", vcpu: 8, memory: 4096)  // generation 1
            try await store.replaceAllocations([allocation(newUUID(), [(uuid, .vcpu, 2)])])  // generation 2
            let before = try await store.inventories(providerUUID: uuid)
            #expect(before.provider.generation == 2)

            // Upstream reports this one refusal with the concurrent-update code.
            await expectPlacementError(.conflict, code: .concurrentUpdate) {
                try await store.deleteInventory(providerUUID: uuid, resourceClass: "VCPU")
            }
            await expectPlacementError(.conflict, code: .inventoryInUse) {
                try await store.replaceInventories(
                    providerUUID: uuid, generation: 2, inventories: ["MEMORY_MB": Inventory(total: 4096)])
            }
            await expectPlacementError(.conflict, code: .inventoryInUse) {
                try await store.deleteAllInventories(providerUUID: uuid)
            }
            let unchanged = try await store.inventories(providerUUID: uuid)
            #expect(unchanged.inventories == before.inventories)
            #expect(unchanged.provider.generation == 2)

            // Classes that nobody uses can still go, and the allocated one can change.
            let kept = try await store.replaceInventories(
                providerUUID: uuid, generation: 2, inventories: ["VCPU": Inventory(total: 4)])
            #expect(kept.inventories == ["VCPU": Inventory(total: 4)])
        }
    }
}
