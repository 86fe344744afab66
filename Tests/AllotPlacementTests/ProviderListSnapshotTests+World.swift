import AllotCore
import AllotStore
import Testing

/// A varied Placement database for the listing tests: seven trees of up to five providers, inventories with
/// reservations, ratios (one of 1e30) and unit rules, traits, aggregates and allocations (some filling a class
/// exactly), with a record of what was written so queries and writes can aim at real names and boundaries.
struct ListingWorld {
    static let traits = ["CUSTOM_A", "CUSTOM_B", "CUSTOM_C", "HW_CPU_X86_AVX2", "MISC_SHARES_VIA_AGGREGATE"]
    static let classes = ["VCPU", "MEMORY_MB", "DISK_GB", "CUSTOM_FPGA"]

    var providers: [(uuid: String, name: String)] = []
    let aggregates = (0..<4).map { _ in newUUID() }
    /// Inventories by provider uuid.
    var inventories: [String: [String: Inventory]] = [:]
    /// Each consumer's allocations.
    var allocations: [String: [AllocationItem]] = [:]

    init(_ store: SQLPlacementStore, random: inout SplitMix64) async throws {
        for name in ["CUSTOM_A", "CUSTOM_B", "CUSTOM_C", "CUSTOM_NOBODY"] {
            _ = try await store.createTrait(named: name)
        }
        for name in ["CUSTOM_FPGA", "CUSTOM_UNUSED"] {
            _ = try await store.createResourceClass(named: name, failIfExists: false)
        }
        for tree in 0..<7 {
            let root = try await store.createProvider(
                uuid: newUUID(), name: tree == 0 ? "q\"uot\u{e9} \\ rp" : "root-\(tree)", parentUUID: nil)
            var members: [(uuid: String, name: String)] = [(root.uuid, root.name)]
            for child in 0..<Int.random(in: 0...4, using: &random) {
                let parent = members[Int.random(in: 0..<members.count, using: &random)].0
                let made = try await store.createProvider(
                    uuid: newUUID(), name: "rp-\(tree)-\(child)", parentUUID: parent)
                members.append((made.uuid, made.name))
            }
            providers += members
        }
        for (uuid, _) in providers {
            if Int.random(in: 0..<5, using: &random) > 0 { try await setInventories(store, uuid, random: &random) }
            try await setTraits(store, uuid, random: &random)
            try await setAggregates(store, uuid, random: &random)
        }
        for _ in 0..<20 { try await allocate(store, random: &random) }
    }

    static func randomInventory(_ random: inout SplitMix64) -> Inventory {
        let total = [1, 4, 8, 16, 64, 1024, Limits.maxInt].randomElement(using: &random)!
        let reserved = Bool.random(using: &random) ? 0 : Int.random(in: 0..<total, using: &random)
        var ratio = [1.0, 1.0, 2.0, 16.0, 0.5, 1.5, 1e30].randomElement(using: &random)!
        if Double(total - reserved) * ratio < 1 { ratio = 1 }
        // Mostly the default unit rules (as most real inventories), sometimes larger units and steps.
        let minUnit = Bool.random(using: &random) ? 1 : Int.random(in: 1...min(4, total), using: &random)
        let maxUnit = [total, Limits.maxInt, max(minUnit, total / 2)].randomElement(using: &random)!
        let step = Bool.random(using: &random) ? 1 : Int.random(in: 1...min(4, maxUnit), using: &random)
        return Inventory(
            total: total, reserved: reserved, minUnit: minUnit, maxUnit: maxUnit, stepSize: step,
            allocationRatio: ratio)
    }

    mutating func setInventories(_ store: SQLPlacementStore, _ uuid: String, random: inout SplitMix64) async throws {
        var chosen: [String: Inventory] = [:]
        for name in Self.classes where Bool.random(using: &random) { chosen[name] = Self.randomInventory(&random) }
        let generation = try #require(try await store.provider(uuid: uuid)).generation
        _ = try await store.replaceInventories(providerUUID: uuid, generation: generation, inventories: chosen)
        inventories[uuid] = chosen
    }

