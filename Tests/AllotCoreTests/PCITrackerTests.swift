import AllotCore
import Testing

/// PCI claiming, table-driven: a host with two SR-IOV NICs (a PF and two VFs each, one per NUMA cell), two GPUs
/// (one on cell 1, one reporting no cell) and a disk controller no spec admits; each case claims for earlier
/// consumers, then asks, and expects the devices chosen or the refusal.
@Suite struct PCITrackerTests {
    static let devices = [
        PCIDevice(address: "0000:3b:00.0", vendorID: "8086", productID: "1572", numaNode: 0, kind: .pf),
        PCIDevice(address: "0000:3b:02.0", vendorID: "8086", productID: "154c", numaNode: 0, kind: .vf, parentAddress: "0000:3b:00.0"),
        PCIDevice(address: "0000:3b:02.1", vendorID: "8086", productID: "154c", numaNode: 0, kind: .vf, parentAddress: "0000:3b:00.0"),
        PCIDevice(address: "0000:5e:00.0", vendorID: "8086", productID: "1572", numaNode: 1, kind: .pf),
        PCIDevice(address: "0000:5e:02.0", vendorID: "8086", productID: "154c", numaNode: 1, kind: .vf, parentAddress: "0000:5e:00.0"),
        PCIDevice(address: "0000:5e:02.1", vendorID: "8086", productID: "154c", numaNode: 1, kind: .vf, parentAddress: "0000:5e:00.0"),
        PCIDevice(address: "0000:af:00.0", vendorID: "10de", productID: "1db4", numaNode: 1),
        PCIDevice(address: "0000:d8:00.0", vendorID: "10de", productID: "1db4"),
        PCIDevice(address: "0000:00:1f.2", vendorID: "8086", productID: "a182"),
    ]
    static let specs = [
        PCIDeviceSpec(vendorID: "8086", productID: "154c", tags: ["physical_network": "physnet1"]),
        PCIDeviceSpec(vendorID: "8086", productID: "1572", tags: ["physical_network": "physnet1"]),
        PCIDeviceSpec(vendorID: "10de"),
    ]
    static let aliases: [String: PCIAlias] = [
        "vf": PCIAlias(name: "vf", vendorID: "8086", productID: "154c", deviceType: .vf, numaPolicy: .required),
        "pf": PCIAlias(name: "pf", vendorID: "8086", productID: "1572", deviceType: .pf, numaPolicy: .required),
        "gpu": PCIAlias(name: "gpu", vendorID: "10de", productID: "1db4", numaPolicy: .legacy),
        "physnet2": PCIAlias(name: "physnet2", deviceType: .vf, tags: ["physical_network": "physnet2"]),
        "nvme": PCIAlias(name: "nvme", vendorID: "8086", productID: "a182"),
    ]

    enum Expect: Sendable {
        case claimed([String])
        case refused(String)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        /// Earlier consumers' requests (no NUMA restriction).
        var before: [(String, [PCIRequest])] = []
        var request: [PCIRequest]
        /// The instance's NUMA cells, when it has a topology.
        var cells: Set<Int>? = nil
        var expect: Expect
        var testDescription: String { name }
    }

    static func r(_ alias: String, _ count: Int = 1) -> PCIRequest { PCIRequest(alias: alias, count: count) }

