import AllotCore
import SQLKit

/// The steps of one all-or-nothing allocation write, inside one transaction.
struct AllocationWriter {
    let tx: Transaction
    let now: Double
    let unknownClassPrefix: String

    func replace(_ requests: [ConsumerAllocationRequest]) async throws {
        let consumerUUIDs = Set(requests.map(\.consumerUUID))
        // 1. Consumers: check generations.
        var existing: [String: ConsumerRow] = [:]
        for request in requests {
            let row = try await SQLPlacementStore.consumer(uuid: request.consumerUUID, tx: tx, lock: true)
            existing[request.consumerUUID] = row
            try checkGeneration(request: request, existing: row)
        }
        // 2. Providers: every new one must exist; consumers emptied by this write also touch their old ones.
        //    All are locked in id order (no deadlocks).
        var providerUUIDs = Set(requests.flatMap { $0.items.map(\.providerUUID) })
        for uuid in providerUUIDs.sorted() where try await tx.provider(uuid: uuid) == nil {
            throw PlacementError.badRequest("Allocation for resource provider '\(uuid)' that does not exist.")
        }
        // What the consumers hold now: emptied consumers lock their old providers, and every provider that loses
        // allocations is recorded as changed (step 5).
        typealias Holding = (consumer: String, providerID: Int, providerUUID: String)
        let held: [Holding] = consumerUUIDs.isEmpty ? [] : try await tx.rows(
            """
            SELECT DISTINCT a.consumer_id, a.resource_provider_id, rp.uuid FROM allocations a
            JOIN resource_providers rp ON rp.id = a.resource_provider_id
            WHERE a.consumer_id IN (\(binds: consumerUUIDs.sorted()))
            """
        ).map { row in
            (consumer: try row.decode(column: "consumer_id", as: String.self),
             providerID: try row.decode(column: "resource_provider_id", as: Int.self),
             providerUUID: try row.decode(column: "uuid", as: String.self))
        }
        let emptied = Set(requests.filter(\.items.isEmpty).map(\.consumerUUID))
        providerUUIDs.formUnion(held.filter { emptied.contains($0.consumer) }.map(\.providerUUID))
        var providers: [String: ProviderRow] = [:]
        for uuid in providerUUIDs.sorted() {
            providers[uuid] = try await tx.requireProvider(uuid: uuid)
        }
        if tx.flavor == .postgres, !providers.isEmpty {
            try await tx.run(
                "SELECT id FROM resource_providers WHERE id IN (\(binds: providers.values.map(\.id).sorted())) ORDER BY id FOR UPDATE")
            for uuid in providers.keys { providers[uuid] = try await tx.requireProvider(uuid: uuid) }
        }
        // 3. Classes must exist.
        let classNames = Set(requests.flatMap { $0.items.map(\.resourceClass.name) })
        let classes = try await tx.resourceClassIDs(classNames)
        if let missing = classes.missing.sorted().first {
            throw PlacementError.badRequest(unknownClassPrefix + "No such resource class \(missing).")
        }
        // 4. Remove the old allocations, then check and add the new ones.
        if !consumerUUIDs.isEmpty {
            try await tx.run("DELETE FROM allocations WHERE consumer_id IN (\(binds: consumerUUIDs.sorted()))")
        }
        try await checkCapacity(requests, providers: providers, classIDs: classes.ids)
        for request in requests {
            for item in request.items {
                try await tx.run(
                    """
                    INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used, created_at, updated_at)
                    VALUES (\(bind: providers[item.providerUUID]!.id), \(bind: request.consumerUUID),
                      \(bind: classes.ids[item.resourceClass.name]!), \(bind: item.used), \(bind: now), NULL)
                    """)
            }
            try await saveConsumer(request, existing: existing[request.consumerUUID])
        }
        // 5. Every provider the write named gets a new generation.
        for provider in providers.values.sorted(by: { $0.id < $1.id }) {
            try await tx.bumpGeneration(providerID: provider.id, expected: provider.generation, now: now)
        }
        // Providers that only lost allocations keep their generation (as upstream) but cached snapshots must
        // see the freed capacity.
        let bumped = Set(providers.values.map(\.id))
        for provider in Set(held.map(\.providerID)).subtracting(bumped).sorted() {
            try await tx.recordChange(.provider(provider))
        }
    }

    private func checkGeneration(request: ConsumerAllocationRequest, existing: ConsumerRow?) throws {
        switch request.expectedGeneration {
        case .unchecked:
            return
        case .new:
            if let existing {
                throw PlacementError.concurrentUpdate(
                    "consumer generation conflict - expected \(existing.generation) but got None")
            }
        case .exactly(let generation):
            guard let existing else {
                throw PlacementError.concurrentUpdate(
                    "consumer generation conflict - expected null but got \(generation)")
            }
            if existing.generation != generation {
                throw PlacementError.concurrentUpdate(
                    "consumer generation conflict - expected \(existing.generation) but got \(generation)")
            }
        }
    }