    func setTraits(_ store: SQLPlacementStore, _ uuid: String, random: inout SplitMix64) async throws {
        let traits = Self.traits.filter { _ in Int.random(in: 0..<3, using: &random) == 0 }
        _ = try await store.setProviderTraits(providerUUID: uuid, generation: nil, traits: traits)
    }

    func setAggregates(_ store: SQLPlacementStore, _ uuid: String, random: inout SplitMix64) async throws {
        let chosen = aggregates.filter { _ in Int.random(in: 0..<3, using: &random) == 0 }
        _ = try await store.setProviderAggregates(providerUUID: uuid, generation: nil, aggregates: chosen)
    }

    /// What is allocated of `name` on `uuid`.
    func used(_ uuid: String, _ name: String) -> Int {
        allocations.values.joined().filter { $0.providerUUID == uuid && $0.resourceClass.name == name }
            .reduce(0) { $0 + $1.used }
    }

    /// Allocates a legal amount of one class of one provider to a new consumer: the smallest, a few units, or
    /// all that is left.
    mutating func allocate(_ store: SQLPlacementStore, random: inout SplitMix64) async throws {
        let offers = inventories.flatMap { uuid, classes in classes.map { (uuid, $0.key, $0.value) } }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        guard let (uuid, name, inventory) = offers.randomElement(using: &random) else { return }
        let free = inventory.capacity - used(uuid, name)
        let step = inventory.stepSize
        let smallest = (inventory.minUnit + step - 1) / step * step
        let largest = min(inventory.maxUnit, free) / step * step
        guard smallest <= largest else { return }
        let amount = [smallest, min(largest, smallest * 3), largest].randomElement(using: &random)!
        let consumer = newUUID()
        let item = AllocationItem(providerUUID: uuid, resourceClass: .custom(name), used: amount)
        try await store.replaceAllocations([ConsumerAllocationRequest(
            consumerUUID: consumer, items: [item], owner: ConsumerOwner(projectID: "p", userID: "u"),
            expectedGeneration: .unchecked)])
        allocations[consumer] = [item]
    }

    /// Amounts at the edges of every inventory: unit bounds, steps, and what is free (exactly, one more, one less).
    func edgeAmounts() -> [(String, Int)] {
        var result: [(String, Int)] = []
        for (uuid, classes) in inventories.sorted(by: { $0.key < $1.key }) {
            for (name, inventory) in classes.sorted(by: { $0.key < $1.key }) {
                let free = inventory.capacity == Int.max ? Int.max : inventory.capacity - used(uuid, name)
                let amounts = [inventory.minUnit, inventory.maxUnit, inventory.maxUnit + 1, inventory.stepSize,
                               inventory.stepSize + 1, free, free &+ 1, free - 1]
                result += amounts.filter { $0 >= 1 }.map { (name, $0) }
            }
        }
        return result
    }

    /// One write of a random kind (rename, allocate, free, traits, aggregates, inventories, new provider).
    mutating func randomWrite(_ store: SQLPlacementStore, step: Int, random: inout SplitMix64) async throws {
        let index = Int.random(in: 0..<providers.count, using: &random)
        let uuid = providers[index].uuid
        switch Int.random(in: 0..<7, using: &random) {
        case 0:
            providers[index].name = "renamed-\(step)"
            _ = try await store.updateProvider(
                uuid: uuid, name: providers[index].name, parentUUID: nil, setParent: false, allowReparent: false)
        case 1:
            try await allocate(store, random: &random)
        case 2:
            guard let consumer = allocations.keys.sorted().randomElement(using: &random) else { return }
            try await store.deleteAllocations(consumerUUID: consumer)
            allocations[consumer] = nil
        case 3:
            try await setTraits(store, uuid, random: &random)
        case 4:
            try await setAggregates(store, uuid, random: &random)
        case 5:
            guard !allocations.values.joined().contains(where: { $0.providerUUID == uuid }) else { return }
            try await setInventories(store, uuid, random: &random)
        default:
            let made = try await store.createProvider(uuid: newUUID(), name: "new-\(step)", parentUUID: uuid)
            providers.append((made.uuid, made.name))
            try await setInventories(store, made.uuid, random: &random)
        }
    }

