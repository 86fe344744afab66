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
    @Test func theCLIReportsThisMachine() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("allot")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["host", "--json", "--instances-path", FileManager.default.temporaryDirectory.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let inventories = try #require(object["inventories"] as? [String: [String: Int]])
        #expect(inventories["VCPU"]?["total"] == ProcessInfo.processInfo.activeProcessorCount)
        let memoryMB = Int(ProcessInfo.processInfo.physicalMemory >> 20)
        #expect(abs((inventories["MEMORY_MB"]?["total"] ?? 0) - memoryMB) <= 1)
        #expect((inventories["DISK_GB"]?["total"] ?? 0) > 0)
    }
}
