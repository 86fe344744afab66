import AllotCore
import Foundation

/// Reads the real resources of the Linux machine it runs on: online CPUs from
/// `/sys/devices/system/cpu/online` (or `/proc/cpuinfo`), memory from `/proc/meminfo`, NUMA cells from
/// `/sys/devices/system/node` (CPUs, memory, huge pages; thread siblings and sockets from
/// `/sys/devices/system/cpu/cpuN/topology`), PCI devices from `/sys/bus/pci/devices`, and the size of the
/// instances file system from `statvfs`.
///
/// `root` prefixes every path, so tests can point it at a directory shaped like `/proc` and `/sys` of a machine
/// this one is not.
public struct LinuxHostDriver: Sendable {
    public var root: String
    public var instancesPath: String
    /// Bytes of the file system holding `path` (injected so tests need no real file system of a given size).
    public var fileSystemBytes: @Sendable (String) throws -> Int

    public init(root: String = "", instancesPath: String, fileSystemBytes: (@Sendable (String) throws -> Int)? = nil) {
        self.root = root
        self.instancesPath = instancesPath
        self.fileSystemBytes = fileSystemBytes ?? Self.statvfsBytes
    }

    /// Reads and validates the host's totals.
    /// - Throws: ``HostDriverError`` when a file is missing or malformed, or the totals are not a usable node.
    public func discover() throws -> HostInventory {
        let cells = try numaCells()
        let inventory = HostInventory(
            vcpus: try onlineCPUs().count, memoryMB: try memoryMB(), diskGB: try fileSystemBytes(instancesPath) >> 30,
            cells: cells, devices: try pciDevices(cells: Set(cells.map(\.id))))
        if let problem = inventory.problem { throw problem }
        return inventory
    }