    /// A `GET /resource_providers` query with `resources`, mostly well formed, at a random microversion.
    func randomQuery(random: inout SplitMix64) -> (String, [(String, String)]) {
        // Half at the latest version, where every parameter and form is allowed.
        let version = Bool.random(using: &random) ? "1.39"
            : ["1.4", "1.10", "1.14", "1.17", "1.18", "1.21", "1.22", "1.24", "1.31", "1.32", "1.38"]
                .randomElement(using: &random)!
        func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
        var query: [(String, String)] = [("resources", resources(random: &random))]
        if chance(10) {
            query.append(("name", chance(80) ? providers.randomElement(using: &random)!.name : "nope"))
        }
        if chance(10) {
            let uuid = providers.randomElement(using: &random)!.uuid
            query.append(("uuid", chance(20) ? uuid.uppercased() : chance(10) ? "not-a-uuid" : uuid))
        }
        if chance(15) {
            query.append(("in_tree", chance(85) ? providers.randomElement(using: &random)!.uuid : newUUID()))
        }
        for _ in 0..<(chance(25) ? Int.random(in: 1...2, using: &random) : 0) {
            query.append(("member_of", memberOf(random: &random)))
        }
        for _ in 0..<(chance(30) ? Int.random(in: 1...2, using: &random) : 0) {
            query.append(("required", required(random: &random)))
        }
        query.shuffle(using: &random)
        return (version, query)
    }

    func resources(random: inout SplitMix64) -> String {
        if Int.random(in: 0..<20, using: &random) == 0 {
            return ["", "VCPU", "VCPU:0", "VCPU:-1", "VCPU:1,", ":1", "VCPU:1:2"].randomElement(using: &random)!
        }
        let edges = edgeAmounts()
        return (0..<Int.random(in: 1...3, using: &random)).map { _ in
            let unknown = Int.random(in: 0..<30, using: &random) == 0 ? ["CUSTOM_NOPE"] : []
            let name = (Self.classes + ["CUSTOM_UNUSED"] + unknown).randomElement(using: &random)!
            let own = edges.filter { $0.0 == name }.map(\.1)
            let amount = Bool.random(using: &random) && !own.isEmpty
                ? own.randomElement(using: &random)! : [1, 2, 3, 4, 8, 64, 1024].randomElement(using: &random)!
            return "\(name):\(amount)"
        }.joined(separator: ",")
    }

    func memberOf(random: inout SplitMix64) -> String {
        let known = aggregates + [newUUID()]
        let one = known.randomElement(using: &random)!
        let two = "\(known.randomElement(using: &random)!),\(known.randomElement(using: &random)!)"
        return [one, "in:" + two, "!" + one, "!in:" + two].randomElement(using: &random)!
    }

    func required(random: inout SplitMix64) -> String {
        let unknown = Int.random(in: 0..<30, using: &random) == 0 ? ["CUSTOM_NOPE"] : []
        let names = Self.traits + ["CUSTOM_NOBODY"] + unknown
        if Int.random(in: 0..<5, using: &random) == 0 {
            return "in:" + (0..<2).map { _ in names.randomElement(using: &random)! }.joined(separator: ",")
        }
        return (0..<Int.random(in: 1...3, using: &random)).map { _ in
            (Int.random(in: 0..<10, using: &random) < 3 ? "!" : "") + names.randomElement(using: &random)!
        }.joined(separator: ",")
    }
}
