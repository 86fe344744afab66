public import AllotCore
import Foundation
import SQLKit
import Synchronization

/// NUMA cells, pinned CPUs, huge pages and PCI devices: chosen inside the claim's transaction, against what the
/// node's other consumers hold (`host_claims`), and kept with the records.
extension SQLComputeLedger {
    /// Whether a node keeps its NUMA cells in Placement (every instance there gets a cell), remembered per node
    /// with the generation of its provider: switching cells on or off moves the node's classes between the
    /// root and its cells, which moves that generation, whichever replica saved the node. So only the small
    /// provider row is read while the generation stays the same; the node row (with its topology) when it moved.
    func reportsCells(node: String, tx: Transaction) async throws -> Bool {
        guard let provider = try await tx.row("SELECT id, generation FROM resource_providers WHERE uuid = \(bind: node)")
        else { return false }
        let key = CellKnowledge(providerID: try provider.decode(column: "id", as: Int.self),
                                generation: try provider.decode(column: "generation", as: Int.self), cells: false)
        if let known = cellNodes.withLock({ $0[node] }), known.providerID == key.providerID,
            known.generation == key.generation
        {
            return known.cells
        }
        guard let row = try await tx.row("SELECT * FROM compute_nodes WHERE uuid = \(bind: node)") else { return false }
        let stored = try Self.node(from: row)
        var answer = key
        answer.cells = stored.hostConfig?.reportsCells(stored.topology) ?? false
        cellNodes.withLock { $0[node] = answer }
        return answer.cells
    }

    /// What every consumer holds of a node's topology now.
    public func hostClaims(node: String) async throws -> [String: HostClaim] {
        try await database.readTransaction { tx in try await Self.hostClaims(node: node, tx: tx) }
    }

    static func hostClaims(node: String, tx: Transaction) async throws -> [String: HostClaim] {
        var result: [String: HostClaim] = [:]
        for row in try await tx.rows("SELECT consumer, claim FROM host_claims WHERE node = \(bind: node)") {
            guard let claim = try json(row, "claim", as: HostClaim.self) else { continue }
            result[try row.decode(column: "consumer", as: String.self)] = claim
        }
        return result
    }

    /// Rewrites the `host_claims` rows of every consumer whose topology claims the change moves.
    static func writeHostClaims(_ change: ComputeChange, tx: Transaction) async throws {
        for (consumer, byNode) in change.hostClaims.sorted(by: { $0.key < $1.key }) {
            try await tx.run("DELETE FROM host_claims WHERE consumer = \(bind: consumer)")
            for (node, claim) in byNode.sorted(by: { $0.key < $1.key }) {
                try await tx.run(
                    "INSERT INTO host_claims (consumer, node, claim) VALUES (\(bind: consumer), \(bind: node), \(bind: try json(claim)))")
            }
        }
    }

