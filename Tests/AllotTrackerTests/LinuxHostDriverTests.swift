import AllotCore
import AllotTracker
import Foundation
import Testing

/// The Linux host driver on fixture trees shaped like `/proc` and `/sys`, and on this machine through the CLI.
@Suite struct LinuxHostDriverTests {
    /// Writes `files` (path → contents) under a fresh directory and returns it.
    static func fixture(_ files: [String: String]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("allot-host-\(UUID().uuidString)").path
        for (path, contents) in files {
            let url = URL(fileURLWithPath: root + path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try contents.write(to: url, atomically: true, encoding: .utf8)
        }
        return root
    }

    static let meminfo = "MemTotal:       65843176 kB\nMemFree:        1000000 kB\n"

    @Test func readsCPUsMemoryDiskAndNUMACells() throws {
        let root = try Self.fixture([
            "/sys/devices/system/cpu/online": "0-5,8-9\n",
            "/proc/meminfo": Self.meminfo,
            "/sys/devices/system/node/node0/cpulist": "0-5\n",
            "/sys/devices/system/node/node0/meminfo": "Node 0 MemTotal:       32921588 kB\nNode 0 MemFree: 1 kB\n",
            "/sys/devices/system/node/node1/cpulist": "8-9\n",
            "/sys/devices/system/node/node1/meminfo": "Node 1 MemTotal:       32921588 kB\n",
            "/sys/devices/system/node/possible": "0-1\n",
        ])
        let driver = LinuxHostDriver(root: root, instancesPath: "/var/lib/instances") { _ in 500 << 30 }
        let inventory = try driver.discover()
        #expect(inventory.vcpus == 8)
        #expect(inventory.memoryMB == 64299)
        #expect(inventory.diskGB == 500)
        #expect(inventory.cells == [
            .init(id: 0, cpus: [0, 1, 2, 3, 4, 5], memoryMB: 32149), .init(id: 1, cpus: [8, 9], memoryMB: 32149),
        ])
        #expect(inventory.inventories["VCPU"]?.total == 8)
        #expect(inventory.inventories["MEMORY_MB"]?.total == 64299)
        #expect(inventory.inventories["DISK_GB"]?.total == 500)
    }

    /// Thread siblings, sockets and huge pages per cell; PCI devices with their ids, cells and SR-IOV roles (a PF
    /// with `sriov_totalvfs`, its VFs through `physfn`); a device on a cell the host does not list keeps no cell.
    @Test func readsTopologyAndPCIDevices() throws {
        var files = [
            "/sys/devices/system/cpu/online": "0-7\n",
            "/proc/meminfo": Self.meminfo,
            "/sys/devices/system/node/node0/cpulist": "0-3\n",
            "/sys/devices/system/node/node0/meminfo": "Node 0 MemTotal:       16777216 kB\n",
            "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages": "512\n",
            "/sys/devices/system/node/node0/hugepages/hugepages-1048576kB/nr_hugepages": "0\n",
            "/sys/devices/system/node/node1/cpulist": "4-7\n",
            "/sys/devices/system/node/node1/meminfo": "Node 1 MemTotal:       16777216 kB\n",
            "/sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages": "4\n",
        ]
        for cpu in 0..<8 {
            files["/sys/devices/system/cpu/cpu\(cpu)/topology/thread_siblings_list"] = "\(cpu % 2 == 0 ? cpu : cpu - 1),\(cpu % 2 == 0 ? cpu + 1 : cpu)\n"
            files["/sys/devices/system/cpu/cpu\(cpu)/topology/physical_package_id"] = "\(cpu / 4)\n"
        }
        let pci = "/sys/bus/pci/devices/"
        for (address, vendor, device, cls, numa, vfs) in [
            ("0000:3b:00.0", "0x8086", "0x1572", "0x020000", "0", "8"), ("0000:3b:02.0", "0x8086", "0x154c", "0x020000", "0", "0"),
            ("0000:3b:02.1", "0x8086", "0x154c", "0x020000", "0", "0"), ("0000:af:00.0", "0x10de", "0x1db4", "0x030200", "1", ""),
            ("0000:00:1f.2", "0x8086", "0xa182", "0x010601", "-1", ""), ("0000:d8:00.0", "0x15b3", "0x1017", "0x020000", "5", ""),
        ] {
            files[pci + address + "/vendor"] = vendor + "\n"
            files[pci + address + "/device"] = device + "\n"
            files[pci + address + "/class"] = cls + "\n"
            files[pci + address + "/numa_node"] = numa + "\n"
            if !vfs.isEmpty { files[pci + address + "/sriov_totalvfs"] = vfs + "\n" }
        }
        let root = try Self.fixture(files)
        for vf in ["0000:3b:02.0", "0000:3b:02.1"] {
            try FileManager.default.createSymbolicLink(atPath: root + pci + vf + "/physfn", withDestinationPath: "../0000:3b:00.0")
            try FileManager.default.createSymbolicLink(atPath: root + pci + vf + "/driver", withDestinationPath: "../../../bus/pci/drivers/iavf")
        }
        try FileManager.default.createSymbolicLink(atPath: root + pci + "0000:3b:00.0/driver", withDestinationPath: "../../../bus/pci/drivers/i40e")
        let inventory = try LinuxHostDriver(root: root, instancesPath: "/") { _ in 100 << 30 }.discover()
        #expect(inventory.cells == [
            NUMACell(id: 0, cpus: [0, 1, 2, 3], siblings: [[0, 1], [2, 3]], memoryMB: 16384, pages: [2048: 512], socket: 0),
            NUMACell(id: 1, cpus: [4, 5, 6, 7], siblings: [[4, 5], [6, 7]], memoryMB: 16384, pages: [1_048_576: 4], socket: 1),
        ])
        #expect(inventory.devices == [
            PCIDevice(address: "0000:00:1f.2", vendorID: "8086", productID: "a182", classCode: "010601"),
            PCIDevice(address: "0000:3b:00.0", vendorID: "8086", productID: "1572", classCode: "020000", numaNode: 0, kind: .pf,
                      driver: "i40e"),
            PCIDevice(address: "0000:3b:02.0", vendorID: "8086", productID: "154c", classCode: "020000", numaNode: 0, kind: .vf,
                      parentAddress: "0000:3b:00.0", driver: "iavf"),
            PCIDevice(address: "0000:3b:02.1", vendorID: "8086", productID: "154c", classCode: "020000", numaNode: 0, kind: .vf,
                      parentAddress: "0000:3b:00.0", driver: "iavf"),
            PCIDevice(address: "0000:af:00.0", vendorID: "10de", productID: "1db4", classCode: "030200", numaNode: 1),
            PCIDevice(address: "0000:d8:00.0", vendorID: "15b3", productID: "1017", classCode: "020000"),
        ])
        #expect(inventory.topology?.problem == nil)
        // A malformed id is a clear error for the node.
        try "0x80861\n".write(toFile: root + pci + "0000:af:00.0/vendor", atomically: true, encoding: .utf8)
        #expect(throws: HostDriverError.malformed(path: root + pci + "0000:af:00.0/vendor", reason: "'80861' is not 4 hex digits")) {
            try LinuxHostDriver(root: root, instancesPath: "/") { _ in 100 << 30 }.discover()
        }
    }

    /// The fake driver's node files describe topologies too; a nonsensical one makes that node invalid.
    @Test func nodeFilesDescribeTopologies() throws {
        let file = Data("""
            {"nodes": [
              {"hostname": "good", "vcpus": 4, "memory_mb": 8192, "disk_gb": 10,
               "numa_cells": [{"id": 0, "cpus": [0, 1], "siblings": [[0, 1]], "memory_mb": 4096, "pages": {"2048": 256}},
                              {"id": 1, "cpus": [2, 3], "memory_mb": 4096}],
               "pci_devices": [{"address": "0000:81:00.0", "vendor_id": "10DE", "product_id": "1db4", "numa_node": 1}]},
              {"hostname": "bad", "vcpus": 4, "memory_mb": 8192,
               "numa_cells": [{"id": 0, "cpus": [0, 1], "memory_mb": 4096}, {"id": 1, "cpus": [1, 2], "memory_mb": 4096}]},
              {"hostname": "ugly", "vcpus": 4, "memory_mb": 8192, "pci_devices": [{"address": "0000:81:00.0"}]}
            ]}
            """.utf8)
        let nodes = try FileHostDriver.parse(file, kind: .fake, path: "nodes.json")
        guard case .success(.host(let good)) = nodes[0].resources else { Issue.record("good node refused"); return }
        #expect(good.cells[0].pages == [2048: 256] && good.cells[1].siblings == [[2], [3]])
        #expect(good.devices == [PCIDevice(address: "0000:81:00.0", vendorID: "10de", productID: "1db4", numaNode: 1)])
        #expect(throws: HostDriverError.invalid(field: "numa_cells", reason: "a CPU belongs to more than one NUMA cell")) {
            try nodes[1].resources.get()
        }
        #expect(throws: HostDriverError.self) { try nodes[2].resources.get() }
        if case .failure(let error) = nodes[2].resources { #expect(error.description.contains("vendor_id")) }
        // Bare-metal machines describe theirs for the record.
        let farm = Data("""
            {"nodes": [
              {"uuid": "\(UUID().uuidString)", "name": "bm-1", "resource_class": "gold",
               "numa_cells": [{"id": 0, "cpus": [0, 1], "memory_mb": 65536}],
               "pci_devices": [{"address": "0000:17:00.0", "vendor_id": "15b3", "product_id": "1017", "numa_node": 0}]},
              {"uuid": "\(UUID().uuidString)", "name": "bm-2", "resource_class": "gold", "numa_cells": 7}
            ]}
            """.utf8)
        let machines = try FileHostDriver.parse(farm, kind: .baremetal, path: "farm.json")
        #expect(machines[0].topology?.cells.first?.memoryMB == 65536 && machines[0].topology?.devices.count == 1)
        #expect(throws: HostDriverError.invalid(field: "numa_cells", reason: "must be a list")) { try machines[1].resources.get() }
    }

    @Test func fallsBackToCpuinfoWithoutTheOnlineList() throws {
        let root = try Self.fixture([
            "/proc/cpuinfo": "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\nmodel name\t: x\n",
            "/proc/meminfo": Self.meminfo,
        ])
        let inventory = try LinuxHostDriver(root: root, instancesPath: "/") { _ in 10 << 30 }.discover()
        #expect(inventory.vcpus == 2)
        #expect(inventory.cells.isEmpty)
    }

    @Test func nonsenseIsAClearError() throws {
        let badList = try Self.fixture(["/sys/devices/system/cpu/online": "0-x\n", "/proc/meminfo": Self.meminfo])
        #expect(throws: HostDriverError.malformed(
            path: badList + "/sys/devices/system/cpu/online", reason: "bad CPU list entry '0-x'")) {
            try LinuxHostDriver(root: badList, instancesPath: "/") { _ in 0 }.discover()
        }
        let noMemory = try Self.fixture(["/sys/devices/system/cpu/online": "0\n", "/proc/meminfo": "MemFree: 1 kB\n"])
        #expect(throws: HostDriverError.malformed(path: noMemory + "/proc/meminfo", reason: "no MemTotal line")) {
            try LinuxHostDriver(root: noMemory, instancesPath: "/") { _ in 0 }.discover()
        }
        let noCPU = try Self.fixture(["/sys/devices/system/cpu/online": "\n", "/proc/meminfo": Self.meminfo])
        #expect(throws: HostDriverError.invalid(field: "vcpus", reason: "no online CPU found (0)")) {
            try LinuxHostDriver(root: noCPU, instancesPath: "/") { _ in 0 }.discover()
        }
        let missing = try Self.fixture([:])
        #expect(throws: HostDriverError.unreadable(path: missing + "/proc/cpuinfo")) {
            try LinuxHostDriver(root: missing, instancesPath: "/") { _ in 0 }.discover()
        }
    }

    /// `allot host --json` on this machine reports what the kernel reports.
    @Test func theCLIReportsThisMachine() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("allot")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["host", "--json", "--instances-path", FileManager.default.temporaryDirectory.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        // Not waitUntilExit(): it spins a cooperative thread until Foundation notices the exit (see ServerProcess).
        while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        #expect(process.terminationStatus == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let inventories = try #require(object["inventories"] as? [String: [String: Int]])
        #expect(inventories["VCPU"]?["total"] == ProcessInfo.processInfo.activeProcessorCount)
        let memoryMB = Int(ProcessInfo.processInfo.physicalMemory >> 20)
        #expect(abs((inventories["MEMORY_MB"]?["total"] ?? 0) - memoryMB) <= 1)
        #expect((inventories["DISK_GB"]?["total"] ?? 0) > 0)
        // Every NUMA cell and PCI device the kernel lists.
        let fm = FileManager.default
        let cells = ((try? fm.contentsOfDirectory(atPath: "/sys/devices/system/node")) ?? [])
            .filter { $0.hasPrefix("node") && Int($0.dropFirst(4)) != nil }
        let devices = (try? fm.contentsOfDirectory(atPath: "/sys/bus/pci/devices")) ?? []
        let topology = object["topology"] as? [String: Any]
        #expect((topology?["numa_cells"] as? [Any])?.count ?? 0 == cells.count)
        #expect((topology?["pci_devices"] as? [Any])?.count ?? 0 == devices.count)
    }
}
