import AllotCore
import AllotStore
import Foundation
import Testing

/// Two compute ledgers (two `allot serve` replicas) over one database: what one remembers of a node must follow
/// what the other writes.
@Suite struct ComputeLedgerReplicaTests {
    static let node = "dddddddd-0000-4000-8000-000000000001"

    static func node(cells: Bool) -> ComputeNode {
        let topology = HostTopology(cells: [
            NUMACell(id: 0, cpus: [0, 1, 2, 3], memoryMB: 8192), NUMACell(id: 1, cpus: [4, 5, 6, 7], memoryMB: 8192),
        ])
        var inventories = ["VCPU": Inventory(total: 8), "MEMORY_MB": Inventory(total: 16384), "DISK_GB": Inventory(total: 100)]
        if cells { for rc in HostConfig.cellClasses { inventories[rc] = nil } }
        let config = HostConfig(numaInPlacement: cells ? HostConfig.NUMAInPlacement(
            cpuAllocationRatio: 1, ramAllocationRatio: 1, reservedCPUs: 0, reservedMemoryMB: 0) : nil)
        return ComputeNode(uuid: node, hostname: "replica-node", host: "h", driver: "fake", inventories: inventories,
                           traits: ["COMPUTE_NODE"], topology: topology, hostConfig: config)
    }

    /// The uuid of the instance ``build(_:)`` claims.
    static func instance(_ n: Int) -> String { String(format: "00000000-0000-4000-8000-%012d", n) }

    static func build(_ n: Int) -> ComputeOperation {
        .build(Instance(uuid: instance(n), projectID: "p", userID: "u",
                        flavor: Flavor(name: "small", vcpus: 2, memoryMB: 1024, rootGB: 10), node: node))
    }

    /// Replica 2 learns that the node keeps no cells (a claim there); replica 1 switches the node to cells; a
    /// claim through replica 2 then lands in a cell instead of being refused for want of VCPU on the root.
    @Test(arguments: TestBackend.shared)
    func cellsSwitchedOnThroughAnotherReplicaAreSeen(backend: TestBackend) async throws {
        try await backend.withFreshLocation { location in
            let first = try await Database.open(location, logger: TestBackend.logger)
            let second = try await Database.open(location, logger: TestBackend.logger)
            let result = await outcome {
                let one = SQLComputeLedger(database: first, logger: TestBackend.logger, now: { TestBackend.now })
                let two = SQLComputeLedger(database: second, logger: TestBackend.logger, now: { TestBackend.now })
                try await one.saveNode(Self.node(cells: false))
                let flat = try await two.commit(Self.build(1))
                #expect(flat.change.after.instance?.numa == nil)
                _ = try await two.commit(.delete(instance: Self.instance(1)))
                try await one.saveNode(Self.node(cells: true))
                let celled = try await two.commit(Self.build(2))
                #expect(celled.change.after.instance?.numa != nil)
            }
            await first.close()
            await second.close()
            try result.get()
        }
    }
}