    static let cases: [Case] = [
        Case(name: "one VF, lowest address", request: [r("vf")], expect: .claimed(["0000:3b:02.0"])),
        Case(name: "two VFs of one PF", request: [r("vf", 2)], expect: .claimed(["0000:3b:02.0", "0000:3b:02.1"])),
        Case(name: "three VFs span both PFs", request: [r("vf", 3)],
             expect: .claimed(["0000:3b:02.0", "0000:3b:02.1", "0000:5e:02.0"])),
        Case(name: "five VFs when four exist", request: [r("vf", 5)], expect: .refused("5 device(s) of PCI alias 'vf' requested, 4 free")),
        Case(name: "a held PF blocks its VFs", before: [("a", [r("pf")])], request: [r("vf", 2)],
             expect: .claimed(["0000:5e:02.0", "0000:5e:02.1"])),
        Case(name: "a held VF blocks its PF", before: [("a", [r("vf")])], request: [r("pf")], expect: .claimed(["0000:5e:00.0"])),
        Case(name: "a VF of each family leaves no PF", before: [("a", [r("vf", 3)])], request: [r("pf")],
             expect: .refused("1 device(s) of PCI alias 'pf' requested, 0 free")),
        Case(name: "VFs on the instance's cell only (required)", request: [r("vf")], cells: [1], expect: .claimed(["0000:5e:02.0"])),
        Case(name: "required with no device on the instance's cell", before: [("a", [r("vf", 2)])], request: [r("vf")], cells: [0],
             expect: .refused("0 free")),
        Case(name: "legacy takes a device without a cell", request: [r("gpu")], cells: [0], expect: .claimed(["0000:d8:00.0"])),
        Case(name: "legacy takes the cell's device and the cell-less one", request: [r("gpu", 2)], cells: [1],
             expect: .claimed(["0000:af:00.0", "0000:d8:00.0"])),
        Case(name: "no NUMA topology: any device", request: [r("gpu", 2)], expect: .claimed(["0000:af:00.0", "0000:d8:00.0"])),
        Case(name: "an alias whose tags no device carries", request: [r("physnet2")], expect: .refused("'physnet2' requested, 0 free")),
        Case(name: "a device no spec admits is never claimed", request: [r("nvme")], expect: .refused("'nvme' requested, 0 free")),
        Case(name: "an unknown alias", request: [r("fpga")], expect: .refused("no PCI alias 'fpga'")),
        Case(name: "two aliases at once", request: [r("vf"), r("gpu")], expect: .claimed(["0000:3b:02.0", "0000:af:00.0"])),
        Case(name: "all or nothing", request: [r("vf"), r("gpu", 3)], expect: .refused("3 device(s) of PCI alias 'gpu' requested, 2 free")),
        Case(name: "a consumer claims once", before: [("b", [r("gpu")])], request: [r("vf")], expect: .claimed(["0000:3b:02.0"])),
        Case(name: "after others took the first family", before: [("a", [r("vf", 2)]), ("b", [r("gpu")])],
             request: [r("vf"), r("gpu")], expect: .claimed(["0000:5e:02.0", "0000:d8:00.0"])),
    ]

    @Test(arguments: cases)
    func claim(_ c: Case) throws {
        var tracker = PCITracker(devices: Self.devices, specs: Self.specs)
        for (consumer, requests) in c.before { _ = try tracker.claim(requests, aliases: Self.aliases, consumer: consumer) }
        let before = tracker
        let cells = c.cells
        do {
            let claimed = try tracker.claim(c.request, aliases: Self.aliases, consumer: "x") { alias, cell in
                alias.numaPolicy.allows(cell: cell, instanceCells: cells)
            }
            guard case .claimed(let expected) = c.expect else { Issue.record("claimed \(claimed)"); return }
            #expect(claimed.sorted() == expected)
            #expect(tracker.held(by: "x") == expected)
        } catch {
            guard case .refused(let text) = c.expect else { Issue.record("refused: \(error)"); return }
            #expect(error.description.contains(text), "\(error)")
            #expect(tracker == before, "a refused claim changes nothing")
        }
        #expect(tracker.problem == nil)
    }

