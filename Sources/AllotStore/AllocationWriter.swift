import AllotCore
import SQLKit

/// What the first phase of an allocation write found or made for one consumer.
struct EnsuredConsumer: Sendable {
    /// The consumer's generation once it exists (0 for one this write created).
    var generation: Int
    /// Whether this write created the consumer (it is removed again when the write fails, as upstream).
    var created: Bool
}

/// The steps of an allocation write, in upstream Placement's order.
///
/// Upstream first makes sure every consumer exists (its `ensure_consumer`, committed on its own: a new consumer
/// is created at generation 0 after its generation was checked), then looks the providers up (an unknown one is a
/// 400 that leaves those consumers behind), then in one transaction updates the consumers' owners and replaces
/// the allocations; when that fails the consumers it created are deleted again. A consumer written with no
/// allocations that had none keeps existing at its generation, so clients see it in generation conflicts.
struct AllocationWriter {
    let tx: Transaction
    let now: Double
    let unknownClassPrefix: String

    /// Phase one: checks each consumer's generation and creates the missing ones at generation 0, in request order.
    static func ensureConsumers(
        _ requests: [ConsumerAllocationRequest], tx: Transaction, now: Double
    ) async throws -> [String: EnsuredConsumer] {
        var ensured: [String: EnsuredConsumer] = [:]
        for request in requests {
            if let row = try await SQLPlacementStore.consumer(uuid: request.consumerUUID, tx: tx, lock: true) {
                switch request.expectedGeneration {
                case .unchecked: break
                case .new:
                    throw PlacementError.concurrentUpdate(
                        "consumer generation conflict - expected \(row.generation) but got None")
                case .exactly(let generation) where generation != row.generation:
                    throw PlacementError.concurrentUpdate(
                        "consumer generation conflict - expected \(row.generation) but got \(generation)")
                case .exactly: break
                }
                ensured[request.consumerUUID] = EnsuredConsumer(generation: row.generation, created: false)
                continue
            }
            if case .exactly(let generation) = request.expectedGeneration {
                throw PlacementError.concurrentUpdate(
                    "consumer generation conflict - expected null but got \(generation)")
            }
            let owner = request.owner ?? ConsumerOwner(
                projectID: IncompleteConsumer.projectID, userID: IncompleteConsumer.userID)
            let projectID = try await tx.externalID(table: "projects", owner.projectID)
            let userID = try await tx.externalID(table: "users", owner.userID)
            var typeID: Int?
            if let type = owner.consumerType { typeID = try await tx.consumerTypeID(type, now: now) }
            do {
                try await tx.run(
                    """
                    INSERT INTO consumers (uuid, project_id, user_id, consumer_type_id, generation, created_at, updated_at)
                    VALUES (\(bind: request.consumerUUID), \(bind: projectID), \(bind: userID), \(bind: typeID), 0,
                      \(bind: now), NULL)
                    """)
            } catch where isUniqueViolation(error) {
                throw PlacementError.concurrentUpdate("consumer generation conflict - expected null but got 0")
            }
            ensured[request.consumerUUID] = EnsuredConsumer(generation: 0, created: true)
        }
        return ensured
    }

    /// Phase two: the first provider named in the allocations that does not exist, as upstream's 400.
    static func unknownProvider(_ requests: [ConsumerAllocationRequest], tx: Transaction) async throws -> PlacementError? {
        var seen: Set<String> = []
        for request in requests {
            for item in request.items where seen.insert(item.providerUUID).inserted {
                if try await tx.provider(uuid: item.providerUUID) == nil {
                    return PlacementError.badRequest(
                        "Allocation for resource provider '\(item.providerUUID)' that does not exist.")
                }
            }
        }
        return nil
    }

    /// One allocation record as upstream's `replace_all` sees it: a new amount, or 0 for a record of a consumer
    /// whose allocations are wiped.
    private struct Entry {
        var consumer: String
        var providerUUID: String
        var className: String
        var used: Int
    }

