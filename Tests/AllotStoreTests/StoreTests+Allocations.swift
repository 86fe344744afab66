import AllotCore
import AllotStore
import Testing

extension StoreTests {
    @Test(
        "a consumer's allocations are written, read back by consumer and by provider, and replaced",
        arguments: TestBackend.all)
    func singleConsumer(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await makeComputeNode(store, name: "cn", vcpu: 8, memory: 4096)  // generation 1
            let consumer = newUUID()
            try await store.replaceAllocations([
                allocation(consumer, [(rp, .vcpu, 2), (rp, .memoryMB, 1024)], generation: .new)
            ])
            let written = try await store.allocations(consumerUUID: consumer)
            #expect(written.byProvider == [rp: ["VCPU": 2, "MEMORY_MB": 1024]])
            #expect(written.providerGenerations == [rp: 2])
            #expect(written.lastModified == TestBackend.now)
            let record = try #require(written.consumer)
            #expect(record.uuid == consumer)
            #expect(record.generation == 1)
            #expect(record.owner == projectA)
            #expect(try await store.provider(uuid: rp)?.generation == 2)
            #expect(
                try await store.allocations(providerUUID: rp).byConsumer == [consumer: ["VCPU": 2, "MEMORY_MB": 1024]])
            #expect(try await store.usages(providerUUID: rp).1 == ["VCPU": 2, "MEMORY_MB": 1024])

