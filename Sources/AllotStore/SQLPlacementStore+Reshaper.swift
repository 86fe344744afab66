public import AllotCore
import SQLKit

/// One provider's new inventory in a reshape, with the generation the client saw.
public struct ReshapeInventory: Sendable {
    public var providerUUID: String
    public var generation: Int
    public var inventories: [String: Inventory]

    public init(providerUUID: String, generation: Int, inventories: [String: Inventory]) {
        self.providerUUID = providerUUID
        self.generation = generation
        self.inventories = inventories
    }
}

extension SQLPlacementStore {
    /// Replaces the inventories of several providers and the allocations of several consumers, all or nothing
    /// (`POST /reshaper`).
    ///
    /// Order, as upstream: generations are checked; each provider's inventory becomes old ∪ new (so allocations
    /// can move); the allocations are replaced against that interim inventory; then each inventory becomes
    /// exactly the new one.
    /// - Throws: 400 (unknown provider or class), 409 (generations, capacity, a removed class still in use).
    public func reshape(inventories: [ReshapeInventory], allocations: [ConsumerAllocationRequest]) async throws {
        let now = now()
        // As upstream: the providers of the inventories and their generations first, then the consumers are made
        // to exist and the allocations' providers looked up (committed on their own), then the reshape itself.
        let ensured = try await ensureConsumers(allocations, now: now) { tx in
            for item in inventories {
                guard let provider = try await tx.provider(uuid: item.providerUUID) else {
                    throw PlacementError.badRequest(
                        "Resource provider \(item.providerUUID) in inventories not found: No resource provider with "
                            + "uuid \(item.providerUUID) found", code: .providerNotFound)
                }
                if provider.generation != item.generation {
                    throw PlacementError.concurrentUpdate(
                        "resource provider generation conflict for provider \(item.providerUUID): actual: "
                            + "\(provider.generation), given: \(item.generation)")
                }
            }
        }
        do {
            try await database.transaction { tx in
                var providers: [ProviderRow] = []
                for item in inventories {
                    let provider = try await tx.requireProvider(uuid: item.providerUUID, lock: true)
                    if provider.generation != item.generation {
                        throw PlacementError.concurrentUpdate(
                            "resource provider generation conflict for provider \(item.providerUUID): actual: "
                                + "\(provider.generation), given: \(item.generation)")
                    }
                    providers.append(provider)
                }
                let prefix = "malformed reshaper data: "
                for (item, provider) in zip(inventories, providers) where !item.inventories.isEmpty {
                    let (current, _) = try await Self.loadInventories(providerID: provider.id, tx: tx)
                    try await Self.writeInventories(
                        provider: provider, current: current, next: current.merging(item.inventories) { $1 },
                        inUse: .replace, unknownClassPrefix: prefix, now: now, tx: tx)
                    try await tx.bumpGeneration(providerID: provider.id, expected: provider.generation, now: now)
                }
                try await AllocationWriter(tx: tx, now: now, unknownClassPrefix: prefix)
                    .replace(allocations, consumers: ensured)
                for item in inventories {
                    let provider = try await tx.requireProvider(uuid: item.providerUUID)
                    let (current, _) = try await Self.loadInventories(providerID: provider.id, tx: tx)
                    try await Self.writeInventories(
                        provider: provider, current: current, next: item.inventories, inUse: .replace,
                        unknownClassPrefix: prefix, now: now, tx: tx)
                    try await tx.bumpGeneration(providerID: provider.id, expected: provider.generation, now: now)
                }
            }
        } catch {
            try await deleteCreatedConsumers(ensured)
            throw error
        }
    }
}