    @Test func poolsStatusesAndFreeing() throws {
        var tracker = PCITracker(devices: Self.devices, specs: Self.specs)
        #expect(tracker.records["0000:00:1f.2"] == nil)
        #expect(tracker.pools.map { "\($0.productID)/\($0.kind.rawValue)/\($0.numaNode.map(String.init) ?? "-"):\($0.count)" } == [
            "1db4/type-PCI/-:1", "1db4/type-PCI/1:1", "154c/type-VF/0:2", "154c/type-VF/1:2", "1572/type-PF/0:1",
            "1572/type-PF/1:1",
        ].sorted { a, b in
            // The pools' order: vendor, product, kind, cell (no cell first).
            let key = { (s: String) -> (String, String) in (s.hasPrefix("1db4") ? "10de" : "8086", s) }
            return key(a) < key(b)
        })
        #expect(tracker.pools.first { $0.kind == .vf }?.tags == ["physical_network": "physnet1"])
        let pf = try tracker.claim([PCIRequest(alias: "pf", count: 1)], aliases: Self.aliases, consumer: "i1")
        #expect(pf == ["0000:3b:00.0"])
        #expect(tracker.records["0000:3b:02.0"]?.status == .unavailable)
        #expect(throws: PCIClaimError.alreadyHeld(consumer: "i1")) {
            try tracker.claim([PCIRequest(alias: "gpu", count: 1)], aliases: Self.aliases, consumer: "i1")
        }
        tracker.allocate(consumer: "i1")
        #expect(tracker.records["0000:3b:00.0"]?.status == .allocated)
        #expect(tracker.free(consumer: "i1") == ["0000:3b:00.0"])
        #expect(tracker.records.values.allSatisfy { $0.status == .available })
        #expect(tracker.freeByCell(Self.aliases["gpu"]!) == [1: 1, nil: 1])
        // A move's claim passes from the migration to the instance.
        _ = try tracker.claim([PCIRequest(alias: "vf", count: 1)], aliases: Self.aliases, consumer: "m1")
        tracker.transfer(from: "m1", to: "i2")
        #expect(tracker.held(by: "i2") == ["0000:3b:02.0"] && tracker.held(by: "m1").isEmpty)
    }

    @Test func reconcileKeepsHeldDevicesThatVanish() throws {
        var tracker = PCITracker(devices: Self.devices, specs: Self.specs)
        _ = try tracker.claim([PCIRequest(alias: "gpu", count: 1)], aliases: Self.aliases, consumer: "i1")
        tracker.allocate(consumer: "i1")
        let gone = Self.devices.filter { $0.address != "0000:af:00.0" && $0.address != "0000:d8:00.0" }
            + [PCIDevice(address: "0000:d9:00.0", vendorID: "10de", productID: "1db4", numaNode: 0)]
        let report = tracker.reconcile(devices: gone, specs: Self.specs)
        #expect(report.appeared == ["0000:d9:00.0"])
        #expect(report.vanished == ["0000:d8:00.0"])
        #expect(report.removedWhileHeld == ["0000:af:00.0": "i1"])
        #expect(tracker.records["0000:af:00.0"]?.status == .removed)
        #expect(tracker.problem == nil)
        // It comes back while still held: allocated again.
        _ = tracker.reconcile(devices: gone + [Self.devices[6]], specs: Self.specs)
        #expect(tracker.records["0000:af:00.0"]?.status == .allocated)
        _ = tracker.reconcile(devices: gone, specs: Self.specs)
        #expect(tracker.free(consumer: "i1") == ["0000:af:00.0"])
        #expect(tracker.records["0000:af:00.0"] == nil)
    }

    @Test func flavorsAndSpecsAreRead() throws {
        let flavor = Flavor(name: "f", vcpus: 1, memoryMB: 512, extraSpecs: ["pci_passthrough:alias": "gpu:2, vf ,gpu:1"])
        #expect(try PCIRequest.from(flavor, aliases: Self.aliases) == [PCIRequest(alias: "gpu", count: 3), PCIRequest(alias: "vf", count: 1)])
        for bad in ["gpu:0", "gpu:x", "nope:1", ":1", "gpu:1:2"] {
            let flavor = Flavor(name: "f", vcpus: 1, memoryMB: 512, extraSpecs: ["pci_passthrough:alias": bad])
            #expect(throws: ComputeError.self, "\(bad)") { try PCIRequest.from(flavor, aliases: Self.aliases) }
        }
        let spec = PCIDeviceSpec(address: "*:3b:*.*")
        #expect(spec.matches(Self.devices[1]) && !spec.matches(Self.devices[4]))
        #expect(PCIDeviceSpec(address: "0000:5e:02.1").matches(Self.devices[5]))
        #expect(spec.problem == nil)
        #expect(PCIDeviceSpec(address: "0000:zz").problem != nil)
        #expect(PCIDeviceSpec(vendorID: "80866").problem != nil)
        #expect(PCINUMAPolicy.socket.allows(cell: 3, instanceCells: [2], socketOf: { $0 / 2 }))
        #expect(!PCINUMAPolicy.socket.allows(cell: 3, instanceCells: [0], socketOf: { $0 / 2 }))
    }
}
