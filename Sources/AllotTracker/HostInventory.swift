public import AllotCore

/// What a host driver found on one compute node: the raw totals before allocation ratios and reservations.
public struct HostInventory: Sendable, Equatable {
    /// One NUMA cell: its logical CPUs (with thread siblings), memory and huge pages.
    public typealias Cell = NUMACell

    /// Logical CPUs online.
    public var vcpus: Int
    public var memoryMB: Int
    /// Size of the file system holding instance disks, in whole GiB.
    public var diskGB: Int
    /// NUMA cells, in id order (empty when the kernel exposes none).
    public var cells: [Cell]
    /// PCI devices (empty when the driver reports none).
    public var devices: [PCIDevice]

    public init(vcpus: Int, memoryMB: Int, diskGB: Int, cells: [Cell] = [], devices: [PCIDevice] = []) {
        self.vcpus = vcpus
        self.memoryMB = memoryMB
        self.diskGB = diskGB
        self.cells = cells
        self.devices = devices
    }

    /// Cells and devices for the ledger; `nil` when the driver reported neither.
    public var topology: HostTopology? {
        cells.isEmpty && devices.isEmpty ? nil : HostTopology(cells: cells, devices: devices)
    }

    /// The Placement inventories for these totals (VCPU, MEMORY_MB, DISK_GB), with default rules.
    public var inventories: [String: Inventory] {
        var result = [
            ResourceClass.vcpu.name: Inventory(total: vcpus, maxUnit: vcpus),
            ResourceClass.memoryMB.name: Inventory(total: memoryMB, maxUnit: memoryMB),
        ]
        if diskGB > 0 { result[ResourceClass.diskGB.name] = Inventory(total: diskGB, maxUnit: diskGB) }
        return result
    }

    /// Why these totals cannot describe a real node, or `nil` when they can.
    public var problem: HostDriverError? {
        if vcpus < 1 { return .invalid(field: "vcpus", reason: "no online CPU found (\(vcpus))") }
        if memoryMB < 1 { return .invalid(field: "memory_mb", reason: "no memory found (\(memoryMB) MiB)") }
        if diskGB < 0 { return .invalid(field: "disk_gb", reason: "negative disk size (\(diskGB) GiB)") }
        let cellCPUs = cells.flatMap(\.cpus)
        if Set(cellCPUs).count != cellCPUs.count {
            return .invalid(field: "numa_cells", reason: "a CPU belongs to more than one NUMA cell")
        }
        if let problem = topology?.problem { return .invalid(field: "topology", reason: problem) }
        return nil
    }
}

/// A host driver could not read or make sense of the machine.
public enum HostDriverError: Error, Equatable, CustomStringConvertible {
    /// A file the driver needs is missing or unreadable.
    case unreadable(path: String)
    /// A file held something the driver cannot parse.
    case malformed(path: String, reason: String)
    /// The values read are not a usable node.
    case invalid(field: String, reason: String)
    /// The hypervisor could not be asked (libvirt down or refusing the connection).
    case unavailable(reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path): "cannot read \(path)"
        case .malformed(let path, let reason): "cannot parse \(path): \(reason)"
        case .invalid(let field, let reason): "invalid \(field): \(reason)"
        case .unavailable(let reason): "unavailable: \(reason)"
        }
    }
}

extension PCIDevice {
    /// Devices as a host reports them, with what does not hold together dropped rather than the node: a NUMA cell
    /// the host does not list is forgotten, and a VF whose PF is not among the devices becomes a plain device.
    public static func reconciled(_ devices: [PCIDevice], cells: Set<Int>) -> [PCIDevice] {
        let pfs = Set(devices.filter { $0.kind == .pf }.map(\.address))
        return devices.map { device in
            var device = device
            if let node = device.numaNode, !cells.contains(node) { device.numaNode = nil }
            if device.kind == .vf, !pfs.contains(device.parentAddress ?? "") {
                device.kind = .pci
                device.parentAddress = nil
            }
            return device
        }.sorted { $0.address < $1.address }
    }
}
