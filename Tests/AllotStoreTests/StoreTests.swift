import AllotCore
import AllotStore
import Foundation
import SQLKit
import Testing

/// The storage suite: every test runs on each backend in ``TestBackend/all`` through the store's public API.
@Suite("SQL placement store")
struct StoreTests {
    @Test(
        "PostgreSQL is reachable and migrated",
        .enabled(if: TestBackend.postgresURL != nil, "set ALLOT_TEST_POSTGRES_URL to run the suite on PostgreSQL"))
    func postgresConfigured() async throws {
        let url = try #require(TestBackend.postgresURL)
        try await TestBackend.postgres(url: url).withStore { store in
            let classes = try await store.resourceClasses()
            #expect(store.database.flavor == .postgres)
            #expect(classes.map(\.name) == ResourceClass.standardNames)
        }
    }

    @Test("a new database holds the standard classes in order and the standard traits", arguments: TestBackend.all)
    func seeded(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let classes = try await store.resourceClasses()
            #expect(classes.map(\.name) == ResourceClass.standardNames)
            let traits = try await store.traits(TraitFilter())
            #expect(traits.map(\.name) == AllotCore.Trait.standardNames)
            #expect(try await store.providers(matching: ProviderFilter()).isEmpty)
        }
    }

    // MARK: Providers

    @Test("a created provider is a root at generation 0 and can be read back", arguments: TestBackend.all)
    func createAndGet(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = newUUID()
            let created = try await store.createProvider(uuid: uuid, name: "cn1", parentUUID: nil)
            #expect(created.uuid == uuid)
            #expect(created.name == "cn1")
            #expect(created.generation == 0)
            #expect(created.parentUUID == nil)
            #expect(created.rootUUID == uuid)
            #expect(created.createdAt == TestBackend.now)
            #expect(try await store.provider(uuid: uuid) == created)
            #expect(try await store.provider(uuid: newUUID()) == nil)
        }
    }

    @Test("text holding a NUL character is refused whole, never cut short at the NUL", arguments: TestBackend.all)
    func nulCharacterIsRefused(backend: TestBackend) async throws {
        try await backend.withStore { store in
            // SQLite once bound text up to its first NUL: "a\u{0}b" was stored as "a", and "a\u{0}c" was then
            // refused as a duplicate of it.
            await expectPlacementError(.badRequest) {
                try await store.createProvider(uuid: newUUID(), name: "a\u{0}b", parentUUID: nil)
            }
            await expectPlacementError(.badRequest) {
                try await store.createProvider(uuid: newUUID(), name: "a\u{0}c", parentUUID: nil)
            }
            #expect(try await store.providers(matching: ProviderFilter()).isEmpty)
            // Text around the NUL is stored exactly (multi-byte characters included), and a name is not a prefix.
            let created = try await store.createProvider(uuid: newUUID(), name: "a\u{2603}b", parentUUID: nil)
            #expect(created.name == "a\u{2603}b")
            #expect(try await store.provider(uuid: created.uuid)?.name == "a\u{2603}b")
            _ = try await store.createProvider(uuid: newUUID(), name: "a", parentUUID: nil)
        }
    }

    @Test(
        "a bind value that is not a single value is an error, not a crash",
        arguments: TestBackend.all.filter { if case .postgres = $0 { false } else { true } })
    func nonScalarBindThrows(backend: TestBackend) async throws {
        struct Pair: Encodable, Sendable { var a = 1, b = 2 }
        try await backend.withStore { store in
            await #expect(throws: (any Error).self) {
                try await store.database.withConnection { db in
                    try await db.raw("SELECT \(bind: Pair()) AS value").run()
                }
            }
            await #expect(throws: (any Error).self) {
                try await store.database.withConnection { db in
                    try await db.raw("SELECT \(bind: [Pair()]) AS value").run()
                }
            }
            // The connection still works afterwards.
            let providers = try await store.providers(matching: ProviderFilter())
            #expect(providers.isEmpty)
        }
    }

    @Test("a taken uuid or name is a conflict and creates nothing", arguments: TestBackend.all)
    func duplicates(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = newUUID()
            _ = try await store.createProvider(uuid: uuid, name: "cn1", parentUUID: nil)
            await expectPlacementError(.conflict) {
                try await store.createProvider(uuid: uuid, name: "other", parentUUID: nil)
            }
            await expectPlacementError(.conflict, code: .duplicateName) {
                try await store.createProvider(uuid: newUUID(), name: "cn1", parentUUID: nil)
            }
            let all = try await store.providers(matching: ProviderFilter())
            #expect(all.map(\.uuid) == [uuid])
        }
    }

    @Test("children know their parent and their tree's root", arguments: TestBackend.all)
    func tree(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let root = try await store.createProvider(uuid: newUUID(), name: "root", parentUUID: nil)
            let child = try await store.createProvider(uuid: newUUID(), name: "child", parentUUID: root.uuid)
            let grandchild = try await store.createProvider(uuid: newUUID(), name: "grandchild", parentUUID: child.uuid)
            #expect(child.parentUUID == root.uuid)
            #expect(child.rootUUID == root.uuid)
            #expect(grandchild.parentUUID == child.uuid)
            #expect(grandchild.rootUUID == root.uuid)
            let orphan = newUUID()
            await expectPlacementError(.badRequest) {
                try await store.createProvider(uuid: orphan, name: "orphan", parentUUID: newUUID())
            }
            #expect(try await store.provider(uuid: orphan) == nil)
        }
    }

    @Test("deleting a parent is refused; children first, then the parent", arguments: TestBackend.all)
    func deleteTree(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let root = try await store.createProvider(uuid: newUUID(), name: "root", parentUUID: nil)
            let child = try await store.createProvider(uuid: newUUID(), name: "child", parentUUID: root.uuid)
            await expectPlacementError(.conflict, code: .cannotDeleteParent) {
                try await store.deleteProvider(uuid: root.uuid)
            }
            #expect(try await store.provider(uuid: root.uuid) != nil)
            try await store.deleteProvider(uuid: child.uuid)
            try await store.deleteProvider(uuid: root.uuid)
            #expect(try await store.provider(uuid: root.uuid) == nil)
            #expect(try await store.providers(matching: ProviderFilter()).isEmpty)
            await expectPlacementError(.notFound, code: .undefined) {
                try await store.deleteProvider(uuid: root.uuid)
            }
        }
    }

    @Test("deleting a provider takes its inventories, traits and aggregates with it", arguments: TestBackend.all)
    func deleteCleansUp(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = try await makeComputeNode(store, name: "cn1", vcpu: 4)
            let aggregate = newUUID()
            _ = try await store.setProviderTraits(providerUUID: uuid, generation: nil, traits: ["HW_CPU_X86_AVX2"])
            _ = try await store.setProviderAggregates(providerUUID: uuid, generation: nil, aggregates: [aggregate])
            try await store.deleteProvider(uuid: uuid)
            // The same uuid can come back empty.
            _ = try await store.createProvider(uuid: uuid, name: "cn1", parentUUID: nil)
            #expect(try await store.inventories(providerUUID: uuid).inventories.isEmpty)
            #expect(try await store.providerTraits(providerUUID: uuid).1.isEmpty)
            #expect(try await store.providerAggregates(providerUUID: uuid).1.isEmpty)
        }
    }

    @Test("a provider with allocations cannot be deleted", arguments: TestBackend.all)
    func deleteInUse(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let uuid = try await makeComputeNode(store, name: "cn1", vcpu: 4)
            try await store.replaceAllocations([allocation(newUUID(), [(uuid, .vcpu, 1)])])
            await expectPlacementError(.conflict, code: .providerInUse) {
                try await store.deleteProvider(uuid: uuid)
            }
            #expect(try await store.provider(uuid: uuid) != nil)
        }
    }

    @Test("renaming checks that the new name is free", arguments: TestBackend.all)
    func rename(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let a = try await store.createProvider(uuid: newUUID(), name: "a", parentUUID: nil)
            _ = try await store.createProvider(uuid: newUUID(), name: "b", parentUUID: nil)
            let renamed = try await store.updateProvider(
                uuid: a.uuid, name: "a2", parentUUID: nil, setParent: false, allowReparent: false)
            #expect(renamed.name == "a2")
            #expect(try await store.provider(uuid: a.uuid)?.name == "a2")
            await expectPlacementError(.conflict, code: .duplicateName) {
                try await store.updateProvider(
                    uuid: a.uuid, name: "b", parentUUID: nil, setParent: false, allowReparent: false)
            }
            #expect(try await store.provider(uuid: a.uuid)?.name == "a2")
            await expectPlacementError(.notFound) {
                try await store.updateProvider(
                    uuid: newUUID(), name: "c", parentUUID: nil, setParent: false, allowReparent: false)
            }
        }
    }

    @Test("re-parenting: a root may gain a parent; moving or un-parenting needs 1.37", arguments: TestBackend.all)
    func reparent(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let r1 = try await store.createProvider(uuid: newUUID(), name: "r1", parentUUID: nil)
            let r2 = try await store.createProvider(uuid: newUUID(), name: "r2", parentUUID: nil)
            let sub = try await store.createProvider(uuid: newUUID(), name: "sub", parentUUID: nil)
            let leaf = try await store.createProvider(uuid: newUUID(), name: "leaf", parentUUID: sub.uuid)

            // A root (with its subtree) joins a tree even before 1.37.
            let joined = try await store.updateProvider(
                uuid: sub.uuid, name: "sub", parentUUID: r1.uuid, setParent: true, allowReparent: false)
            #expect(joined.parentUUID == r1.uuid)
            #expect(joined.rootUUID == r1.uuid)
            #expect(try await store.provider(uuid: leaf.uuid)?.rootUUID == r1.uuid)

            // Moving to another parent, or un-parenting, is refused before 1.37.
            await expectPlacementError(.badRequest) {
                try await store.updateProvider(
                    uuid: sub.uuid, name: "sub", parentUUID: r2.uuid, setParent: true, allowReparent: false)
            }
            await expectPlacementError(.badRequest) {
                try await store.updateProvider(
                    uuid: sub.uuid, name: "sub", parentUUID: nil, setParent: true, allowReparent: false)
            }
            #expect(try await store.provider(uuid: sub.uuid)?.parentUUID == r1.uuid)

            // With 1.37 both work, and the whole subtree follows.
            let moved = try await store.updateProvider(
                uuid: sub.uuid, name: "sub", parentUUID: r2.uuid, setParent: true, allowReparent: true)
            #expect(moved.parentUUID == r2.uuid)
            #expect(moved.rootUUID == r2.uuid)
            #expect(try await store.provider(uuid: leaf.uuid)?.rootUUID == r2.uuid)
            let freed = try await store.updateProvider(
                uuid: sub.uuid, name: "sub", parentUUID: nil, setParent: true, allowReparent: true)
            #expect(freed.parentUUID == nil)
            #expect(freed.rootUUID == sub.uuid)
            #expect(try await store.provider(uuid: leaf.uuid)?.rootUUID == sub.uuid)
            #expect(try await store.provider(uuid: leaf.uuid)?.parentUUID == sub.uuid)
        }
    }

    @Test("re-parenting refuses loops, itself and unknown parents", arguments: TestBackend.all)
    func reparentRefusals(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let root = try await store.createProvider(uuid: newUUID(), name: "root", parentUUID: nil)
            let child = try await store.createProvider(uuid: newUUID(), name: "child", parentUUID: root.uuid)
            let grandchild = try await store.createProvider(uuid: newUUID(), name: "gc", parentUUID: child.uuid)
            for parent in [grandchild.uuid, child.uuid, root.uuid, newUUID()] {
                await expectPlacementError(.badRequest) {
                    try await store.updateProvider(
                        uuid: root.uuid, name: "root", parentUUID: parent, setParent: true, allowReparent: true)
                }
            }
            let unchanged = try #require(try await store.provider(uuid: root.uuid))
            #expect(unchanged.parentUUID == nil)
            #expect(unchanged.rootUUID == root.uuid)
            #expect(try await store.provider(uuid: grandchild.uuid)?.rootUUID == root.uuid)
        }
    }
}