    /// Phase three, in the caller's transaction: owners, then the allocations (upstream's `update_consumers` and
    /// `_set_allocations`).
    func replace(_ requests: [ConsumerAllocationRequest], consumers ensured: [String: EnsuredConsumer]) async throws {
        let consumerUUIDs = Set(requests.map(\.consumerUUID))
        // 1. The consumers must still be as phase one left them; their owners and types follow the request.
        var rows: [String: ConsumerRow] = [:]
        for request in requests {
            guard let row = try await SQLPlacementStore.consumer(uuid: request.consumerUUID, tx: tx, lock: true),
                row.generation == ensured[request.consumerUUID]?.generation
            else {
                throw PlacementError.concurrentUpdate(
                    "Inventory and/or allocations changed while attempting to allocate: Another thread concurrently "
                        + "updated the data. Please retry your update")
            }
            rows[request.consumerUUID] = row
            try await updateOwner(row, request: request)
        }
        // 2. The records to write: new amounts, or a wiped consumer's current records at 0.
        var entries: [Entry] = []
        for request in requests {
            if request.items.isEmpty {
                for row in try await tx.rows(
                    """
                    SELECT rp.uuid, rc.name FROM allocations a JOIN resource_providers rp ON rp.id = a.resource_provider_id
                    JOIN resource_classes rc ON rc.id = a.resource_class_id
                    WHERE a.consumer_id = \(bind: request.consumerUUID) ORDER BY a.id
                    """)
                {
                    entries.append(Entry(
                        consumer: request.consumerUUID, providerUUID: try row.decode(column: "uuid", as: String.self),
                        className: try row.decode(column: "name", as: String.self), used: 0))
                }
            } else {
                entries += request.items.map {
                    Entry(consumer: request.consumerUUID, providerUUID: $0.providerUUID,
                          className: $0.resourceClass.name, used: $0.used)
                }
            }
        }
        // 3. Providers, locked in id order (no deadlocks).
        var providers: [String: ProviderRow] = [:]
        for uuid in Set(entries.map(\.providerUUID)).sorted() {
            providers[uuid] = try await tx.requireProvider(uuid: uuid)
        }
        if tx.flavor == .postgres, !providers.isEmpty {
            try await tx.run(
                "SELECT id FROM resource_providers WHERE id IN (\(binds: providers.values.map(\.id).sorted())) ORDER BY id FOR UPDATE")
            for uuid in providers.keys { providers[uuid] = try await tx.requireProvider(uuid: uuid) }
        }
        // 4. Classes must exist (the first unknown one in request order is named).
        let classes = try await tx.resourceClassIDs(entries.map(\.className))
        if let missing = classes.missing.first {
            throw PlacementError.badRequest(unknownClassPrefix + "No such resource class \(missing).")
        }
        // What the consumers hold now: providers that only lose allocations are recorded as changed (step 7).
        let held: [Int] = consumerUUIDs.isEmpty ? [] : try await tx.allocatedProviders(consumers: consumerUUIDs.sorted())
        // 5. Usage before, remove the consumers' allocations, check capacity, write the new amounts.
        let providerIDs = Set(providers.values.map(\.id)).sorted()
        let classIDs = Set(classes.ids.values).sorted()
        let before = try await usage(providerIDs: providerIDs, classIDs: classIDs)
        if !consumerUUIDs.isEmpty {
            try await tx.run("DELETE FROM allocations WHERE consumer_id IN (\(binds: consumerUUIDs.sorted()))")
        }
        try await checkCapacity(entries, providers: providers, classIDs: classes.ids, before: before)
        for entry in entries where entry.used > 0 {
            try await tx.run(
                """
                INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used, created_at, updated_at)
                VALUES (\(bind: providers[entry.providerUUID]!.id), \(bind: entry.consumer),
                  \(bind: classes.ids[entry.className]!), \(bind: entry.used), \(bind: now), NULL)
                """)
        }
        // 6. Every provider named gets a new generation; every consumer named gets one too, and is deleted when it
        //    holds nothing now. Consumers with no records at all are left as they are.
        for provider in providers.values.sorted(by: { $0.id < $1.id }) {
            try await tx.bumpGeneration(providerID: provider.id, expected: provider.generation, now: now)
        }
        let visited = Set(entries.map(\.consumer))
        let holding = Set(entries.filter { $0.used > 0 }.map(\.consumer))
        for uuid in visited.sorted() {
            let row = rows[uuid]!
            if holding.contains(uuid) {
                try await tx.run(
                    """
                    UPDATE consumers SET generation = generation + 1, updated_at = \(bind: now)
                    WHERE id = \(bind: row.id)
                    """)
            } else {
                try await tx.run("DELETE FROM consumers WHERE id = \(bind: row.id)")
            }
        }
        // 7. Providers that only lost allocations keep their generation (as upstream) but cached snapshots must
        //    see the freed capacity.
        for provider in Set(held).subtracting(providerIDs).sorted() {
            try await tx.recordChange(.provider(provider))
        }
    }