    /// Fills in the NUMA placement and PCI devices of a build (on the instance) or a move (the migration's
    /// destination side) when the flavor asks for them; other changes pass through.
    /// - Throws: ``ComputeError/topologyDoesNotFit(node:reason:)`` when the node cannot take them.
    func placeTopology(_ change: ComputeChange, operation: ComputeOperation, tx: Transaction) async throws -> ComputeChange {
        let node: String, flavor: Flavor
        switch operation {
        case .build:
            guard let instance = change.after.instance else { return change }
            (node, flavor) = (instance.node, instance.flavor)
        case .move:
            guard let migration = change.after.migration else { return change }
            (node, flavor) = (migration.destNode, migration.newFlavor)
        default:
            return change
        }
        var numa = try NUMARequest.from(flavor)
        let wantsDevices = flavor.extraSpecs["pci_passthrough:alias"] != nil
        func refuse(_ reason: String) -> ComputeError { .topologyDoesNotFit(node: node, reason: reason) }
        // The node row is read only when the flavor asks for a topology, or the node keeps its cells in Placement
        // (then every instance gets a cell); the flag is in the provider view the claim reads anyway.
        var cells = false
        if numa == nil, !wantsDevices { cells = try await reportsCells(node: node, tx: tx) }
        guard numa != nil || wantsDevices || cells else { return change }
        guard let row = try await tx.row("SELECT * FROM compute_nodes WHERE uuid = \(bind: node)") else {
            throw ComputeError.nodeNotFound(node)
        }
        let stored = try Self.node(from: row)
        if numa == nil, stored.hostConfig?.reportsCells(stored.topology) == true {
            numa = NUMARequest(cells: [NUMARequest.Cell(vcpus: Array(0..<flavor.vcpus), memoryMB: flavor.memoryMB)])
        }
        guard let topology = stored.topology else {
            throw refuse("the flavor asks for NUMA cells or PCI devices and the node reports no topology")
        }
        let config = stored.hostConfig ?? HostConfig()
        let aliases = config.aliasesByName
        let requests: [PCIRequest]
        do {
            requests = try PCIRequest.from(flavor, aliases: aliases)
        } catch {
            throw refuse("\(error.description.replacingOccurrences(of: "invalid flavor: ", with: "")) on this node")
        }

        // What the node's other consumers hold, plus what the change leaves to this move's other side (a
        // same-host resize keeps the old placement held by the migration while the new one is chosen).
        let moving = Set([change.after.instance?.uuid, change.after.migration?.uuid].compactMap { $0 })
        var holders = try await Self.hostClaims(node: node, tx: tx).filter { !moving.contains($0.key) }
        for (consumer, byNode) in change.after.hostClaims {
            if let claim = byNode[node] { holders[consumer] = claim }
        }
        let usage = Self.cellUsage(holders.values)
        var devices = PCITracker(devices: topology.devices, specs: config.pciSpecs)
        for (consumer, claim) in holders.sorted(by: { $0.key < $1.key }) {
            devices.hold(claim.pciDevices, consumer: consumer)
        }

        var placement: NUMAPlacement?
        if let numa {
            let fitter = NUMAFitter(
                cells: topology.cells, dedicatedCPUs: Set(config.dedicatedCPUs), sharedCPUs: config.sharedCPUs.map(Set.init),
                cpuAllocationRatio: stored.inventories[ResourceClass.vcpu.name]?.allocationRatio ?? 1,
                ramAllocationRatio: stored.inventories[ResourceClass.memoryMB.name]?.allocationRatio ?? 1,
                strategy: config.strategy)
            let affinity = requests.compactMap { request in
                aliases[request.alias].map {
                    PCIAffinityRequest(count: request.count, policy: $0.numaPolicy, freeByCell: devices.freeByCell($0))
                }
            }
            switch fitter.fit(numa, usage: usage, pci: affinity) {
            case .success(let found): placement = found
            case .failure(let error): throw refuse(error.description)
            }
        }
        var claimed: [String] = []
        if !requests.isEmpty {
            let cells = placement.map { Set($0.cells.map(\.hostCell)) }
            let sockets = Dictionary(topology.cells.map { ($0.id, $0.socket) }) { a, _ in a }
            let consumer = change.after.migration?.uuid ?? change.after.instance?.uuid ?? ""
            do {
                claimed = try devices.claim(requests, aliases: aliases, consumer: consumer) { alias, cell in
                    alias.numaPolicy.allows(cell: cell, instanceCells: cells) { sockets[$0] ?? nil }
                }
            } catch {
                // `preferred` devices may come from other cells when the instance's have none.
                guard requests.contains(where: { aliases[$0.alias]?.numaPolicy == .preferred }) else {
                    throw refuse(error.description)
                }
                do {
                    claimed = try devices.claim(requests, aliases: aliases, consumer: consumer) { alias, cell in
                        alias.numaPolicy == .preferred || alias.numaPolicy.allows(cell: cell, instanceCells: cells) { sockets[$0] ?? nil }
                    }
                } catch {
                    throw refuse(error.description)
                }
            }
        }
        let childAllocations = config.cellAllocations(placement, node: node, topology: topology)
            .merging(config.deviceAllocations(claimed, node: node, hostname: stored.hostname, topology: topology)) {
                a, b in a.merging(b, uniquingKeysWith: +)
            }
        var result = change
        switch operation {
        case .build:
            result.after.instance?.numa = placement
            result.after.instance?.pciDevices = claimed
            result.after.instance?.childAllocations = childAllocations
        default:
            result.after.migration?.newNUMA = placement
            result.after.migration?.newPCIDevices = claimed
            result.after.migration?.newChildAllocations = childAllocations
        }
        return result
    }
}