    /// Checks unit rules and free capacity of every (provider, class) pair the requests touch.
    private func checkCapacity(
        _ requests: [ConsumerAllocationRequest], providers: [String: ProviderRow], classIDs: [String: Int]
    ) async throws {
        var wanted: [String: [String: Int]] = [:]
        for request in requests {
            for item in request.items {
                wanted[item.providerUUID, default: [:]][item.resourceClass.name, default: 0] += item.used
            }
        }
        for (providerUUID, amounts) in wanted.sorted(by: { $0.key < $1.key }) {
            let provider = providers[providerUUID]!
            let (inventories, _) = try await SQLPlacementStore.loadInventories(providerID: provider.id, tx: tx)
            let usage = try await tx.providerUsage(providerID: provider.id)
            for (name, total) in amounts.sorted(by: { $0.key < $1.key }) {
                guard let inventory = inventories[name] else {
                    throw PlacementError.conflict(
                        "Unable to allocate inventory: Inventory for '\(name)' on resource provider "
                            + "'\(providerUUID)' invalid.")
                }
                for request in requests {
                    for item in request.items where item.providerUUID == providerUUID && item.resourceClass.name == name {
                        if inventory.unitProblem(amount: item.used) != nil {
                            throw PlacementError.conflict(
                                "Unable to allocate inventory: Unable to create allocation for '\(name)' on resource "
                                    + "provider '\(providerUUID)'. The requested amount would violate inventory "
                                    + "constraints.")
                        }
                    }
                }
                if !inventory.fits(additional: total, used: usage[name] ?? 0) {
                    throw PlacementError.conflict(
                        "Unable to allocate inventory: Unable to create allocation for '\(name)' on resource provider "
                            + "'\(providerUUID)'. The requested amount would exceed the capacity.")
                }
            }
        }
    }

    /// Creates, updates or deletes the consumer row after its allocations were written.
    private func saveConsumer(_ request: ConsumerAllocationRequest, existing: ConsumerRow?) async throws {
        if request.items.isEmpty {
            if let existing { try await tx.run("DELETE FROM consumers WHERE id = \(bind: existing.id)") }
            return
        }
        let owner = request.owner
            ?? ConsumerOwner(projectID: IncompleteConsumer.projectID, userID: IncompleteConsumer.userID,
                             consumerType: existing?.owner.consumerType)
        let projectID = try await tx.externalID(table: "projects", owner.projectID)
        let userID = try await tx.externalID(table: "users", owner.userID)
        var typeID: Int?
        if let type = owner.consumerType ?? (request.owner == nil ? nil : existing?.owner.consumerType) {
            typeID = try await tx.consumerTypeID(type, now: now)
        }
        if let existing {
            try await tx.run(
                """
                UPDATE consumers SET project_id = \(bind: projectID), user_id = \(bind: userID),
                  consumer_type_id = \(bind: typeID), generation = generation + 1, updated_at = \(bind: now)
                WHERE id = \(bind: existing.id)
                """)
        } else {
            do {
                try await tx.run(
                    """
                    INSERT INTO consumers (uuid, project_id, user_id, consumer_type_id, generation, created_at, updated_at)
                    VALUES (\(bind: request.consumerUUID), \(bind: projectID), \(bind: userID), \(bind: typeID), 1,
                      \(bind: now), NULL)
                    """)
            } catch where isUniqueViolation(error) {
                throw PlacementError.concurrentUpdate(
                    "consumer generation conflict - expected null but got 1")
            }
        }
    }
}

extension Transaction {
    /// The id of a project or user row, created when missing.
    func externalID(table: String, _ external: String) async throws -> Int {
        if let row = try await row("SELECT id FROM \(ident: table) WHERE external_id = \(bind: external)") {
            return try row.decode(column: "id", as: Int.self)
        }
        try await run("INSERT INTO \(ident: table) (external_id) VALUES (\(bind: external)) ON CONFLICT DO NOTHING")
        guard let row = try await row("SELECT id FROM \(ident: table) WHERE external_id = \(bind: external)") else {
            throw StoreError.corrupt("\(table) row vanished after insert")
        }
        return try row.decode(column: "id", as: Int.self)
    }

    /// The id of a consumer type, created when missing.
    func consumerTypeID(_ name: String, now: Double) async throws -> Int {
        if let row = try await row("SELECT id FROM consumer_types WHERE name = \(bind: name)") {
            return try row.decode(column: "id", as: Int.self)
        }
        try await run(
            "INSERT INTO consumer_types (name, created_at, updated_at) VALUES (\(bind: name), \(bind: now), NULL) ON CONFLICT DO NOTHING")
        guard let row = try await row("SELECT id FROM consumer_types WHERE name = \(bind: name)") else {
            throw StoreError.corrupt("consumer type vanished after insert")
        }
        return try row.decode(column: "id", as: Int.self)
    }
}
