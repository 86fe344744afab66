import AllotCore
import Testing

/// NUMA fitting, table-driven: each case is a host topology with what is already used, a flavor's `hw:` specs
/// (and PCI affinity), and the expected placement — host cell, pinning, CPUs held empty, page size — or the
/// expected refusal and its reason.
@Suite struct NUMAFitTests {
    // MARK: Topologies

    /// One cell, 4 CPUs without SMT, 8 GB, no huge pages.
    static let flat = [NUMACell(id: 0, cpus: [0, 1, 2, 3], memoryMB: 8192)]
    /// Two cells of two cores × two threads (siblings 0/2 and 1/3; 4/6 and 5/7), 8 GB each; 2 GB of 2 MiB pages
    /// in each cell and two 1 GiB pages in cell 1; one socket per cell.
    static let twoSMT = [
        NUMACell(id: 0, cpus: [0, 1, 2, 3], siblings: [[0, 2], [1, 3]], memoryMB: 8192, pages: [2048: 1024], socket: 0),
        NUMACell(id: 1, cpus: [4, 5, 6, 7], siblings: [[4, 6], [5, 7]], memoryMB: 8192,
                 pages: [2048: 1024, 1_048_576: 2], socket: 1),
    ]
    /// Four cells of two CPUs and 4 GB; cells 0 and 1 on socket 0, cells 2 and 3 on socket 1.
    static let four = (0..<4).map { NUMACell(id: $0, cpus: [2 * $0, 2 * $0 + 1], memoryMB: 4096, socket: $0 / 2) }
    static let all8 = Set(0..<8)

    // MARK: Cases

    struct Placed: Sendable, Equatable {
        var hostCell: Int
        var pinning: [Int: Int] = [:]
        var reserved: [Int] = []
        var pageKB = 4
        var shared = 0
    }

    enum Expect: Sendable {
        case placed([Placed])
        /// The fit fails and its description contains the text.
        case refused(String)
        /// The flavor is refused before fitting (`invalidFlavor`, text contained).
        case invalid(String)
        /// The flavor asks for no NUMA topology.
        case noTopology
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var cells: [NUMACell]
        var dedicated: Set<Int> = []
        var shared: Set<Int>? = nil
        var cpuRatio = 1.0
        var ramRatio = 1.0
        var strategy = NUMAFitter.Strategy.pack
        var usage: [Int: NUMACellUsage] = [:]
        var vcpus = 2
        var memoryMB = 1024
        var specs: [String: String]
        var pci: [PCIAffinityRequest] = []
        var expect: Expect
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        // Reading the specs.
        Case(name: "no hw: specs means no NUMA topology", cells: flat, specs: [:], expect: .noTopology),
        Case(name: "unknown CPU policy", cells: flat, specs: ["hw:cpu_policy": "exclusive"], expect: .invalid("hw:cpu_policy")),
        Case(name: "vCPUs that do not split evenly", cells: flat, vcpus: 4, specs: ["hw:numa_nodes": "3"],
             expect: .invalid("do not split evenly")),
        Case(name: "a thread policy without dedicated CPUs", cells: flat, specs: ["hw:cpu_thread_policy": "isolate"],
             expect: .invalid("hw:cpu_thread_policy needs")),
        Case(name: "a page size that is not one", cells: flat, specs: ["hw:mem_page_size": "3XB"], expect: .invalid("hw:mem_page_size")),
        Case(name: "memory not a multiple of the page size", cells: twoSMT, memoryMB: 1536,
             specs: ["hw:mem_page_size": "1GB"], expect: .invalid("multiple of the 1048576 KiB")),
        Case(name: "mixed policy without a mask", cells: flat, specs: ["hw:cpu_policy": "mixed"], expect: .invalid("needs hw:cpu_dedicated_mask")),
        Case(name: "a mask that dedicates every vCPU", cells: flat, vcpus: 2, specs: ["hw:cpu_dedicated_mask": "0-1"],
             expect: .invalid("at least one vCPU dedicated and one shared")),
        Case(name: "asymmetric cells that miss a vCPU", cells: twoSMT, vcpus: 4, memoryMB: 4096,
             specs: ["hw:numa_nodes": "2", "hw:numa_cpus.0": "0", "hw:numa_cpus.1": "1-2", "hw:numa_mem.0": "1024",
                     "hw:numa_mem.1": "3072"], expect: .invalid("cover every vCPU")),