extension SQLComputeLedger {
    /// Brings the node's PCI child providers in line with its configuration and topology, and moves the
    /// allocations of every consumer holding devices there onto them (or off them) — Placement's reshape, in the
    /// node save's transaction: providers created with their inventories and traits first, consumers' records,
    /// host claims and allocations rewritten, then providers no longer wanted deleted.
    /// - Returns: whether any provider changed, and the consumers whose allocations moved.
    func syncChildProviders(
        _ node: ComputeNode, root: Int, now: Double, tx: Transaction, learned: LearnedIDs
    ) async throws -> (changed: Bool, reshaped: [String]) {
        let config = node.hostConfig ?? HostConfig()
        let desired = config.childProviders(node: node.uuid, hostname: node.hostname, topology: node.topology)
        // The node's children this configuration manages; other services' children are left alone.
        var existing: [String: (id: Int, generation: Int, name: String)] = [:]
        for row in try await tx.rows("SELECT id, uuid, generation, name FROM resource_providers WHERE parent_provider_id = \(bind: root)") {
            let uuid = try row.decode(column: "uuid", as: String.self), name = try row.decode(column: "name", as: String.self)
            guard HostConfig.isOwnChild(uuid: uuid, name: name, node: node.uuid) else { continue }
            existing[uuid] = (try row.decode(column: "id", as: Int.self), try row.decode(column: "generation", as: Int.self), name)
        }
        // No child provider wanted or left, no cells reported: no consumer's claim can change (every save of every
        // node comes here; reading its holders would cost a read of each of them).
        if desired.isEmpty, existing.isEmpty, !config.reportsCells(node.topology) { return (false, []) }
        var changed = false
        for provider in desired {
            var current = existing[provider.uuid]
            if current == nil {
                let id = try await tx.insertReturningID(
                    """
                    INSERT INTO resource_providers (uuid, name, generation, root_provider_id, parent_provider_id,
                      created_at, updated_at) VALUES (\(bind: provider.uuid), \(bind: provider.name), 0, \(bind: root),
                      \(bind: root), \(bind: now), NULL)
                    """)
                try await tx.recordChange(.shape)
                current = (id, 0, provider.name)
                changed = true
            }
            guard var current else { continue }
            try await tx.createCustomNames(classes: provider.inventories.keys, traits: provider.traits, now: now)
            guard let row = try await tx.provider(uuid: provider.uuid, lock: true) else { continue }
            let inventories = provider.inventories
            let (have, _) = try await SQLPlacementStore.loadInventories(providerID: current.id, tx: tx)
            if have != inventories {
                try await SQLPlacementStore.writeInventories(
                    provider: row, current: have, next: inventories, inUse: .replace, unknownClassPrefix: "", now: now, tx: tx)
                current.generation = try await tx.bumpGeneration(providerID: current.id, expected: row.generation, now: now)
                changed = true
            }
            let traits = Set(try await SQLPlacementStore.traitNames(providerID: current.id, tx: tx))
            if traits != provider.traits {
                let found = try await tx.traitIDs(provider.traits)
                try await SQLPlacementStore.replaceTraits(providerID: current.id, traitIDs: Array(found.ids.values), tx: tx)
                _ = try await tx.bumpGeneration(providerID: current.id, expected: current.generation, now: now)
                changed = true
            }
        }

        // Every consumer of this node: its claim here completed (an instance without NUMA cells gets one when the
        // node reports its cells) and its child allocations recomputed; those that change are moved.
        var reshaped: [String] = []
        let children = Set(existing.keys).union(desired.map(\.uuid))
        let sides = try await Self.consumerSides(node: node.uuid, tx: tx)
        var claims = sides.mapValues(\.claim)
        for (consumer, side) in sides.sorted(by: { $0.key < $1.key }) {
            var claim = side.claim
            if config.reportsCells(node.topology), claim.numa == nil, let topology = node.topology {
                claim.numa = try Self.implicitCell(
                    side.flavor, node: node, topology: topology, config: config,
                    holders: claims.filter { $0.key != consumer })
            }
            claim.childAllocations = config.cellAllocations(claim.numa, node: node.uuid, topology: node.topology)
                .merging(config.deviceAllocations(claim.pciDevices, node: node.uuid, hostname: node.hostname, topology: node.topology)) {
                    a, b in a.merging(b, uniquingKeysWith: +)
                }
            guard claim != side.claim else { continue }
            claims[consumer] = claim
            try await Self.rewriteClaim(consumer: consumer, node: node.uuid, to: claim, tx: tx)
            try await tx.run("DELETE FROM host_claims WHERE consumer = \(bind: consumer) AND node = \(bind: node.uuid)")
            if !claim.isEmpty {
                try await tx.run(
                    "INSERT INTO host_claims (consumer, node, claim) VALUES (\(bind: consumer), \(bind: node.uuid), \(bind: try Self.json(claim)))")
            }
            reshaped.append(consumer)
        }
        if !reshaped.isEmpty {
            for consumer in reshaped {
                // Each write moves the generations of the providers it touches: read them again every time.
                let providers = try await tx.lockedProviderGenerations(children.union([node.uuid]))
                guard let (amounts, owner) = try await Self.expectedAllocations(consumer: consumer, tx: tx) else { continue }
                var touched = Set(amounts.keys)
                for row in try await tx.rows(
                    "SELECT DISTINCT rp.uuid FROM allocations a JOIN resource_providers rp ON rp.id = a.resource_provider_id WHERE a.consumer_id = \(bind: consumer)")
                {
                    touched.insert(try row.decode(column: "uuid", as: String.self))
                }
                let missing = touched.subtracting(providers.keys)
                let all = missing.isEmpty ? providers : providers.merging(try await tx.lockedProviderGenerations(missing)) { a, _ in a }
                _ = try await writeConsumers(
                    [consumer: amounts], owner: owner, touched: touched, providers: all, now: now, tx: tx, learned: learned)
            }
            changed = true
        }
        // Providers no longer wanted go once nothing is allocated there.
        for (uuid, provider) in existing where !desired.contains(where: { $0.uuid == uuid }) {
            if try await tx.row("SELECT id FROM allocations WHERE resource_provider_id = \(bind: provider.id) LIMIT 1") != nil {
                continue
            }
            try await tx.deleteProviderRows(id: provider.id)
            try await tx.recordChange(.shape)
            changed = true
        }
        return (changed, reshaped)
    }