    /// Upstream's `update_consumers`: a different project or user replaces the consumer's; a type given (1.38 and
    /// later) replaces its type. The generation stays.
    private func updateOwner(_ row: ConsumerRow, request: ConsumerAllocationRequest) async throws {
        let owner = request.owner ?? ConsumerOwner(
            projectID: IncompleteConsumer.projectID, userID: IncompleteConsumer.userID)
        if owner.projectID != row.owner.projectID || owner.userID != row.owner.userID {
            let projectID = try await tx.externalID(table: "projects", owner.projectID)
            let userID = try await tx.externalID(table: "users", owner.userID)
            try await tx.run(
                """
                UPDATE consumers SET project_id = \(bind: projectID), user_id = \(bind: userID), updated_at = \(bind: now)
                WHERE id = \(bind: row.id)
                """)
        }
        if let type = owner.consumerType, type != row.owner.consumerType {
            let typeID = try await tx.consumerTypeID(type, now: now)
            try await tx.run(
                "UPDATE consumers SET consumer_type_id = \(bind: typeID), updated_at = \(bind: now) WHERE id = \(bind: row.id)")
        }
    }

    /// Amounts allocated by (provider id, class id).
    private func usage(providerIDs: [Int], classIDs: [Int]) async throws -> [Pair: Int] {
        guard !providerIDs.isEmpty, !classIDs.isEmpty else { return [:] }
        var result: [Pair: Int] = [:]
        for row in try await tx.rows(
            """
            SELECT resource_provider_id, resource_class_id, CAST(SUM(used) AS BIGINT) AS used FROM allocations
            WHERE resource_provider_id IN (\(binds: providerIDs)) AND resource_class_id IN (\(binds: classIDs))
            GROUP BY resource_provider_id, resource_class_id
            """)
        {
            result[Pair(provider: try row.decode(column: "resource_provider_id", as: Int.self),
                        resourceClass: try row.decode(column: "resource_class_id", as: Int.self))] =
                try row.decode(column: "used", as: Int.self)
        }
        return result
    }

    private struct Pair: Hashable {
        var provider: Int
        var resourceClass: Int
    }

