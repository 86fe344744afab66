public import AllotCore
import Foundation

/// The node a libvirt hypervisor reports: CPUs and memory (`virNodeGetInfo`), NUMA cells and host CPU features
/// (`virConnectGetCapabilities`), PCI node devices, the active guests with their memory, and lifecycle events as
/// ``changes``. DISK_GB is the size of the file system holding `instancesPath`, as the Linux driver reads it.
public final class LibvirtHostDriver: HostDriver {
    public let connection: LibvirtConnection
    public let instancesPath: String
    public let fileSystemBytes: @Sendable (String) throws -> Int
    public let changes: AsyncStream<Void>?

    public var name: String { "libvirt" }

    /// - Parameters:
    ///   - uri: `qemu:///system`, `test:///default`, …
    ///   - events: whether to register for lifecycle events (``changes``).
    public init(
        uri: String, instancesPath: String, events: Bool = true, fileSystemBytes: (@Sendable (String) throws -> Int)? = nil
    ) {
        var continuation: AsyncStream<Void>.Continuation?
        if events {
            let (stream, sink) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            changes = stream
            continuation = sink
        } else {
            changes = nil
        }
        connection = LibvirtConnection(uri: uri, changes: continuation)
        self.instancesPath = instancesPath
        self.fileSystemBytes = fileSystemBytes ?? LinuxHostDriver.statvfsBytes
    }

    /// The host as libvirt describes it, plus what the driver made of it.
    public struct Report: Sendable {
        public var node: DriverNode
        public var capabilities: LibvirtCapabilities?
        public var guests: [LibvirtSnapshot.Guest]
        /// Why PCI devices could not be listed, when they could not (the node is reported without them).
        public var deviceProblem: String?
        /// Why the host CPU's model could not be expanded into features (traits then come from the listed ones).
        public var cpuExpansionProblem: String?
    }

    /// Reads libvirt now.
    /// - Throws: ``HostDriverError/unavailable(reason:)`` when libvirt cannot be reached at all.
    public func report() async throws -> Report {
        let snapshot: LibvirtSnapshot
        do {
            snapshot = try await connection.snapshot()
        } catch {
            throw HostDriverError.unavailable(reason: "libvirt \(connection.uri): \(error)")
        }
        return Self.report(snapshot, diskGB: { try self.fileSystemBytes(self.instancesPath) >> 30 })
    }

    /// Makes a node out of libvirt's answers; a nonsense answer becomes a failed node, never a crash.
    public static func report(_ snapshot: LibvirtSnapshot, diskGB: () throws -> Int) -> Report {
        var running = Set<String>()
        var guestMemory: [String: Int] = [:]
        for guest in snapshot.guests {
            running.insert(guest.uuid)
            guestMemory[guest.uuid] = guest.memoryKiB / 1024
        }
        var capabilities: LibvirtCapabilities?
        var traits = Set<String>()
        var deviceProblem = snapshot.deviceListingProblem
        let resources: Result<NodeResources, HostDriverError>
        do {
            let caps: LibvirtCapabilities
            do throws(LibvirtXMLError) {
                caps = try LibvirtCapabilities.parse(snapshot.capabilities)
            } catch {
                throw HostDriverError.malformed(path: "libvirt capabilities", reason: error.reason)
            }
            var described = caps
            if let expanded = snapshot.expandedCPU {
                do throws(LibvirtXMLError) {
                    described.features = try LibvirtCapabilities.cpuFeatures(expanded)
                } catch {
                    throw HostDriverError.malformed(path: "libvirt baseline CPU", reason: error.reason)
                }
            }
            capabilities = described
            traits = LibvirtCPUTraits.traits(features: described.features)
            let cellCPUs = caps.cells.reduce(0) { $0 + $1.cpus.count }
            if !caps.cells.isEmpty, cellCPUs != snapshot.cpus {
                throw HostDriverError.invalid(
                    field: "numa_cells", reason: "the NUMA cells hold \(cellCPUs) CPUs but the node has \(snapshot.cpus)")
            }
            var devices: [PCIDevice] = []
            for xml in snapshot.devices ?? [] {
                do throws(LibvirtXMLError) {
                    if let device = try LibvirtNodeDevice.parse(xml) { devices.append(device) }
                } catch {
                    throw HostDriverError.malformed(path: "libvirt node device", reason: error.reason)
                }
            }
            let disk = try diskGB()
            let inventory = HostInventory(
                vcpus: snapshot.cpus, memoryMB: snapshot.memoryKiB / 1024, diskGB: disk, cells: caps.cells,
                devices: PCIDevice.reconciled(devices, cells: Set(caps.cells.map(\.id))))
            if let problem = inventory.problem { throw problem }
            resources = .success(.host(inventory))
        } catch let error as HostDriverError {
            resources = .failure(error)
        } catch {
            resources = .failure(.invalid(field: "libvirt", reason: "\(error)"))
        }
        if snapshot.devices == nil, deviceProblem == nil { deviceProblem = "node devices not listed" }
        let node = DriverNode(
            hostname: snapshot.hostname, resources: resources, traits: traits, running: running, guestMemoryMB: guestMemory)
        return Report(
            node: node, capabilities: capabilities, guests: snapshot.guests, deviceProblem: deviceProblem,
            cpuExpansionProblem: snapshot.cpuExpansionProblem)
    }

    public func nodes() async throws -> [DriverNode] {
        [try await report().node]
    }

    /// Host CPU metrics from `virNodeGetCPUStats` (the names the Linux driver uses, times in ns since boot;
    /// `cpu.percent` is the busy share since boot) and `cpu.frequency` (MHz); empty when libvirt cannot tell.
    public func metrics() async -> [String: Double] {
        guard let stats = try? await connection.cpuStats() else { return [:] }
        return Self.metrics(stats)
    }

    static func metrics(_ stats: [String: Double]) -> [String: Double] {
        var result: [String: Double] = [:]
        for (field, key) in [("user", "cpu.user.time"), ("kernel", "cpu.kernel.time"), ("idle", "cpu.idle.time"),
                             ("iowait", "cpu.iowait.time"), ("mhz", "cpu.frequency")] {
            if let value = stats[field] { result[key] = value }
        }
        let busy = (stats["user"] ?? 0) + (stats["kernel"] ?? 0)
        let idle = (stats["idle"] ?? 0) + (stats["iowait"] ?? 0)
        if busy + idle > 0 { result["cpu.percent"] = busy / (busy + idle) * 100 }
        return result
    }
}
