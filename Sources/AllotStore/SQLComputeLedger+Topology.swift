public import AllotCore
import Foundation
import SQLKit

/// NUMA cells, pinned CPUs, huge pages and PCI devices: chosen inside the claim's transaction, against what the
/// node's other consumers hold (`host_claims`), and kept with the records.
extension SQLComputeLedger {
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
    static func placeTopology(_ change: ComputeChange, operation: ComputeOperation, tx: Transaction) async throws -> ComputeChange {
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
        let numa = try NUMARequest.from(flavor)
        let wantsDevices = flavor.extraSpecs["pci_passthrough:alias"] != nil
        guard numa != nil || wantsDevices else { return change }
        func refuse(_ reason: String) -> ComputeError { .topologyDoesNotFit(node: node, reason: reason) }

        guard let row = try await tx.row("SELECT * FROM compute_nodes WHERE uuid = \(bind: node)") else {
            throw ComputeError.nodeNotFound(node)
        }
        let stored = try Self.node(from: row)
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
        var usage: [Int: NUMACellUsage] = [:]
        var devices = PCITracker(devices: topology.devices, specs: config.pciSpecs)
        for (consumer, claim) in holders.sorted(by: { $0.key < $1.key }) {
            for (cell, used) in claim.numa?.usage ?? [:] {
                var total = usage[cell] ?? NUMACellUsage()
                total.pinnedCPUs.formUnion(used.pinnedCPUs)
                total.sharedVCPUs += used.sharedVCPUs
                total.memoryMB += used.memoryMB
                for (size, count) in used.pages { total.pages[size, default: 0] += count }
                usage[cell] = total
            }
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
        var result = change
        switch operation {
        case .build:
            result.after.instance?.numa = placement
            result.after.instance?.pciDevices = claimed
        default:
            result.after.migration?.newNUMA = placement
            result.after.migration?.newPCIDevices = claimed
        }
        return result
    }
}