    func read(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: root + path, encoding: .utf8) else {
            throw HostDriverError.unreadable(path: root + path)
        }
        return text
    }

    /// The online logical CPUs.
    func onlineCPUs() throws -> [Int] {
        if let list = try? read("/sys/devices/system/cpu/online") {
            return try Self.parseCPUList(list, path: root + "/sys/devices/system/cpu/online")
        }
        let cpuinfo = try read("/proc/cpuinfo")
        return cpuinfo.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "processor" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }
    }

    /// `MemTotal` of `/proc/meminfo`, in MiB.
    func memoryMB() throws -> Int {
        let path = "/proc/meminfo"
        guard let kilobytes = Self.memTotalKB(try read(path)) else {
            throw HostDriverError.malformed(path: root + path, reason: "no MemTotal line")
        }
        return kilobytes / 1024
    }

    /// The NUMA cells under `/sys/devices/system/node` (none when the directory is absent).
    func numaCells() throws -> [HostInventory.Cell] {
        let directory = root + "/sys/devices/system/node"
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw HostDriverError.unreadable(path: directory)
        }
        let ids = entries.compactMap { name -> Int? in
            guard name.hasPrefix("node") else { return nil }
            return Int(name.dropFirst(4))
        }.sorted()
        return try ids.map { id in
            let base = "/sys/devices/system/node/node\(id)"
            let cpus = try Self.parseCPUList(try read(base + "/cpulist"), path: root + base + "/cpulist")
            guard let kilobytes = Self.memTotalKB(try read(base + "/meminfo")) else {
                throw HostDriverError.malformed(path: root + base + "/meminfo", reason: "no MemTotal line")
            }
            // Thread siblings per core (a CPU whose topology is not exposed is a core of its own), restricted to
            // this cell's CPUs.
            let cellCPUs = Set(cpus)
            var cores: [[Int]] = []
            var placed = Set<Int>()
            for cpu in cpus where !placed.contains(cpu) {
                let listPath = "/sys/devices/system/cpu/cpu\(cpu)/topology/thread_siblings_list"
                var core = [cpu]
                if let text = try? read(listPath) {
                    core = try Self.parseCPUList(text, path: root + listPath).filter { cellCPUs.contains($0) && !placed.contains($0) }
                    if !core.contains(cpu) { core.append(cpu) }
                }
                placed.formUnion(core)
                cores.append(core.sorted())
            }
            let socket = cpus.first.flatMap { cpu in
                (try? read("/sys/devices/system/cpu/cpu\(cpu)/topology/physical_package_id")).flatMap {
                    Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
                }
            }
            var pages: [Int: Int] = [:]
            let hugeDirectory = root + base + "/hugepages"
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: hugeDirectory)) ?? [] {
                // hugepages-2048kB/nr_hugepages
                guard entry.hasPrefix("hugepages-"), entry.hasSuffix("kB"),
                    let size = Int(entry.dropFirst("hugepages-".count).dropLast(2)), size > 0
                else { continue }
                let countPath = base + "/hugepages/\(entry)/nr_hugepages"
                guard let count = Int(try read(countPath).trimmingCharacters(in: .whitespacesAndNewlines)), count >= 0 else {
                    throw HostDriverError.malformed(path: root + countPath, reason: "not a page count")
                }
                if count > 0 { pages[size] = count }
            }
            return NUMACell(id: id, cpus: cpus, siblings: cores, memoryMB: kilobytes / 1024, pages: pages, socket: socket)
        }
    }

    /// The PCI devices under `/sys/bus/pci/devices` (none when the directory is absent): ids, class, NUMA cell
    /// (none when the kernel says -1 or names a cell not in `cells`), driver, and SR-IOV roles (a device with a `physfn` link is a VF of that
    /// function; one with `sriov_totalvfs` above 0 is a PF).
    func pciDevices(cells: Set<Int>) throws -> [PCIDevice] {
        let directory = root + "/sys/bus/pci/devices"
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw HostDriverError.unreadable(path: directory)
        }
        var devices: [PCIDevice] = []
        for address in entries.sorted() where PCIDevice.isAddress(address.lowercased()) {
            let base = "/sys/bus/pci/devices/\(address)"
            func field(_ name: String) -> String? {
                (try? read(base + "/" + name))?.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            func hex(_ name: String, digits: Int) throws -> String {
                guard var text = field(name)?.lowercased() else { throw HostDriverError.unreadable(path: root + base + "/" + name) }
                if text.hasPrefix("0x") { text.removeFirst(2) }
                guard text.count == digits, text.allSatisfy(\.isHexDigit) else {
                    throw HostDriverError.malformed(path: root + base + "/" + name, reason: "'\(text)' is not \(digits) hex digits")
                }
                return text
            }
            let link = { (name: String) -> String? in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/\(address)/\(name)"))
                    .map { URL(fileURLWithPath: $0).lastPathComponent }
            }
            let numa = field("numa_node").flatMap(Int.init).flatMap { $0 >= 0 ? $0 : nil }
            var kind = PCIDeviceKind.pci
            let parent = link("physfn")
            if parent != nil {
                kind = .vf
            } else if let total = field("sriov_totalvfs").flatMap(Int.init), total > 0 {
                kind = .pf
            }
            devices.append(PCIDevice(
                address: address, vendorID: try hex("vendor", digits: 4), productID: try hex("device", digits: 4),
                classCode: try hex("class", digits: 6), numaNode: numa, kind: kind, parentAddress: parent,
                driver: link("driver")))
        }
        // A cell the kernel names but does not list, or a VF whose PF is hidden, is not the device's fault: drop
        // the link rather than the node.
        return PCIDevice.reconciled(devices, cells: cells)
    }

    /// The kB figure of the first `MemTotal:` line (`/proc/meminfo` or a node's `Node N MemTotal:` line).
    static func memTotalKB(_ text: String) -> Int? {
        for line in text.split(separator: "\n") where line.contains("MemTotal:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let index = fields.firstIndex(where: { $0.hasSuffix("MemTotal:") }), index + 1 < fields.count else {
                return nil
            }
            return Int(fields[index + 1])
        }
        return nil
    }

    /// Parses a kernel CPU list such as `0-3,8,10-11`.
    static func parseCPUList(_ text: String, path: String) throws -> [Int] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        var cpus: [Int] = []
        for part in trimmed.split(separator: ",") {
            guard let range = CPUList.range(part) else {
                throw HostDriverError.malformed(path: path, reason: "bad CPU list entry '\(part)'")
            }
            cpus.append(contentsOf: range)
        }
        return cpus
    }

    /// Total bytes of the file system holding `path`.
    @Sendable static func statvfsBytes(_ path: String) throws -> Int {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { throw HostDriverError.unreadable(path: path) }
        return Int(stats.f_blocks) * Int(stats.f_frsize)
    }
}
