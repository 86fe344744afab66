import AllotCore
import AllotStore
import Testing

extension StoreTests {
    /// A cached search state brought forward by re-reading only the changed providers must equal a fresh read.
    func expectPatchedMatchesFresh(
        _ store: SQLPlacementStore, _ cached: SearchState, patched expectPatched: Bool,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> SearchState {
        let updated = try await store.searchState(updating: cached)
        let fresh = try await store.searchState()
        #expect(updated.sequence == fresh.sequence, sourceLocation: sourceLocation)
        #expect(updated.sequence > cached.sequence, sourceLocation: sourceLocation)
        #expect(updated.patched == expectPatched, sourceLocation: sourceLocation)
        #expect(updated.snapshot.providers == fresh.snapshot.providers, sourceLocation: sourceLocation)
        #expect(updated.classes == fresh.classes && updated.traits == fresh.traits, sourceLocation: sourceLocation)
        return updated
    }

    @Test("cached snapshots follow every kind of write by re-reading only what changed", arguments: TestBackend.all)
    func snapshotDeltas(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let a = try await makeComputeNode(store, name: "a", vcpu: 8, memory: 4096)
            let b = try await makeComputeNode(store, name: "b", vcpu: 8, memory: 4096)
            var state = try await store.searchState()
            #expect(try await store.searchState(updating: state).sequence == state.sequence)

            // Allocations: new, moved from a to b (a loses usage without a generation bump), deleted.
            let consumer = newUUID()
            try await store.replaceAllocations([allocation(consumer, [(a, .vcpu, 2), (a, .memoryMB, 512)])])
            state = try await expectPatchedMatchesFresh(store, state, patched: true)
            #expect(state.snapshot.providers[state.snapshot.indexByUUID[a]!].used == ["VCPU": 2, "MEMORY_MB": 512])
            try await store.replaceAllocations([allocation(consumer, [(b, .vcpu, 3)])])
            state = try await expectPatchedMatchesFresh(store, state, patched: true)
            #expect(state.snapshot.providers[state.snapshot.indexByUUID[a]!].used.isEmpty)
            try await store.deleteAllocations(consumerUUID: consumer)
            state = try await expectPatchedMatchesFresh(store, state, patched: true)

            // Inventories, traits, aggregates.
            let generation = try #require(try await store.provider(uuid: a)).generation
            _ = try await store.replaceInventories(
                providerUUID: a, generation: generation, inventories: ["DISK_GB": Inventory(total: 100, reserved: 5)])
            state = try await expectPatchedMatchesFresh(store, state, patched: true)
            #expect(try await store.createTrait(named: "CUSTOM_FAST"))
            let traited = try await store.setProviderTraits(
                providerUUID: a, generation: generation + 1, traits: ["CUSTOM_FAST", "HW_CPU_X86_AVX2"])
            state = try await expectPatchedMatchesFresh(store, state, patched: true)
            #expect(state.traits.contains("CUSTOM_FAST"))
            _ = try await store.setProviderAggregates(
                providerUUID: a, generation: traited.0.generation, aggregates: [newUUID()])
            state = try await expectPatchedMatchesFresh(store, state, patched: true)

            // A rename re-reads the provider's row: its name and updated_at are listed from the snapshot.
            _ = try await store.updateProvider(
                uuid: a, name: "a-renamed", parentUUID: nil, setParent: false, allowReparent: false)
            state = try await expectPatchedMatchesFresh(store, state, patched: true)
            #expect(state.snapshot.providers[state.snapshot.indexByUUID[a]!].name == "a-renamed")

            // New, moved and deleted providers change the shape: read afresh.
            let child = newUUID()
            _ = try await store.createProvider(uuid: child, name: "child", parentUUID: a)
            state = try await expectPatchedMatchesFresh(store, state, patched: false)
            try await store.deleteProvider(uuid: child)
            state = try await expectPatchedMatchesFresh(store, state, patched: false)
        }
    }
}