        // Floating vCPUs and small pages.
        Case(name: "one shared cell on a flat host", cells: flat, specs: ["hw:numa_nodes": "1"],
             expect: .placed([Placed(hostCell: 0, shared: 2)])),
        Case(name: "two cells split evenly", cells: twoSMT, vcpus: 4, memoryMB: 4096, specs: ["hw:numa_nodes": "2"],
             expect: .placed([Placed(hostCell: 0, shared: 2), Placed(hostCell: 1, shared: 2)])),
        Case(name: "asymmetric cells as asked", cells: twoSMT, vcpus: 4, memoryMB: 4096,
             specs: ["hw:numa_nodes": "2", "hw:numa_cpus.0": "0", "hw:numa_cpus.1": "1-3", "hw:numa_mem.0": "1024",
                     "hw:numa_mem.1": "3072"],
             expect: .placed([Placed(hostCell: 0, shared: 1), Placed(hostCell: 1, shared: 3)])),
        Case(name: "more guest cells than host cells", cells: twoSMT, vcpus: 3, memoryMB: 3072, specs: ["hw:numa_nodes": "3"],
             expect: .refused("asks for 3 NUMA cells and the host has 2")),
        Case(name: "floating vCPUs within the CPU ratio", cells: flat, cpuRatio: 2,
             usage: [0: NUMACellUsage(sharedVCPUs: 6)], specs: ["hw:numa_nodes": "1"],
             expect: .placed([Placed(hostCell: 0, shared: 2)])),
        Case(name: "floating vCPUs beyond the CPU ratio", cells: flat, cpuRatio: 2,
             usage: [0: NUMACellUsage(sharedVCPUs: 6)], vcpus: 3, memoryMB: 1023, specs: ["hw:numa_nodes": "1"],
             expect: .refused("room for 2 floating vCPUs, 3 asked")),
        Case(name: "a guest cell wider than the host cell", cells: flat, cpuRatio: 16, vcpus: 6, memoryMB: 1026,
             specs: ["hw:numa_nodes": "1"], expect: .refused("has 4 CPUs for 6 vCPUs")),
        Case(name: "small pages oversubscribed by the RAM ratio", cells: twoSMT, ramRatio: 1.5, memoryMB: 8192,
             specs: ["hw:numa_nodes": "1"], expect: .placed([Placed(hostCell: 0, shared: 2)])),
        Case(name: "explicit small pages are not oversubscribed", cells: twoSMT, ramRatio: 1.5, memoryMB: 8192,
             specs: ["hw:mem_page_size": "small"], expect: .refused("needs 8192 MB, 6144 MB free")),

        // Huge pages.
        Case(name: "2 MiB pages", cells: twoSMT, specs: ["hw:mem_page_size": "2048"],
             expect: .placed([Placed(hostCell: 0, pageKB: 2048, shared: 2)])),
        Case(name: "not enough 2 MiB pages anywhere", cells: twoSMT, memoryMB: 4096, specs: ["hw:mem_page_size": "2MB"],
             expect: .refused("needs 2048 pages of 2048 KiB, 1024 free")),
        Case(name: "1 GiB pages only in cell 1", cells: twoSMT, memoryMB: 2048, specs: ["hw:mem_page_size": "1GB"],
             expect: .placed([Placed(hostCell: 1, pageKB: 1_048_576, shared: 2)])),
        Case(name: "large takes the biggest size that fits", cells: twoSMT, strategy: .spread,
             usage: [0: NUMACellUsage(sharedVCPUs: 1)], memoryMB: 1024, specs: ["hw:mem_page_size": "large"],
             expect: .placed([Placed(hostCell: 1, pageKB: 1_048_576, shared: 2)])),
        Case(name: "any falls back to small pages when huge ones are gone", cells: twoSMT,
             usage: [0: NUMACellUsage(pages: [2048: 1024]), 1: NUMACellUsage(pages: [2048: 1024, 1_048_576: 2])],
             memoryMB: 1024, specs: ["hw:mem_page_size": "any"], expect: .placed([Placed(hostCell: 0, shared: 2)])),

