import AllotCore
import AllotStore
import Testing

extension StoreTests {
    /// How one concurrent writer ended.
    enum WriteOutcome: Sendable {
        case succeeded(consumer: String, attempts: Int)
        case refused(consumer: String, PlacementError)
        case failed(consumer: String, String)
    }

    @Test(
        "40 concurrent writers on a provider with room for 10: exactly 10 win, none is lost, nothing is oversold",
        arguments: TestBackend.all)
    func concurrentAllocations(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await makeComputeNode(store, name: "cn", vcpu: 10)
            let generationBefore = try #require(try await store.provider(uuid: rp)?.generation)
            let consumers = (0..<40).map { _ in newUUID() }

            let outcomes = await withTaskGroup(of: WriteOutcome.self) { group in
                for consumer in consumers {
                    group.addTask {
                        await Self.allocateRetryingGenerationConflicts(store, consumer: consumer, provider: rp)
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }

            var winners: Set<String> = []
            var losers: Set<String> = []
            for outcome in outcomes {
                switch outcome {
                case .succeeded(let consumer, _):
                    winners.insert(consumer)
                case .refused(let consumer, let error):
                    losers.insert(consumer)
                    // Only capacity refusals count: a generation conflict would have been retried.
                    #expect(error.kind == .conflict)
                    #expect(error.code != .concurrentUpdate)
                    #expect(error.detail.contains("capacity"), "\(error)")
                case .failed(let consumer, let description):
                    Issue.record("consumer \(consumer) failed unexpectedly: \(description)")
                }
            }
            #expect(outcomes.count == 40)
            #expect(winners.count == 10)
            #expect(losers.count == 30)

            #expect(try await store.usages(providerUUID: rp).1 == ["VCPU": 10])
            let byConsumer = try await store.allocations(providerUUID: rp).byConsumer
            #expect(Set(byConsumer.keys) == winners)
            #expect(byConsumer.values.allSatisfy { $0 == ["VCPU": 1] })
            for consumer in winners {
                let allocations = try await store.allocations(consumerUUID: consumer)
                #expect(allocations.byProvider == [rp: ["VCPU": 1]])
                #expect(allocations.consumer?.generation == 1)
            }
            for consumer in losers {
                #expect(try await store.allocations(consumerUUID: consumer).consumer == nil)
            }
            #expect(try await store.provider(uuid: rp)?.generation == generationBefore + 10)
        }
    }

    /// Asks for 1 VCPU; a generation conflict (possible on PostgreSQL) is retried, a refusal is final.
    static func allocateRetryingGenerationConflicts(
        _ store: SQLPlacementStore, consumer: String, provider: String
    ) async -> WriteOutcome {
        var attempts = 0
        while true {
            attempts += 1
            do {
                try await store.replaceAllocations([allocation(consumer, [(provider, .vcpu, 1)], generation: .new)])
                return .succeeded(consumer: consumer, attempts: attempts)
            } catch let error as PlacementError where error.code == .concurrentUpdate && attempts < 20 {
                continue
            } catch let error as PlacementError {
                return .refused(consumer: consumer, error)
            } catch {
                return .failed(consumer: consumer, String(reflecting: error))
            }
        }
    }

    @Test("concurrent inventory writes with the same generation: exactly one wins", arguments: TestBackend.all)
    func concurrentGenerationChecks(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let rp = try await store.createProvider(uuid: newUUID(), name: "cn", parentUUID: nil).uuid
            let results = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
                for total in 1...10 {
                    group.addTask {
                        let result = await outcome {
                            try await store.replaceInventories(
                                providerUUID: rp, generation: 0, inventories: ["VCPU": Inventory(total: total)]
                            ).provider.generation
                        }
                        return (total, result)
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            var winners: [Int] = []
            for (total, result) in results {
                switch result {
                case .success(let generation):
                    #expect(generation == 1)
                    winners.append(total)
                case .failure(let error):
                    let placement = error as? PlacementError
                    #expect(placement?.kind == .conflict, "\(error)")
                    #expect(placement?.code == .concurrentUpdate, "\(error)")
                }
            }
            let winner = try #require(winners.count == 1 ? winners.first : nil, "winners: \(winners)")
            let stored = try await store.inventories(providerUUID: rp)
            #expect(stored.provider.generation == 1)
            #expect(stored.inventories == ["VCPU": Inventory(total: winner)])
        }
    }
}
