import AllotCore
import AllotStore
import AllotTracker
import Foundation
import Testing

/// Claims that pin CPUs, take huge pages and PCI devices, through the tracker over a real SQLite ledger: builds,
/// refusals, same-host and cross-node moves with their migration context, reverts, confirms, deletions and
/// aborts; and a property test over random sequences of them.
@Suite(.serialized) struct TopologyClaimTests {
    static let nodeA = TrackerFixture.nodeA
    static let nodeB = TrackerFixture.nodeB

    /// Two cells of two cores × two threads (siblings 0/1, 2/3 and 4/5, 6/7), 8 GiB and 512 × 2 MiB pages each.
    static func cells() -> [[String: Any]] {
        [
            ["id": 0, "cpus": [0, 1, 2, 3], "siblings": [[0, 1], [2, 3]], "memory_mb": 8192, "pages": ["2048": 512], "socket": 0],
            ["id": 1, "cpus": [4, 5, 6, 7], "siblings": [[4, 5], [6, 7]], "memory_mb": 8192, "pages": ["2048": 512], "socket": 1],
        ]
    }

    /// Node A: an SR-IOV NIC (PF and two VFs) on cell 0 and a GPU on cell 1; node B: a GPU on cell 0.
    static func nodes() -> [[String: Any]] {
        [
            ["hostname": "n-a", "uuid": nodeA, "vcpus": 8, "memory_mb": 16384, "disk_gb": 100, "numa_cells": cells(),
             "pci_devices": [
                ["address": "0000:3b:00.0", "vendor_id": "8086", "product_id": "1572", "numa_node": 0, "type": "type-PF"],
                ["address": "0000:3b:02.0", "vendor_id": "8086", "product_id": "154c", "numa_node": 0, "type": "type-VF",
                 "parent_address": "0000:3b:00.0"],
                ["address": "0000:3b:02.1", "vendor_id": "8086", "product_id": "154c", "numa_node": 0, "type": "type-VF",
                 "parent_address": "0000:3b:00.0"],
                ["address": "0000:af:00.0", "vendor_id": "10de", "product_id": "1db4", "numa_node": 1],
             ]],
            ["hostname": "n-b", "uuid": nodeB, "vcpus": 8, "memory_mb": 16384, "disk_gb": 100, "numa_cells": cells(),
             "pci_devices": [["address": "0000:af:00.0", "vendor_id": "10de", "product_id": "1db4", "numa_node": 0]]],
        ]
    }

    /// CPUs 0 and 4 float vCPUs; the other six may be pinned. NICs and GPUs are assignable.
    static let config = HostConfig(
        dedicatedCPUs: [1, 2, 3, 5, 6, 7],
        pciSpecs: [PCIDeviceSpec(vendorID: "8086", tags: ["physical_network": "physnet1"]), PCIDeviceSpec(vendorID: "10de")],
        pciAliases: [
            PCIAlias(name: "vf", vendorID: "8086", productID: "154c", deviceType: .vf, numaPolicy: .required),
            PCIAlias(name: "pf", vendorID: "8086", productID: "1572", deviceType: .pf, numaPolicy: .required),
            PCIAlias(name: "gpu", vendorID: "10de", productID: "1db4", numaPolicy: .legacy),
        ])

    static let cellsInPlacement = HostConfig.NUMAInPlacement(
        cpuAllocationRatio: 1, ramAllocationRatio: 1, reservedCPUs: 0, reservedMemoryMB: 0)

    /// ``config`` with PCI devices and NUMA cells in Placement or not.
    static func config(pciInPlacement: Bool, numaInPlacement: Bool) -> HostConfig {
        var config = config
        config.pciInPlacement = pciInPlacement
        config.numaInPlacement = numaInPlacement ? cellsInPlacement : nil
        return config
    }

    static func fixture(
        backend: TrackerBackend, pciInPlacement: Bool = false, numaInPlacement: Bool = false
    ) async throws -> TrackerFixture {
        let fixture = try await TrackerFixture(
            backend: backend, nodes: nodes(), hostConfig: config(pciInPlacement: pciInPlacement, numaInPlacement: numaInPlacement))
        try await fixture.tracker.start()
        return fixture
    }

    static func pinned(_ vcpus: Int, _ extra: [String: String] = [:]) -> Flavor {
        Flavor(name: "pinned\(vcpus)", vcpus: vcpus, memoryMB: 1024, rootGB: 10,
               extraSpecs: ["hw:cpu_policy": "dedicated"].merging(extra) { _, b in b })
    }