    /// Upstream's `_check_capacity_exceeded`, record by record in request order: every provider needs inventory of
    /// at least one class of the write; then each new amount needs inventory of its class, must respect the unit
    /// rules and must fit, counting what this write put there before it; a write that does not fit is still
    /// allowed when the provider's usage of the class ends no higher than before the write.
    private func checkCapacity(
        _ entries: [Entry], providers: [String: ProviderRow], classIDs: [String: Int], before: [Pair: Int]
    ) async throws {
        guard !entries.isEmpty else { return }
        var inventories: [String: [String: Inventory]] = [:]
        for uuid in providers.keys {
            inventories[uuid] = try await SQLPlacementStore.loadInventories(providerID: providers[uuid]!.id, tx: tx).0
        }
        // Named as upstream joins its set of class ids (CPython's iteration order of a set of small ints).
        let namesByID = Dictionary(classIDs.map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let classNames = pythonSetOrder(entries.map { classIDs[$0.className]! }).map { namesByID[$0]! }
        var seenProviders: [String] = []
        for entry in entries where !seenProviders.contains(entry.providerUUID) { seenProviders.append(entry.providerUUID) }
        let without = seenProviders.filter { uuid in !classNames.contains { inventories[uuid]?[$0] != nil } }
        if !without.isEmpty {
            throw PlacementError.conflict(
                "Unable to allocate inventory: Inventory for '\(classNames.joined(separator: ", "))' on resource "
                    + "provider '\(without.joined(separator: ", "))' invalid.")
        }
        let after = try await usage(providerIDs: Set(providers.values.map(\.id)).sorted(),
                                    classIDs: Set(classIDs.values).sorted())
        var sums: [String: [String: Int]] = [:]
        for entry in entries {
            sums[entry.providerUUID, default: [:]][entry.className, default: 0] += entry.used
            guard entry.used > 0 else { continue }
            guard let inventory = inventories[entry.providerUUID]?[entry.className] else {
                throw PlacementError.conflict(
                    "Unable to allocate inventory: Inventory for '\(entry.className)' on resource provider "
                        + "'\(entry.providerUUID)' invalid.")
            }
            if inventory.unitProblem(amount: entry.used) != nil {
                throw PlacementError.conflict(
                    "Unable to allocate inventory: Unable to create allocation for '\(entry.className)' on resource "
                        + "provider '\(entry.providerUUID)'. The requested amount would violate inventory constraints.")
            }
            let pair = Pair(provider: providers[entry.providerUUID]!.id, resourceClass: classIDs[entry.className]!)
            let used = after[pair] ?? 0
            let all = sums[entry.providerUUID]![entry.className]!
            if !inventory.fits(additional: entry.used, used: used) || !inventory.fits(additional: all, used: used) {
                if let previous = before[pair], used + all <= previous { continue }
                throw PlacementError.conflict(
                    "Unable to allocate inventory: Unable to create allocation for '\(entry.className)' on resource "
                        + "provider '\(entry.providerUUID)'. The requested amount would exceed the capacity.")
            }
        }
    }
}

/// The iteration order of `set(values)` in CPython 3 for non-negative ints (hash(n) == n): open addressing in a
/// table of 8 slots, growing fourfold when 3/5 full, with CPython's probe sequence.
func pythonSetOrder(_ values: [Int]) -> [Int] {
    let linearProbes = 9, perturbShift = 5
    func insert(_ value: Int, into table: inout [Int?]) {
        let mask = table.count - 1
        var perturb = UInt(value)
        var i = value & mask
        while true {
            var probes = i + linearProbes <= mask ? linearProbes : 0
            var j = i
            while true {
                if table[j] == nil { table[j] = value; return }
                if probes == 0 { break }
                probes -= 1
                j += 1
            }
            perturb >>= UInt(perturbShift)
            i = (i &* 5 &+ 1 &+ Int(truncatingIfNeeded: perturb)) & mask
        }
    }
    var table = [Int?](repeating: nil, count: 8)
    var used = 0
    for value in values where !table.contains(value) {
        insert(value, into: &table)
        used += 1
        if used * 5 >= (table.count - 1) * 3 {
            var size = 8
            while size <= used * 4 { size <<= 1 }
            var grown = [Int?](repeating: nil, count: size)
            for case let old? in table { insert(old, into: &grown) }
            table = grown
        }
    }
    return table.compactMap { $0 }
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
