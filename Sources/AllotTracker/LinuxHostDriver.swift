import Foundation

/// Reads the real resources of the Linux machine it runs on: online CPUs from
/// `/sys/devices/system/cpu/online` (or `/proc/cpuinfo`), memory from `/proc/meminfo`, NUMA cells from
/// `/sys/devices/system/node`, and the size of the instances file system from `statvfs`.
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
        let inventory = HostInventory(
            vcpus: try onlineCPUs().count, memoryMB: try memoryMB(), diskGB: try fileSystemBytes(instancesPath) >> 30,
            cells: try numaCells())
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
            return HostInventory.Cell(id: id, cpus: cpus, memoryMB: kilobytes / 1024)
        }
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
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds.last!), low <= high,
                low >= 0
            else {
                throw HostDriverError.malformed(path: path, reason: "bad CPU list entry '\(part)'")
            }
            cpus.append(contentsOf: low...high)
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