    static func instance(_ uuid: String, _ flavor: Flavor, on node: String = nodeA) -> Instance {
        Instance(uuid: uuid, projectID: "p", userID: "u", flavor: flavor, node: node)
    }

    static func vm(_ n: Int) -> String { String(format: "00000000-0000-4000-8000-%012d", n) }
    static func mig(_ n: Int) -> String { String(format: "11111111-0000-4000-8000-%012d", n) }

    /// Pinned CPUs of every consumer on a node, from the ledger's host claims.
    static func pins(_ fixture: TrackerFixture, _ node: String) async throws -> [String: Set<Int>] {
        try await fixture.ledger.hostClaims(node: node).mapValues { claim in
            Set(claim.numa?.cells.flatMap { Array($0.pinning.values) + $0.reservedCPUs } ?? [])
        }.filter { !$0.value.isEmpty }
    }

    @Test(arguments: TrackerBackend.all) func pinnedBuildsDevicesMovesAndReleases(backend: TrackerBackend) async throws {
        let fixture = try await Self.fixture(backend: backend)
        defer { Task { await fixture.remove() } }
        // PCPU for the dedicated set, VCPU for the two shared CPUs.
        let inventories = try await fixture.store.inventories(providerUUID: Self.nodeA).inventories
        #expect(inventories["PCPU"]?.total == 6 && inventories["VCPU"]?.total == 2)

        // A pinned build: PCPU in Placement, the fullest free core of the busiest cell in the ledger.
        let vm1 = Self.vm(1)
        let built = try await fixture.tracker.perform(.build(Self.instance(vm1, Self.pinned(2))))
        #expect(built.after.instance?.numa?.cells.map(\.pinning) == [[0: 2, 1: 3]])
        #expect(try await fixture.store.usages(providerUUID: Self.nodeA).1["PCPU"] == 2)
        // With a GPU (legacy policy): cell 0 has no GPU, so cell 1, which has one.
        let vm2 = Self.vm(2)
        let gpu = try await fixture.tracker.perform(.build(Self.instance(vm2, Self.pinned(2, ["pci_passthrough:alias": "gpu:1"]))))
        #expect(gpu.after.instance?.numa?.cells.map(\.hostCell) == [1])
        #expect(gpu.after.instance?.pciDevices == ["0000:af:00.0"])
        #expect(try await Self.pins(fixture, Self.nodeA) == [vm1: [2, 3], vm2: [6, 7]])
        // Three pinned CPUs in one cell are no longer free anywhere: refused, nothing changes.
        let before = try await fixture.ledger.hostClaims(node: Self.nodeA)
        await #expect(throws: ComputeError.self) {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(3), Self.pinned(3))))
        }
        do {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(3), Self.pinned(3))))
        } catch let error as ComputeError {
            #expect(error.code == "allot.does_not_fit" && error.description.contains("free dedicated CPUs"))
        }
        #expect(try await fixture.ledger.hostClaims(node: Self.nodeA) == before)
        #expect(try await fixture.ledger.instance(uuid: Self.vm(3)) == nil)
        // A second GPU on node A does not exist.
        await #expect(throws: ComputeError.self) {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(4), Self.pinned(1, ["pci_passthrough:alias": "gpu:1"]))))
        }
        // Two VFs (required on the instance's cell): cell 0, where the NIC is.
        let vm5 = Self.vm(5)
        let vfs = try await fixture.tracker.perform(.build(Self.instance(vm5, Self.pinned(1, ["pci_passthrough:alias": "vf:2"]))))
        #expect(vfs.after.instance?.pciDevices == ["0000:3b:02.0", "0000:3b:02.1"])
        #expect(vfs.after.instance?.numa?.cells.first?.pinning == [0: 1])
        // The PF is blocked while its VFs are held.
        await #expect(throws: ComputeError.self) {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(6), Flavor(
                name: "pf", vcpus: 1, memoryMB: 512, extraSpecs: ["pci_passthrough:alias": "pf:1"]))))
        }
        for uuid in [vm1, vm2, vm5] {
            try await fixture.tracker.perform(.update(instance: uuid, vmState: .active, taskState: .some(nil), osType: nil))
        }
        // Abort releases pins and devices: vm5's CPU 1 and both VFs are free again.
        try await fixture.tracker.perform(.delete(instance: vm5))
        #expect(try await Self.pins(fixture, Self.nodeA) == [vm1: [2, 3], vm2: [6, 7]])

        // Same-host resize of vm1 to one pinned CPU: the old pins stay held by the migration until confirm.
        let m1 = Self.mig(1)
        let resize = try await fixture.tracker.perform(.move(Migration(
            uuid: m1, instanceUUID: vm1, kind: .resize, status: .accepted, sourceNode: "", destNode: Self.nodeA,
            oldFlavor: Self.pinned(2), newFlavor: Self.pinned(1))))
        let newPins = Set(resize.after.migration?.newNUMA?.cells.flatMap { $0.pinning.values } ?? [])
        #expect(newPins.count == 1 && newPins.isDisjoint(with: [2, 3, 6, 7]))
        #expect(try await Self.pins(fixture, Self.nodeA) == [m1: [2, 3], vm1: newPins, vm2: [6, 7]])
        try await fixture.tracker.perform(.finish(migration: m1))
        // Revert: back to the old pins, the new ones released.
        let reverted = try await fixture.tracker.perform(.revert(migration: m1))
        #expect(reverted.after.instance?.numa?.cells.map(\.pinning) == [[0: 2, 1: 3]])
        #expect(try await Self.pins(fixture, Self.nodeA) == [vm1: [2, 3], vm2: [6, 7]])

        // Cross-node resize of vm2 (with its GPU) to node B, which has a GPU on cell 0: confirm frees node A's.
        let m2 = Self.mig(2)
        let moved = try await fixture.tracker.perform(.move(Migration(
            uuid: m2, instanceUUID: vm2, kind: .migration, status: .accepted, sourceNode: "", destNode: Self.nodeB,
            oldFlavor: Self.pinned(2), newFlavor: Self.pinned(2))))
        #expect(moved.after.migration?.newPCIDevices == ["0000:af:00.0"])
        #expect(moved.after.migration?.newNUMA?.cells.map(\.hostCell) == [0])
        #expect(try await fixture.ledger.hostClaims(node: Self.nodeA)[m2]?.pciDevices == ["0000:af:00.0"])
        try await fixture.tracker.perform(.finish(migration: m2))
        try await fixture.tracker.perform(.confirm(migration: m2))
        #expect(try await fixture.ledger.hostClaims(node: Self.nodeA)[m2] == nil)
        #expect(try await fixture.ledger.hostClaims(node: Self.nodeB)[vm2]?.pciDevices == ["0000:af:00.0"])
        // Node A's GPU can be taken again.
        try await fixture.tracker.perform(.build(Self.instance(Self.vm(7), Self.pinned(1, ["pci_passthrough:alias": "gpu:1"]))))
        // A move deleted half-way releases both sides.
        let m3 = Self.mig(3)
        try await fixture.tracker.perform(.move(Migration(
            uuid: m3, instanceUUID: vm1, kind: .liveMigration, status: .accepted, sourceNode: "", destNode: Self.nodeB,
            oldFlavor: Self.pinned(2), newFlavor: Self.pinned(2))))
        #expect(try await Self.pins(fixture, Self.nodeB)[vm1]?.count == 2)
        try await fixture.tracker.perform(.delete(instance: vm1))
        #expect(try await Self.pins(fixture, Self.nodeB)[vm1] == nil)
        #expect(try await Self.pins(fixture, Self.nodeA)[m3] == nil)
        try await fixture.expectAgreement()
        try await Self.expectConsistentClaims(fixture)
    }

    /// A device that vanishes while an instance holds it is reported at every audit and kept in the ledger until
    /// the instance lets go; new devices are reported and can be claimed.
    @Test(arguments: TrackerBackend.all) func auditsReconcileDevices(backend: TrackerBackend) async throws {
        let fixture = try await Self.fixture(backend: backend)
        defer { Task { await fixture.remove() } }
        let vm = Self.vm(1)
        try await fixture.tracker.perform(.build(Self.instance(vm, Self.pinned(1, ["pci_passthrough:alias": "gpu:1"]))))
        var nodes = Self.nodes()
        var devices = nodes[0]["pci_devices"] as? [[String: Any]] ?? []
        devices.removeAll { $0["address"] as? String == "0000:af:00.0" }
        devices.append(["address": "0000:d8:00.0", "vendor_id": "10de", "product_id": "1db4", "numa_node": 0])
        nodes[0]["pci_devices"] = devices
        try fixture.writeNodes(nodes)
        let report = try await fixture.tracker.audit()
        #expect(report.devicesAppeared == ["0000:d8:00.0@\(Self.nodeA)"])
        #expect(report.devicesVanished == ["0000:af:00.0@\(Self.nodeA)"])
        #expect(report.devicesHeldButGone == ["0000:af:00.0@\(Self.nodeA)": vm])
        #expect(try await fixture.ledger.hostClaims(node: Self.nodeA)[vm]?.pciDevices == ["0000:af:00.0"])
        // Still reported while held; the new GPU can be claimed meanwhile.
        #expect(try await fixture.tracker.audit().devicesHeldButGone.count == 1)
        let other = try await fixture.tracker.perform(.build(Self.instance(Self.vm(2), Self.pinned(1, ["pci_passthrough:alias": "gpu:1"]))))
        #expect(other.after.instance?.pciDevices == ["0000:d8:00.0"])
        try await fixture.tracker.perform(.delete(instance: vm))
        let after = try await fixture.tracker.audit()
        #expect(after.devicesHeldButGone.isEmpty && after.devicesAppeared.isEmpty && after.devicesVanished.isEmpty)
        try await Self.expectConsistentClaims(fixture)
    }

    /// Turning on PCI devices in Placement reshapes a node with holders: child providers appear with their
    /// inventories, the holders' allocations move onto them in the same transaction, new claims allocate there,
    /// moves carry them, and turning it off moves everything back and removes the providers.
    @Test(arguments: TrackerBackend.all) func reportingDevicesInPlacementReshapesTheNode(backend: TrackerBackend) async throws {
        let fixture = try await Self.fixture(backend: backend)
        defer { Task { await fixture.remove() } }
        let vm1 = Self.vm(1)
        try await fixture.tracker.perform(.build(Self.instance(vm1, Self.pinned(1, ["pci_passthrough:alias": "gpu:1"]))))
        try await fixture.tracker.perform(.update(instance: vm1, vmState: .active, taskState: .some(nil), osType: nil))
        func tracker(_ inPlacement: Bool) -> Tracker {
            fixture.restartedTracker(hostConfig: Self.config(pciInPlacement: inPlacement, numaInPlacement: false))
        }
        // The agent restarts with devices in Placement.
        let on = tracker(true)
        let report = try await on.start()
        #expect(report.reshaped == [vm1])
        let gpuA = HostConfig.stableUUID(Self.nodeA + "/0000:af:00.0"), nicA = HostConfig.stableUUID(Self.nodeA + "/0000:3b:00.0")
        let gpuB = HostConfig.stableUUID(Self.nodeB + "/0000:af:00.0")
        #expect(try await fixture.store.provider(uuid: gpuA)?.parentUUID == Self.nodeA)
        #expect(try await fixture.store.provider(uuid: gpuA)?.name == "n-a_0000:af:00.0")
        #expect(try await fixture.store.inventories(providerUUID: nicA).inventories.mapValues(\.total)
                == ["CUSTOM_PCI_8086_1572": 1, "CUSTOM_PCI_8086_154C": 2])
        let moved = try await fixture.store.allocations(consumerUUID: vm1)
        #expect(moved.byProvider[gpuA] == ["CUSTOM_PCI_10DE_1DB4": 1])
        #expect(moved.byProvider[Self.nodeA]?["PCPU"] == 1)
        #expect(try await fixture.ledger.instance(uuid: vm1)?.childAllocations == [gpuA: ["CUSTOM_PCI_10DE_1DB4": 1]])
        // A second audit changes nothing.
        #expect(try await on.audit().reshaped.isEmpty)
        // New claims allocate the child providers; a VF is a unit of its PF's provider.
        let vm2 = Self.vm(2)
        try await on.perform(.build(Self.instance(vm2, Self.pinned(1, ["pci_passthrough:alias": "vf:1"]))))
        #expect(try await fixture.store.allocations(consumerUUID: vm2).byProvider[nicA] == ["CUSTOM_PCI_8086_154C": 1])
        // A move to node B takes B's GPU provider; the migration keeps A's until confirmed.
        let m1 = Self.mig(1)
        try await on.perform(.move(Migration(
            uuid: m1, instanceUUID: vm1, kind: .migration, status: .accepted, sourceNode: "", destNode: Self.nodeB,
            oldFlavor: Self.pinned(1), newFlavor: Self.pinned(1))))
        #expect(try await fixture.store.allocations(consumerUUID: vm1).byProvider[gpuB] == ["CUSTOM_PCI_10DE_1DB4": 1])
        #expect(try await fixture.store.allocations(consumerUUID: m1).byProvider[gpuA] == ["CUSTOM_PCI_10DE_1DB4": 1])
        try await on.perform(.finish(migration: m1))
        try await on.perform(.confirm(migration: m1))
        #expect(try await fixture.store.usages(providerUUID: gpuA).1.values.allSatisfy { $0 == 0 })
        try await Self.expectConsistentClaims(fixture)
        // Another service's child of the node (a network agent's, say) is not ours to touch.
        let foreign = UUID().uuidString.lowercased()
        _ = try await fixture.store.createProvider(uuid: foreign, name: "n-a:NIC bandwidth", parentUUID: Self.nodeA)
        // Off again: allocations move back to the roots only, and the child providers go.
        let off = tracker(false)
        let back = try await off.start()
        #expect(Set(back.reshaped) == [vm1, vm2])
        #expect(try await fixture.store.provider(uuid: gpuA) == nil)
        #expect(try await fixture.store.provider(uuid: gpuB) == nil)
        #expect(try await fixture.store.provider(uuid: foreign)?.parentUUID == Self.nodeA)
        #expect(try await fixture.store.allocations(consumerUUID: vm1).byProvider.keys.sorted() == [Self.nodeB])
        #expect(try await fixture.ledger.instance(uuid: vm2)?.childAllocations == [:])
        try await Self.expectConsistentClaims(fixture)
    }

    /// NUMA cells as child providers: the root keeps DISK_GB, each cell holds VCPU, PCPU and MEMORY_MB; every
    /// instance gets a cell (an implicit one when its flavor asks for none) and allocates there; turning it on
    /// reshapes the node with its instances, turning it off moves them back.
    @Test(arguments: TrackerBackend.all) func reportingCellsInPlacementReshapesTheNode(backend: TrackerBackend) async throws {
        let fixture = try await Self.fixture(backend: backend)
        defer { Task { await fixture.remove() } }
        let plain = Flavor(name: "plain", vcpus: 1, memoryMB: 512, rootGB: 5)
        let vm1 = Self.vm(1), vm2 = Self.vm(2)
        try await fixture.tracker.perform(.build(Self.instance(vm1, plain)))
        try await fixture.tracker.perform(.build(Self.instance(vm2, Self.pinned(2))))
        func tracker(_ on: Bool) -> Tracker {
            fixture.restartedTracker(hostConfig: Self.config(pciInPlacement: false, numaInPlacement: on))
        }
        let on = tracker(true)
        let report = try await on.start()
        #expect(Set(report.reshaped) == [vm1, vm2])
        let cell0 = HostConfig.stableUUID(Self.nodeA + "/numa/0"), cell1 = HostConfig.stableUUID(Self.nodeA + "/numa/1")
        #expect(try await fixture.store.inventories(providerUUID: Self.nodeA).inventories.keys.sorted() == ["DISK_GB"])
        #expect(try await fixture.store.inventories(providerUUID: cell0).inventories.mapValues(\.total)
                == ["VCPU": 1, "PCPU": 3, "MEMORY_MB": 8192])
        #expect(try await fixture.store.provider(uuid: cell1)?.name == "n-a_NUMA1")
        // The plain instance got a cell of its own; the pinned one keeps its pins.
        let first = try await fixture.store.allocations(consumerUUID: vm1).byProvider
        #expect(first[Self.nodeA] == ["DISK_GB": 5])
        #expect(first.filter { $0.key != Self.nodeA }.values.first == ["VCPU": 1, "MEMORY_MB": 512])
        #expect(try await fixture.store.allocations(consumerUUID: vm2).byProvider[cell0] == ["PCPU": 2, "MEMORY_MB": 1024])
        #expect(try await on.audit().reshaped.isEmpty)
        // New instances allocate their cells; one that fits no cell is refused.
        let vm3 = Self.vm(3)
        try await on.perform(.build(Self.instance(vm3, plain)))
        #expect(try await fixture.store.allocations(consumerUUID: vm3).byProvider.count == 2)
        await #expect(throws: ComputeError.self) {
            try await on.perform(.build(Self.instance(Self.vm(4), Flavor(name: "wide", vcpus: 2, memoryMB: 512))))
        }
        try await Self.expectConsistentClaims(fixture)
        // Off: everything back on the root, the cells gone.
        let off = tracker(false)
        #expect(Set(try await off.start().reshaped) == [vm1, vm2, vm3])
        #expect(try await fixture.store.provider(uuid: cell0) == nil)
        #expect(try await fixture.store.allocations(consumerUUID: vm2).byProvider == [Self.nodeA: ["PCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10]])
        #expect(try await fixture.store.inventories(providerUUID: Self.nodeA).inventories["VCPU"]?.total == 2)
        try await Self.expectConsistentClaims(fixture)
    }

    /// Huge pages: a flavor asking for 2 MiB pages takes them from one cell until none are left.
    @Test(arguments: TrackerBackend.all) func hugePagesAreCountedPerCell(backend: TrackerBackend) async throws {
        let fixture = try await Self.fixture(backend: backend)
        defer { Task { await fixture.remove() } }
        let flavor = Flavor(name: "hp", vcpus: 1, memoryMB: 512, extraSpecs: ["hw:mem_page_size": "2MB", "hw:cpu_policy": "dedicated"])
        var cells: [Int] = []
        for n in 1...4 {
            let change = try await fixture.tracker.perform(.build(Self.instance(Self.vm(n), flavor)))
            let cell = try #require(change.after.instance?.numa?.cells.first)
            #expect(cell.pageSizeKB == 2048)
            cells.append(cell.hostCell)
        }
        // 1024 MiB of pages per cell: two instances each, busiest cell first.
        #expect(cells == [0, 0, 1, 1])
        await #expect(throws: ComputeError.self) {
            try await fixture.tracker.perform(.build(Self.instance(Self.vm(5), flavor)))
        }
        try await fixture.tracker.perform(.abortBuild(instance: Self.vm(2)))
        let again = try await fixture.tracker.perform(.build(Self.instance(Self.vm(6), flavor)))
        #expect(again.after.instance?.numa?.cells.first?.hostCell == 0)
        try await Self.expectConsistentClaims(fixture)
    }

    /// Any random sequence of builds, moves, finishes, confirms, reverts, rollbacks, aborts and deletions: no
    /// pinned CPU, page or device is claimed by no one or claimed twice, and the ledger's host claims are exactly
    /// what its records say (plain, with PCI devices in Placement, with NUMA cells and devices in Placement).
    @Test(arguments: TrackerBackend.all, [(false, false), (true, false), (true, true)])
    func randomSequencesNeverLeakOrDoubleClaim(backend: TrackerBackend, placement: (pci: Bool, numa: Bool)) async throws {
        let (pciInPlacement, numaInPlacement) = placement
        let fixture = try await Self.fixture(
            backend: backend, pciInPlacement: pciInPlacement, numaInPlacement: numaInPlacement)
        defer { Task { await fixture.remove() } }
        var rng = SplitMix64(seed: 0x5eed_0005)
        let flavors = [
            Self.pinned(1), Self.pinned(2), Self.pinned(2, ["hw:cpu_thread_policy": "isolate"]),
            Self.pinned(1, ["pci_passthrough:alias": "gpu:1"]), Self.pinned(1, ["pci_passthrough:alias": "vf:1"]),
            Flavor(name: "pf", vcpus: 1, memoryMB: 512, extraSpecs: ["pci_passthrough:alias": "pf:1"]),
            Flavor(name: "hp", vcpus: 1, memoryMB: 512, extraSpecs: ["hw:mem_page_size": "2MB", "hw:numa_nodes": "1"]),
            Flavor(name: "shared", vcpus: 1, memoryMB: 256),
        ]
        var instances: [String] = []
        var migrations: [String] = []
        var accepted = 0, mostPinned = 0, mostDevices = 0
        for step in 0..<600 {
            let node = rng.next() % 2 == 0 ? Self.nodeA : Self.nodeB
            let operation: ComputeOperation
            switch rng.next() % 10 {
            case 0, 1, 2:
                let uuid = Self.vm(step)
                instances.append(uuid)
                operation = .build(Self.instance(uuid, flavors[Int(rng.next() % UInt64(flavors.count))], on: node))
            case 3:
                guard let uuid = instances.randomElement(using: &rng) else { continue }
                operation = .update(instance: uuid, vmState: .active, taskState: .some(nil), osType: nil)
            case 4:
                guard let uuid = instances.randomElement(using: &rng) else { continue }
                let kinds: [MigrationKind] = [.resize, .migration, .liveMigration, .evacuation]
                let kind = kinds[Int(rng.next() % 4)]
                let migration = Self.mig(step)
                migrations.append(migration)
                let flavor = flavors[Int(rng.next() % UInt64(flavors.count))]
                operation = .move(Migration(uuid: migration, instanceUUID: uuid, kind: kind, status: .accepted, sourceNode: "",
                                            destNode: node, oldFlavor: flavor, newFlavor: flavor))
            case 5:
                guard let uuid = migrations.randomElement(using: &rng) else { continue }
                operation = .finish(migration: uuid)
            case 6:
                guard let uuid = migrations.randomElement(using: &rng) else { continue }
                operation = rng.next() % 2 == 0 ? .confirm(migration: uuid) : .revert(migration: uuid)
            case 7:
                guard let uuid = migrations.randomElement(using: &rng) else { continue }
                operation = .rollback(migration: uuid)
            case 8:
                guard let uuid = instances.randomElement(using: &rng) else { continue }
                operation = .abortBuild(instance: uuid)
            default:
                guard let uuid = instances.randomElement(using: &rng) else { continue }
                operation = .delete(instance: uuid)
            }
            do {
                try await fixture.tracker.perform(operation)
                accepted += 1
            } catch is ComputeError {
                // Refusals are part of the game; they must change nothing (checked below).
            }
            if step % 20 == 19 {
                let held = try await Self.expectConsistentClaims(fixture)
                mostPinned = max(mostPinned, held.cpus)
                mostDevices = max(mostDevices, held.devices)
            }
        }
        #expect(accepted > 60, "the sequence exercised the ledger (\(accepted) accepted)")
        #expect(mostPinned >= 4 && mostDevices >= 2, "pins \(mostPinned), devices \(mostDevices) held at once at most")
        try await Self.expectConsistentClaims(fixture)
        try await fixture.expectAgreement()
    }

    /// On every node: host claims equal what the records imply; no CPU pinned twice, no device held twice, pages
    /// and dedicated CPUs within the node's; every holder is a live consumer.
    /// - Returns: how many CPUs and devices are held in all.
    @discardableResult
    static func expectConsistentClaims(
        _ fixture: TrackerFixture, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> (cpus: Int, devices: Int) {
        var held = (cpus: 0, devices: 0)
        var expected: [String: [String: HostClaim]] = [:]
        let moving = try await fixture.ledger.migrations(node: nil, inProgressOnly: true)
        for instance in try await fixture.ledger.instances(node: nil, includeDeleted: true) {
            let migration = moving.first { $0.instanceUUID == instance.uuid }
            for (consumer, byNode) in LedgerRecords(instance: instance, migration: migration).hostClaims {
                for (node, claim) in byNode { expected[node, default: [:]][consumer] = claim }
            }
        }
        for node in [nodeA, nodeB] {
            let claims = try await fixture.ledger.hostClaims(node: node)
            #expect(claims == expected[node] ?? [:], "host claims on \(node) vs the records", sourceLocation: sourceLocation)
            var cpus: [Int: String] = [:], devices: [String: String] = [:], pages: [Int: Int] = [:]
            for (consumer, claim) in claims {
                for cell in claim.numa?.cells ?? [] {
                    for cpu in Array(cell.pinning.values) + cell.reservedCPUs {
                        #expect(cpus.updateValue(consumer, forKey: cpu) == nil, "CPU \(cpu) on \(node) claimed twice",
                                sourceLocation: sourceLocation)
                        #expect(config.dedicatedCPUs.contains(cpu), sourceLocation: sourceLocation)
                    }
                    if cell.pageSizeKB == 2048 { pages[cell.hostCell, default: 0] += cell.memoryMB / 2 }
                }
                for address in claim.pciDevices {
                    #expect(devices.updateValue(consumer, forKey: address) == nil, "device \(address) on \(node) claimed twice",
                            sourceLocation: sourceLocation)
                }
            }
            #expect(pages.values.allSatisfy { $0 <= 512 }, "pages within the cells on \(node)", sourceLocation: sourceLocation)
            // A PF and one of its VFs are never both held.
            #expect(!(devices["0000:3b:00.0"] != nil && (devices["0000:3b:02.0"] != nil || devices["0000:3b:02.1"] != nil)),
                    sourceLocation: sourceLocation)
            held.cpus += cpus.count
            held.devices += devices.count
        }
        return held
    }
}