            try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 4)], generation: .exactly(1))])
            let replaced = try await store.allocations(consumerUUID: consumer)
            #expect(replaced.byProvider == [rp: ["VCPU": 4]])
            #expect(replaced.consumer?.generation == 2)
            #expect(try await store.usages(providerUUID: rp).1 == ["VCPU": 4, "MEMORY_MB": 0])
        }
    }

    @Test("a consumer's own allocation does not count against its replacement", arguments: TestBackend.all)
    func replaceWithinCapacity(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await makeComputeNode(store, name: "cn", vcpu: 10)
            let consumer = newUUID()
            try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 8)])])
            try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 10)])])
            #expect(try await store.usages(providerUUID: rp).1 == ["VCPU": 10])
            #expect(try await store.allocations(consumerUUID: consumer).byProvider == [rp: ["VCPU": 10]])
        }
    }

    @Test("consumer generations: new must not exist, exactly must match", arguments: TestBackend.all)
    func consumerGenerations(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await makeComputeNode(store, name: "cn", vcpu: 8)
            let consumer = newUUID()
            await expectPlacementError(.conflict, code: .concurrentUpdate) {
                try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 1)], generation: .exactly(1))])
            }
            #expect(try await store.allocations(consumerUUID: consumer).consumer == nil)

            try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 1)], generation: .new)])
            await expectPlacementError(.conflict, code: .concurrentUpdate) {
                try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 2)], generation: .new)])
            }
            await expectPlacementError(.conflict, code: .concurrentUpdate) {
                try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 2)], generation: .exactly(7))])
            }
            let unchanged = try await store.allocations(consumerUUID: consumer)
            #expect(unchanged.byProvider == [rp: ["VCPU": 1]])
            #expect(unchanged.consumer?.generation == 1)

            try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 2)], generation: .exactly(1))])
            try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 3)], generation: .unchecked)])
            let after = try await store.allocations(consumerUUID: consumer)
            #expect(after.byProvider == [rp: ["VCPU": 3]])
            #expect(after.consumer?.generation == 3)
        }
    }

    @Test("several consumers on several providers are written together", arguments: TestBackend.all)
    func severalConsumers(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp1 = try await makeComputeNode(store, name: "cn1", vcpu: 8, memory: 4096)
            let rp2 = try await makeComputeNode(store, name: "cn2", vcpu: 8)
            let (c1, c2) = (newUUID(), newUUID())
            try await store.replaceAllocations([
                allocation(c1, [(rp1, .vcpu, 2), (rp2, .vcpu, 1)], generation: .new),
                allocation(c2, [(rp1, .vcpu, 3), (rp1, .memoryMB, 512)], generation: .new),
            ])
            #expect(try await store.allocations(consumerUUID: c1).byProvider == [rp1: ["VCPU": 2], rp2: ["VCPU": 1]])
            #expect(try await store.allocations(consumerUUID: c2).byProvider == [rp1: ["VCPU": 3, "MEMORY_MB": 512]])
            #expect(try await store.usages(providerUUID: rp1).1 == ["VCPU": 5, "MEMORY_MB": 512])
            #expect(try await store.usages(providerUUID: rp2).1 == ["VCPU": 1])
            #expect(try await store.provider(uuid: rp1)?.generation == 2)
            #expect(try await store.provider(uuid: rp2)?.generation == 2)

            // Moving c1 entirely to rp2 (a migration) frees rp1.
            try await store.replaceAllocations([allocation(c1, [(rp2, .vcpu, 2)], generation: .exactly(1))])
            #expect(try await store.usages(providerUUID: rp1).1 == ["VCPU": 3, "MEMORY_MB": 512])
            #expect(try await store.usages(providerUUID: rp2).1 == ["VCPU": 2])
        }
    }

    @Test("a request that does not fit changes no allocations, for any of its consumers", arguments: TestBackend.all)
    func allOrNothing(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await makeComputeNode(store, name: "cn", vcpu: 10, memory: 1024)
            let other = try await makeComputeNode(store, name: "other", vcpu: 10)
            let (c1, c2, c3) = (newUUID(), newUUID(), newUUID())
            try await store.replaceAllocations([allocation(c1, [(rp, .vcpu, 4)])])
            let generation = try #require(try await store.provider(uuid: rp)?.generation)

            // 2 + 3 + 6 = 11 > 10: c1 would shrink, c2 would fit alone, c3 pushes it over.
            await expectPlacementError(.conflict) {
                try await store.replaceAllocations([
                    allocation(c1, [(rp, .vcpu, 2)]),
                    allocation(c2, [(rp, .vcpu, 3), (other, .vcpu, 1)]),
                    allocation(c3, [(rp, .vcpu, 6)]),
                ])
            }
            // Missing inventory on one provider spoils the whole request too.
            await expectPlacementError(.conflict) {
                try await store.replaceAllocations([
                    allocation(c2, [(other, .vcpu, 1)]), allocation(c3, [(other, .memoryMB, 1)]),
                ])
            }
            // So do unit rules, unknown providers and unknown classes.
            _ = try await store.updateInventory(
                providerUUID: other, generation: 1, resourceClass: "VCPU", inventory: Inventory(total: 10, maxUnit: 2))
            await expectPlacementError(.conflict) {
                try await store.replaceAllocations([
                    allocation(c2, [(rp, .vcpu, 1)]), allocation(c3, [(other, .vcpu, 3)]),
                ])
            }
            await expectPlacementError(.badRequest) {
                try await store.replaceAllocations([
                    allocation(c2, [(rp, .vcpu, 1)]), allocation(c3, [(newUUID(), .vcpu, 1)]),
                ])
            }
            await expectPlacementError(.badRequest) {
                try await store.replaceAllocations([
                    allocation(c2, [(rp, .vcpu, 1)]), allocation(c3, [(rp, .custom("CUSTOM_NOPE"), 1)]),
                ])
            }

            #expect(try await store.allocations(consumerUUID: c1).byProvider == [rp: ["VCPU": 4]])
            #expect(try await store.allocations(consumerUUID: c1).consumer?.generation == 1)
            for consumer in [c2, c3] {
                let none = try await store.allocations(consumerUUID: consumer)
                #expect(none.byProvider.isEmpty)
                // As upstream: the consumers are created before the providers are looked up, and the unknown
                // provider's 400 leaves them (at generation 0, holding nothing); the other refusals delete them.
                #expect(none.consumer?.generation == 0)
            }
            #expect(try await store.usages(providerUUID: rp).1 == ["VCPU": 4, "MEMORY_MB": 0])
            #expect(try await store.usages(providerUUID: other).1 == ["VCPU": 0])
            #expect(try await store.allocations(providerUUID: rp).byConsumer == [c1: ["VCPU": 4]])
            #expect(try await store.provider(uuid: rp)?.generation == generation)
        }
    }

    @Test("empty items delete the consumer; deleteAllocations removes all of one", arguments: TestBackend.all)
    func deletingAllocations(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await makeComputeNode(store, name: "cn", vcpu: 8)
            let (c1, c2) = (newUUID(), newUUID())
            try await store.replaceAllocations([
                allocation(c1, [(rp, .vcpu, 1)], generation: .new), allocation(c2, [(rp, .vcpu, 2)], generation: .new),
            ])
            try await store.replaceAllocations([allocation(c1, [], generation: .exactly(1))])
            let gone = try await store.allocations(consumerUUID: c1)
            #expect(gone.consumer == nil)
            #expect(gone.byProvider.isEmpty)
            #expect(try await store.usages(providerUUID: rp).1 == ["VCPU": 2])
            // The consumer is new again.
            try await store.replaceAllocations([allocation(c1, [(rp, .vcpu, 1)], generation: .new)])
            #expect(try await store.allocations(consumerUUID: c1).consumer?.generation == 1)

            try await store.deleteAllocations(consumerUUID: c2)
            #expect(try await store.allocations(consumerUUID: c2).consumer == nil)
            #expect(try await store.allocations(providerUUID: rp).byConsumer == [c1: ["VCPU": 1]])
            await expectPlacementError(.notFound) { try await store.deleteAllocations(consumerUUID: c2) }
            await expectPlacementError(.notFound) { try await store.allocations(providerUUID: newUUID()) }
        }
    }

    @Test(
        "a write without an owner (before 1.8) gives the consumer the incomplete-consumer owner",
        arguments: TestBackend.all)
    func consumerOwner(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await makeComputeNode(store, name: "cn", vcpu: 8)
            let consumer = newUUID()
            let incomplete = ConsumerOwner(projectID: IncompleteConsumer.projectID, userID: IncompleteConsumer.userID)
            try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 1)], owner: nil)])
            #expect(try await store.allocations(consumerUUID: consumer).consumer?.owner == incomplete)
            let owner = ConsumerOwner(projectID: "project-b", userID: "user-2", consumerType: "INSTANCE")
            try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 1)], owner: owner)])
            #expect(try await store.allocations(consumerUUID: consumer).consumer?.owner == owner)
            try await store.replaceAllocations([allocation(consumer, [(rp, .vcpu, 2)], owner: nil)])
            let reset = ConsumerOwner(
                projectID: IncompleteConsumer.projectID, userID: IncompleteConsumer.userID, consumerType: "INSTANCE")
            #expect(try await store.allocations(consumerUUID: consumer).consumer?.owner == reset)
        }
    }

    @Test("usage totals by project, user and consumer type", arguments: TestBackend.all)
    func usageTotals(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await makeComputeNode(store, name: "cn", vcpu: 32, memory: 65536)
            let instance = ConsumerOwner(projectID: "p1", userID: "u1", consumerType: "INSTANCE")
            let migration = ConsumerOwner(projectID: "p1", userID: "u2", consumerType: "MIGRATION")
            let untyped = ConsumerOwner(projectID: "p1", userID: "u1")
            let elsewhere = ConsumerOwner(projectID: "p2", userID: "u1", consumerType: "INSTANCE")
            try await store.replaceAllocations([
                allocation(newUUID(), [(rp, .vcpu, 2), (rp, .memoryMB, 1024)], owner: instance),
                allocation(newUUID(), [(rp, .vcpu, 4)], owner: migration),
                allocation(newUUID(), [(rp, .vcpu, 1)], owner: untyped),
                allocation(newUUID(), [(rp, .vcpu, 8)], owner: elsewhere),
            ])

            let p1 = try await store.usageTotals(projectID: "p1", userID: nil, consumerType: nil)
            #expect(p1.total == ["VCPU": 7, "MEMORY_MB": 1024])
            #expect(p1.byType.keys.sorted() == ["INSTANCE", "MIGRATION", "unknown"])
            #expect(p1.byType["INSTANCE"]?.consumers == 1)
            #expect(p1.byType["INSTANCE"]?.amounts == ["VCPU": 2, "MEMORY_MB": 1024])
            #expect(p1.byType["MIGRATION"]?.amounts == ["VCPU": 4])
            #expect(p1.byType["unknown"]?.amounts == ["VCPU": 1])
            #expect(try await store.usageTotals(projectID: "p1", userID: nil, consumerType: "all").total == p1.total)

            let u1 = try await store.usageTotals(projectID: "p1", userID: "u1", consumerType: nil)
            #expect(u1.total == ["VCPU": 3, "MEMORY_MB": 1024])
            let instances = try await store.usageTotals(projectID: "p1", userID: nil, consumerType: "INSTANCE")
            #expect(instances.total == ["VCPU": 2, "MEMORY_MB": 1024])
            #expect(instances.byType.keys.sorted() == ["INSTANCE"])
            let unknown = try await store.usageTotals(projectID: "p1", userID: nil, consumerType: "unknown")
            #expect(unknown.total == ["VCPU": 1])
            #expect(try await store.usageTotals(projectID: "p2", userID: nil, consumerType: nil).total == ["VCPU": 8])
            let nobody = try await store.usageTotals(projectID: "nobody", userID: nil, consumerType: nil)
            #expect(nobody.total.isEmpty)
            #expect(nobody.byType.isEmpty)
        }
    }

    @Test("provider usages list every inventoried class, used or not", arguments: TestBackend.all)
    func providerUsages(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await makeComputeNode(store, name: "cn", vcpu: 8, memory: 4096)
            let (provider, usage) = try await store.usages(providerUUID: rp)
            #expect(provider.uuid == rp)
            #expect(usage == ["VCPU": 0, "MEMORY_MB": 0])
            try await store.replaceAllocations([
                allocation(newUUID(), [(rp, .vcpu, 3)]), allocation(newUUID(), [(rp, .vcpu, 2), (rp, .memoryMB, 64)]),
            ])
            #expect(try await store.usages(providerUUID: rp).1 == ["VCPU": 5, "MEMORY_MB": 64])
            await expectPlacementError(.notFound) { try await store.usages(providerUUID: newUUID()) }
        }
    }
}
