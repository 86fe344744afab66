import AllotCore
import AllotStore

/// The Placement API's handlers (providers, inventories, resource classes and traits, aggregates, allocations,
/// usages, allocation candidates, the reshaper) over their store. ``PlacementResponder`` routes a call here once it
/// has authenticated it, checked its version, headers and policy, and read its body.
struct PlacementRoutes: Sendable {
    let store: SQLPlacementStore
    let searchCache = SearchStateCache()
    /// Allocation candidates: the cap on how many are generated, the generation order, and whether trees are
    /// visited in a random order (``PlacementConfiguration``).
    let maxAllocationCandidates: Int?
    let candidateStrategy: GenerationStrategy
    let randomizeCandidates: Bool

    init(store: SQLPlacementStore, configuration: PlacementConfiguration) {
        self.store = store
        maxAllocationCandidates = configuration.maxAllocationCandidates
        candidateStrategy = configuration.candidateStrategy
        randomizeCandidates = configuration.randomizeCandidates
    }

    /// Runs the endpoint's handler.
    func handle(_ endpoint: Endpoint, _ call: Call) async throws -> Reply {
        switch endpoint {
        case .listProviders: return try await listProviders(call)
        case .createProvider: return try await createProvider(call)
        case .showProvider: return try await showProvider(call)
        case .updateProvider: return try await updateProvider(call)
        case .deleteProvider: return try await deleteProvider(call)
        case .listInventories: return try await listInventories(call)
        case .replaceInventories: return try await replaceInventories(call)
        case .deleteInventories: return try await deleteInventories(call)
        case .createInventory: return try await createInventory(call)
        case .showInventory: return try await showInventory(call)
        case .updateInventory: return try await updateInventory(call)
        case .deleteInventory: return try await deleteInventory(call)
        case .listResourceClasses: return try await listResourceClasses(call)
        case .createResourceClass: return try await createResourceClass(call)
        case .showResourceClass: return try await showResourceClass(call)
        case .updateResourceClass: return try await updateResourceClass(call)
        case .deleteResourceClass: return try await deleteResourceClass(call)
        case .listTraits: return try await listTraits(call)
        case .showTrait: return try await showTrait(call)
        case .createTrait: return try await createTrait(call)
        case .deleteTrait: return try await deleteTrait(call)
        case .providerTraits: return try await providerTraits(call)
        case .setProviderTraits: return try await setProviderTraits(call)
        case .deleteProviderTraits: return try await deleteProviderTraits(call)
        case .providerAggregates: return try await providerAggregates(call)
        case .setProviderAggregates: return try await setProviderAggregates(call)
        case .consumerAllocations: return try await consumerAllocations(call)
        case .setConsumerAllocations: return try await setConsumerAllocations(call)
        case .deleteConsumerAllocations: return try await deleteConsumerAllocations(call)
        case .postAllocations: return try await postAllocations(call)
        case .providerAllocations: return try await providerAllocations(call)
        case .providerUsages: return try await providerUsages(call)
        case .usages: return try await usages(call)
        case .allocationCandidates: return try await allocationCandidates(call)
        case .reshaper: return try await reshaper(call)
        case .computeFit: return try await computeFit(call)
        case .root, .computeNodes, .computeNode, .computeInstances, .computeBuild, .computeInstance,
            .computeDeleteInstance, .computeInstanceState, .computeInstanceAbort, .computeMigrations, .computeMove,
            .computeMigration, .computeMigrationAction, .computeAudit, .computeEvents, .computeLedgerInfo,
            .computeLedger:
            // Not Placement's: the shell routes these elsewhere (``PlacementResponder/handle(_:_:)``).
            throw PlacementError.lookupFailed("")
        }
    }

    /// Runs `body`, answering a missing provider with the handler's own 404 (`"<prefix><detail>"`), as the
    /// upstream handlers that catch the lookup's `NotFound` do (their 404 keeps `Vary`).
    func catchingProviderLookup<T>(_ prefix: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PlacementError where error.kind == .notFound && error.escapesHandler {
            throw PlacementError.notFound(prefix + error.detail)
        }
    }
}