    /// Who holds what on a node by the records: each consumer (an instance on it or moving to it, a migration
    /// moving from it) with the flavor of its side and its claim there (empty when it has none).
    static func consumerSides(node: String, tx: Transaction) async throws -> [String: (flavor: Flavor, claim: HostClaim)] {
        var instances = try await tx.rows(
            "SELECT * FROM instances WHERE node = \(bind: node) AND vm_state <> 'deleted'\(unsafeRaw: tx.forUpdate)").map(Self.instance(from:))
        let moving = try await tx.rows(
            "SELECT * FROM migrations WHERE in_progress = 1 AND (source_node = \(bind: node) OR dest_node = \(bind: node))")
            .map(Self.migration(from:))
        let known = Set(instances.map(\.uuid))
        for migration in moving where !known.contains(migration.instanceUUID) {
            if let row = try await tx.row("SELECT * FROM instances WHERE uuid = \(bind: migration.instanceUUID)\(unsafeRaw: tx.forUpdate)") {
                let instance = try Self.instance(from: row)
                if instance.holdsResources { instances.append(instance) }
            }
        }
        let moves = Dictionary(moving.map { ($0.instanceUUID, $0) }, uniquingKeysWith: { first, _ in first })
        var result: [String: (flavor: Flavor, claim: HostClaim)] = [:]
        for instance in instances {
            let migration = moves[instance.uuid]
            let records = LedgerRecords(instance: instance, migration: migration)
            for (consumer, byNode) in records.allocations where byNode[node] != nil {
                let flavor = migration.map { consumer == $0.uuid ? $0.oldFlavor : $0.newFlavor } ?? instance.flavor
                result[consumer] = (flavor, records.hostClaims[consumer]?[node] ?? HostClaim(numa: nil, pciDevices: []))
            }
        }
        return result
    }

