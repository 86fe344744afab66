import AllotCore
import AllotStore

extension PlacementRoutes {
    func reshaper(_ call: Call) async throws -> Reply {
        let body = try call.body(ReshaperBody.self)
        let requests = body.allocations.map { consumer, entry in entry.request(consumer: consumer) }
        try await store.reshape(inventories: body.inventories, allocations: requests)
        return .noContent
    }
}