// MARK: Helpers

func newUUID() -> String { UUID().uuidString.lowercased() }

/// Expects `body` to throw a ``PlacementError`` of this kind (and code, when given).
func expectPlacementError<R>(
    _ kind: PlacementError.Kind, code: ErrorCode? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> R
) async {
    let error = await #expect(throws: PlacementError.self, sourceLocation: sourceLocation) { _ = try await body() }
    #expect(error?.kind == kind, "\(error.map { "\($0)" } ?? "no error")", sourceLocation: sourceLocation)
    if let code {
        #expect(error?.code == code, "\(error.map { "\($0)" } ?? "no error")", sourceLocation: sourceLocation)
    }
}

/// A root provider with `vcpu` VCPU and, when given, `memory` MEMORY_MB of inventory.
func makeComputeNode(_ store: SQLPlacementStore, name: String, vcpu: Int, memory: Int? = nil) async throws -> String {
    let uuid = newUUID()
    let provider = try await store.createProvider(uuid: uuid, name: name, parentUUID: nil)
    var inventories = ["VCPU": Inventory(total: vcpu)]
    if let memory { inventories["MEMORY_MB"] = Inventory(total: memory) }
    _ = try await store.replaceInventories(
        providerUUID: uuid, generation: provider.generation, inventories: inventories)
    return uuid
}

let projectA = ConsumerOwner(projectID: "project-a", userID: "user-1")

/// One consumer's allocation request.
func allocation(
    _ consumer: String, _ items: [(provider: String, resourceClass: ResourceClass, used: Int)],
    owner: ConsumerOwner? = projectA, generation: ExpectedGeneration = .unchecked
) -> ConsumerAllocationRequest {
    ConsumerAllocationRequest(
        consumerUUID: consumer,
        items: items.map { AllocationItem(providerUUID: $0.provider, resourceClass: $0.resourceClass, used: $0.used) },
        owner: owner, expectedGeneration: generation)
}