    /// One NUMA cell for an instance whose flavor asks for none, on a node that reports its cells in Placement.
    /// - Throws: ``ComputeError/topologyDoesNotFit(node:reason:)`` when no cell has room (the node keeps its shape).
    static func implicitCell(
        _ flavor: Flavor, node: ComputeNode, topology: HostTopology, config: HostConfig, holders: [String: HostClaim]
    ) throws -> NUMAPlacement {
        let request = NUMARequest(cells: [NUMARequest.Cell(vcpus: Array(0..<flavor.vcpus), memoryMB: flavor.memoryMB)])
        let fitter = NUMAFitter(
            cells: topology.cells, dedicatedCPUs: Set(config.dedicatedCPUs), sharedCPUs: config.sharedCPUs.map(Set.init),
            cpuAllocationRatio: config.numaInPlacement?.cpuAllocationRatio ?? 1,
            ramAllocationRatio: config.numaInPlacement?.ramAllocationRatio ?? 1, strategy: config.strategy)
        switch fitter.fit(request, usage: cellUsage(holders.values)) {
        case .success(let placement): return placement
        case .failure(let error):
            throw ComputeError.topologyDoesNotFit(
                node: node.uuid, reason: "reporting NUMA cells in Placement needs a cell for every instance: \(error)")
        }
    }

    /// What these claims take of each cell.
    static func cellUsage(_ claims: some Sequence<HostClaim>) -> [Int: NUMACellUsage] {
        var usage: [Int: NUMACellUsage] = [:]
        for claim in claims {
            for (cell, used) in claim.numa?.usage ?? [:] {
                var total = usage[cell] ?? NUMACellUsage()
                total.pinnedCPUs.formUnion(used.pinnedCPUs)
                total.sharedVCPUs += used.sharedVCPUs
                total.memoryMB += used.memoryMB
                for (size, count) in used.pages { total.pages[size, default: 0] += count }
                usage[cell] = total
            }
        }
        return usage
    }

    /// Writes `claim` into whichever record holds `consumer`'s claim on `node`: the instance (on the node, or
    /// moving to it: then the migration's destination side) or the migration (its source side).
    static func rewriteClaim(consumer: String, node: String, to claim: HostClaim, tx: Transaction) async throws {
        if let row = try await tx.row("SELECT * FROM instances WHERE uuid = \(bind: consumer)\(unsafeRaw: tx.forUpdate)") {
            var instance = try Self.instance(from: row)
            if var migration = try await Self.activeMigration(instance: consumer, tx: tx), migration.destNode == node {
                migration.newNUMA = claim.numa
                migration.newPCIDevices = claim.pciDevices
                migration.newChildAllocations = claim.childAllocations
                if instance.node == node, migration.status.hasArrived {
                    instance.numa = claim.numa
                    instance.pciDevices = claim.pciDevices
                    instance.childAllocations = claim.childAllocations
                }
                try await tx.run(
                    "UPDATE migrations SET new_claim = \(bind: try claimJSON(migration.newNUMA, migration.newPCIDevices, migration.newChildAllocations)) WHERE uuid = \(bind: migration.uuid)")
            } else {
                instance.numa = claim.numa
                instance.pciDevices = claim.pciDevices
                instance.childAllocations = claim.childAllocations
            }
            try await tx.run(
                "UPDATE instances SET host_claim = \(bind: try claimJSON(instance.numa, instance.pciDevices, instance.childAllocations)) WHERE uuid = \(bind: consumer)")
        } else if let row = try await tx.row("SELECT * FROM migrations WHERE uuid = \(bind: consumer)\(unsafeRaw: tx.forUpdate)") {
            var migration = try Self.migration(from: row)
            migration.oldNUMA = claim.numa
            migration.oldPCIDevices = claim.pciDevices
            migration.oldChildAllocations = claim.childAllocations
            try await tx.run(
                "UPDATE migrations SET old_claim = \(bind: try claimJSON(migration.oldNUMA, migration.oldPCIDevices, migration.oldChildAllocations)) WHERE uuid = \(bind: consumer)")
        }
    }
}

extension SQLComputeLedger {
    /// The child providers (PCI devices) of these nodes in this database: child uuid → its node.
    public func childProviders(of nodes: Set<String>) async throws -> [String: String] {
        guard !nodes.isEmpty else { return [:] }
        return try await database.readTransaction { tx in
            var result: [String: String] = [:]
            for row in try await tx.rows(
                """
                SELECT c.uuid AS child, p.uuid AS parent FROM resource_providers c
                JOIN resource_providers p ON p.id = c.parent_provider_id WHERE p.uuid IN (\(binds: nodes.sorted()))
                """)
            {
                result[try row.decode(column: "child", as: String.self)] = try row.decode(column: "parent", as: String.self)
            }
            return result
        }
    }
}