        // Dedicated CPUs.
        Case(name: "dedicated CPUs on a flat host", cells: flat, dedicated: [0, 1, 2, 3], specs: ["hw:cpu_policy": "dedicated"],
             expect: .placed([Placed(hostCell: 0, pinning: [0: 0, 1: 1])])),
        Case(name: "dedicated CPUs skip the pinned ones", cells: flat, dedicated: [0, 1, 2, 3],
             usage: [0: NUMACellUsage(pinnedCPUs: [0, 1])], specs: ["hw:cpu_policy": "dedicated"],
             expect: .placed([Placed(hostCell: 0, pinning: [0: 2, 1: 3])])),
        Case(name: "not enough free dedicated CPUs", cells: flat, dedicated: [0, 1, 2, 3],
             usage: [0: NUMACellUsage(pinnedCPUs: [0, 1])], vcpus: 3, memoryMB: 1023, specs: ["hw:cpu_policy": "dedicated"],
             expect: .refused("has 2 free dedicated CPUs, 3 asked")),
        Case(name: "no dedicated set means no pinning", cells: flat, specs: ["hw:cpu_policy": "dedicated"],
             expect: .refused("has 0 free dedicated CPUs")),
        Case(name: "prefer fills one core's siblings", cells: twoSMT, dedicated: all8, specs: ["hw:cpu_policy": "dedicated"],
             expect: .placed([Placed(hostCell: 0, pinning: [0: 0, 1: 2])])),
        Case(name: "pack prefers the busier cell and its whole core", cells: twoSMT, dedicated: all8,
             usage: [0: NUMACellUsage(pinnedCPUs: [0])], specs: ["hw:cpu_policy": "dedicated"],
             expect: .placed([Placed(hostCell: 0, pinning: [0: 1, 1: 3])])),
        Case(name: "spread prefers the emptier cell", cells: twoSMT, dedicated: all8, strategy: .spread,
             usage: [0: NUMACellUsage(pinnedCPUs: [0])], specs: ["hw:cpu_policy": "dedicated"],
             expect: .placed([Placed(hostCell: 1, pinning: [0: 4, 1: 6])])),
        Case(name: "isolate takes one thread per core and holds the siblings", cells: twoSMT, dedicated: all8,
             specs: ["hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "isolate"],
             expect: .placed([Placed(hostCell: 0, pinning: [0: 0, 1: 1], reserved: [2, 3])])),
        Case(name: "isolate moves on when a cell lacks whole cores", cells: twoSMT, dedicated: all8,
             usage: [0: NUMACellUsage(pinnedCPUs: [0])],
             specs: ["hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "isolate"],
             expect: .placed([Placed(hostCell: 1, pinning: [0: 4, 1: 5], reserved: [6, 7])])),
        Case(name: "isolate with no whole core left", cells: twoSMT, dedicated: all8,
             usage: [0: NUMACellUsage(pinnedCPUs: [0, 1]), 1: NUMACellUsage(pinnedCPUs: [4, 5])],
             specs: ["hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "isolate"],
             expect: .refused("has 0 wholly free cores for 2 isolated vCPUs")),
        Case(name: "require needs SMT", cells: flat, dedicated: [0, 1, 2, 3],
             specs: ["hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "require"], expect: .refused("has no SMT threads")),
        Case(name: "require pins thread siblings", cells: twoSMT, dedicated: all8,
             specs: ["hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "require"],
             expect: .placed([Placed(hostCell: 0, pinning: [0: 0, 1: 2])])),
        Case(name: "require skips cells without enough whole cores", cells: twoSMT, dedicated: all8,
             usage: [0: NUMACellUsage(pinnedCPUs: [1])], vcpus: 3, memoryMB: 1023,
             specs: ["hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "require"],
             expect: .placed([Placed(hostCell: 1, pinning: [0: 4, 1: 6, 2: 5])])),
        Case(name: "dedicated CPUs only from the dedicated set", cells: twoSMT, dedicated: [2, 3, 6, 7],
             specs: ["hw:cpu_policy": "dedicated"], expect: .placed([Placed(hostCell: 0, pinning: [0: 2, 1: 3])])),
        Case(name: "mixed: masked vCPUs pinned, the rest floating", cells: flat, dedicated: [1, 2, 3], vcpus: 4,
             specs: ["hw:cpu_dedicated_mask": "^0"], expect: .placed([Placed(hostCell: 0, pinning: [1: 1, 2: 2, 3: 3], shared: 1)])),
        Case(name: "mixed without enough dedicated CPUs", cells: flat, dedicated: [2, 3], vcpus: 4,
             specs: ["hw:cpu_policy": "mixed", "hw:cpu_dedicated_mask": "1-3"], expect: .refused("has 2 free dedicated CPUs, 3 asked")),
        Case(name: "two pinned cells", cells: twoSMT, dedicated: all8, vcpus: 4, memoryMB: 2048,
             specs: ["hw:numa_nodes": "2", "hw:cpu_policy": "dedicated"],
             expect: .placed([Placed(hostCell: 0, pinning: [0: 0, 1: 2]), Placed(hostCell: 1, pinning: [2: 4, 3: 6])])),

        // PCI NUMA affinity.
        Case(name: "required: the device's cell wins over packing", cells: twoSMT, specs: ["hw:numa_nodes": "1"],
             pci: [PCIAffinityRequest(count: 1, policy: .required, freeByCell: [1: 1])],
             expect: .placed([Placed(hostCell: 1, shared: 2)])),
        Case(name: "required: no free device on any cell", cells: twoSMT, specs: ["hw:numa_nodes": "1"],
             pci: [PCIAffinityRequest(count: 2, policy: .required, freeByCell: [0: 1, 1: 1])],
             expect: .refused("2 PCI device(s) with NUMA policy required")),
        Case(name: "preferred: falls back when the device's cell is full", cells: twoSMT,
             usage: [1: NUMACellUsage(memoryMB: 6144)], memoryMB: 2048, specs: ["hw:numa_nodes": "1"],
             pci: [PCIAffinityRequest(count: 1, policy: .preferred, freeByCell: [1: 1])],
             expect: .placed([Placed(hostCell: 0, shared: 2)])),
        Case(name: "legacy: a device without a cell goes anywhere", cells: twoSMT, specs: ["hw:numa_nodes": "1"],
             pci: [PCIAffinityRequest(count: 1, policy: .legacy, freeByCell: [nil: 1])],
             expect: .placed([Placed(hostCell: 0, shared: 2)])),
        Case(name: "legacy: a device with a cell binds", cells: twoSMT, specs: ["hw:numa_nodes": "1"],
             pci: [PCIAffinityRequest(count: 1, policy: .legacy, freeByCell: [1: 1])],
             expect: .placed([Placed(hostCell: 1, shared: 2)])),
        Case(name: "socket: any cell of the device's socket", cells: four, specs: ["hw:numa_nodes": "1"],
             pci: [PCIAffinityRequest(count: 1, policy: .socket, freeByCell: [3: 1])],
             expect: .placed([Placed(hostCell: 2, shared: 2)])),
        Case(name: "spread over four cells avoids the busy one", cells: four, strategy: .spread,
             usage: [0: NUMACellUsage(sharedVCPUs: 2)], specs: ["hw:numa_nodes": "2"],
             expect: .placed([Placed(hostCell: 1, shared: 1), Placed(hostCell: 2, shared: 1)])),
    ]

    @Test(arguments: cases)
    func fit(_ c: Case) throws {
        let flavor = Flavor(name: "f", vcpus: c.vcpus, memoryMB: c.memoryMB, extraSpecs: c.specs)
        let request: NUMARequest?
        do {
            request = try NUMARequest.from(flavor)
        } catch {
            guard case .invalid(let text) = c.expect else {
                Issue.record("unexpected refusal of the flavor: \(error)")
                return
            }
            #expect(error.description.contains(text), "\(error)")
            return
        }
        guard let request else {
            guard case .noTopology = c.expect else { Issue.record("the flavor should ask for a NUMA topology"); return }
            return
        }
        let fitter = NUMAFitter(cells: c.cells, dedicatedCPUs: c.dedicated, sharedCPUs: c.shared,
                                cpuAllocationRatio: c.cpuRatio, ramAllocationRatio: c.ramRatio, strategy: c.strategy)
        switch (fitter.fit(request, usage: c.usage, pci: c.pci), c.expect) {
        case (.success(let placement), .placed(let expected)):
            let got = placement.cells.map {
                Placed(hostCell: $0.hostCell, pinning: $0.pinning, reserved: $0.reservedCPUs, pageKB: $0.pageSizeKB,
                       shared: $0.sharedVCPUs)
            }
            #expect(got == expected)
            // Whatever was placed takes nothing already taken and only dedicated CPUs.
            for (cell, usage) in placement.usage {
                #expect(usage.pinnedCPUs.isSubset(of: c.dedicated))
                #expect(usage.pinnedCPUs.isDisjoint(with: c.usage[cell]?.pinnedCPUs ?? []))
            }
        case (.failure(let error), .refused(let text)):
            #expect(error.description.contains(text), "\(error)")
        case (let result, _):
            Issue.record("expected \(c.expect), got \(result)")
        }
    }

    @Test func cpuListsReadAndWrite() {
        #expect(CPUList.parse("0-3,8,10-11")?.include == [0, 1, 2, 3, 8, 10, 11])
        #expect(CPUList.parse("^2", allowExclusions: true)?.exclude == [2])
        #expect(CPUList.parse("^2") == nil)
        #expect(CPUList.parse("3-1") == nil)
        #expect(CPUList.parse("a") == nil)
        #expect(CPUList.format([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8")
    }

    @Test func topologiesAreValidated() {
        #expect(HostTopology(cells: Self.twoSMT).problem == nil)
        #expect(HostTopology(cells: [NUMACell(id: 0, cpus: [0], memoryMB: 1024), NUMACell(id: 1, cpus: [0], memoryMB: 1024)])
            .problem?.contains("in two cells") == true)
        #expect(HostTopology(cells: [NUMACell(id: 0, cpus: [0, 1], siblings: [[0, 5]], memoryMB: 1024)])
            .problem?.contains("thread siblings") == true)
        #expect(HostTopology(cells: [NUMACell(id: 0, cpus: [0], memoryMB: 1024, pages: [1_048_576: 2])])
            .problem?.contains("huge pages") == true)
        let vf = PCIDevice(address: "0000:3b:02.0", vendorID: "8086", productID: "154c", kind: .vf, parentAddress: "0000:3b:00.0")
        #expect(HostTopology(cells: Self.flat, devices: [vf]).problem?.contains("no physical function") == true)
        let pf = PCIDevice(address: "0000:3b:00.0", vendorID: "8086", productID: "1572", numaNode: 0, kind: .pf)
        #expect(HostTopology(cells: Self.flat, devices: [pf, vf]).problem == nil)
        #expect(HostTopology(cells: Self.flat, devices: [PCIDevice(address: "3b:00.0", vendorID: "8086", productID: "1")])
            .problem?.contains("malformed") == true)
        #expect(HostTopology(cells: Self.flat, devices: [PCIDevice(address: "0000:3b:00.0", vendorID: "8086", productID: "1", numaNode: 4)])
            .problem?.contains("NUMA cell 4") == true)
    }
}
