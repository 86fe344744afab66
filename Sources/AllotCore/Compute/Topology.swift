/// A host's NUMA cells and PCI devices, as its driver reports them.
/// Its JSON form (API, ledger, node files) uses `numa_cells` and `pci_devices`.
public struct HostTopology: Hashable, Sendable, Codable {
    public var cells: [NUMACell]
    public var devices: [PCIDevice]

    private enum CodingKeys: String, CodingKey {
        case cells = "numa_cells", devices = "pci_devices"
    }

    public init(cells: [NUMACell], devices: [PCIDevice] = []) {
        self.cells = cells
        self.devices = devices
    }

    /// The first thing wrong with this topology (a driver bug or a bad inventory file), or `nil`.
    public var problem: String? {
        var seenCells = Set<Int>(), seenCPUs = Set<Int>()
        for cell in cells {
            guard cell.id >= 0, seenCells.insert(cell.id).inserted else { return "NUMA cell id \(cell.id) is negative or repeated" }
            guard !cell.cpus.isEmpty || cell.memoryMB > 0 else { return "NUMA cell \(cell.id) has neither CPUs nor memory" }
            guard cell.memoryMB >= 0 else { return "NUMA cell \(cell.id) has negative memory" }
            for cpu in cell.cpus {
                guard cpu >= 0, seenCPUs.insert(cpu).inserted else { return "CPU \(cpu) is negative or in two cells" }
            }
            let cpus = Set(cell.cpus)
            var inCores = Set<Int>()
            for core in cell.siblings {
                guard !core.isEmpty, Set(core).isSubset(of: cpus), inCores.isDisjoint(with: core) else {
                    return "NUMA cell \(cell.id): thread siblings \(core) are not a set of its own CPUs"
                }
                inCores.formUnion(core)
            }
            var hugeMB = 0
            for (size, total) in cell.pages {
                guard size > 0, total >= 0 else { return "NUMA cell \(cell.id): bad page count \(total) of \(size) KiB" }
                if size != NUMACell.smallPageKB { hugeMB += size / 1024 * total }
            }
            guard hugeMB <= cell.memoryMB else {
                return "NUMA cell \(cell.id): huge pages (\(hugeMB) MB) exceed its memory (\(cell.memoryMB) MB)"
            }
        }
        var addresses = Set<String>()
        for device in devices {
            guard PCIDevice.isAddress(device.address), addresses.insert(device.address).inserted else {
                return "PCI address '\(device.address)' is malformed or repeated"
            }
            if let node = device.numaNode, !seenCells.contains(node) {
                return "PCI device \(device.address) is on NUMA cell \(node), which the host does not have"
            }
        }
        for device in devices where device.kind == .vf {
            guard let parent = device.parentAddress, devices.contains(where: { $0.address == parent && $0.kind == .pf })
            else { return "VF \(device.address) has no physical function among the devices" }
        }
        return nil
    }
}

/// One host NUMA cell: its logical CPUs (and which are thread siblings of one core), memory and pages.
public struct NUMACell: Hashable, Sendable, Codable {
    public static let smallPageKB = 4

    public var id: Int
    /// Online logical CPUs, ascending.
    public var cpus: [Int]
    /// Thread siblings: one set per core, covering `cpus` (a CPU alone on its core is a set of one).
    public var siblings: [[Int]]
    public var memoryMB: Int
    /// Huge pages by size in KiB → how many (small pages are what is left of the memory).
    public var pages: [Int: Int]
    /// The CPU socket (physical package), when known.
    public var socket: Int?

    private enum CodingKeys: String, CodingKey {
        case id, cpus, siblings, memoryMB = "memory_mb", pages, socket
    }

    /// `siblings` (default: every CPU a core of its own), `pages` and `socket` may be left out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(Int.self, forKey: .id), cpus: try c.decode([Int].self, forKey: .cpus),
            siblings: try c.decodeIfPresent([[Int]].self, forKey: .siblings),
            memoryMB: try c.decode(Int.self, forKey: .memoryMB),
            pages: try c.decodeIfPresent([Int: Int].self, forKey: .pages) ?? [:],
            socket: try c.decodeIfPresent(Int.self, forKey: .socket))
    }

    public init(id: Int, cpus: [Int], siblings: [[Int]]? = nil, memoryMB: Int, pages: [Int: Int] = [:], socket: Int? = nil) {
        self.id = id
        self.cpus = cpus.sorted()
        self.siblings = (siblings ?? cpus.map { [$0] }).map { $0.sorted() }
        self.memoryMB = memoryMB
        self.pages = pages
        self.socket = socket
    }

    /// Memory in small pages: what huge pages leave.
    public var smallPageMemoryMB: Int {
        memoryMB - pages.filter { $0.key != Self.smallPageKB }.reduce(0) { $0 + $1.key / 1024 * $1.value }
    }

    /// Threads per core (1 without SMT).
    public var threadsPerCore: Int { siblings.map(\.count).max() ?? 1 }
}

/// The kinds of PCI device Nova tells apart.
public enum PCIDeviceKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// A plain device (no SR-IOV).
    case pci = "type-PCI"
    /// An SR-IOV physical function (has virtual functions).
    case pf = "type-PF"
    /// An SR-IOV virtual function (of `parentAddress`).
    case vf = "type-VF"
}

/// A PCI device as found in `/sys/bus/pci/devices`.
public struct PCIDevice: Hashable, Sendable, Codable {
    /// `dddd:bb:ss.f`, lower case.
    public var address: String
    /// Four lower-case hex digits.
    public var vendorID: String
    public var productID: String
    /// Six hex digits (class, subclass, programming interface).
    public var classCode: String
    public var numaNode: Int?
    public var kind: PCIDeviceKind
    /// The physical function of a VF.
    public var parentAddress: String?
    public var driver: String?

    private enum CodingKeys: String, CodingKey {
        case address, vendorID = "vendor_id", productID = "product_id", classCode = "class_code", numaNode = "numa_node"
        case kind = "type", parentAddress = "parent_address", driver
    }

    /// `class_code` (default `000000`), `numa_node`, `type` (default `type-PCI`), `parent_address` and `driver`
    /// may be left out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            address: try c.decode(String.self, forKey: .address), vendorID: try c.decode(String.self, forKey: .vendorID),
            productID: try c.decode(String.self, forKey: .productID),
            classCode: try c.decodeIfPresent(String.self, forKey: .classCode) ?? "000000",
            numaNode: try c.decodeIfPresent(Int.self, forKey: .numaNode),
            kind: try c.decodeIfPresent(PCIDeviceKind.self, forKey: .kind) ?? .pci,
            parentAddress: try c.decodeIfPresent(String.self, forKey: .parentAddress),
            driver: try c.decodeIfPresent(String.self, forKey: .driver))
    }

    public init(
        address: String, vendorID: String, productID: String, classCode: String = "000000", numaNode: Int? = nil,
        kind: PCIDeviceKind = .pci, parentAddress: String? = nil, driver: String? = nil
    ) {
        self.address = address.lowercased()
        self.vendorID = vendorID.lowercased()
        self.productID = productID.lowercased()
        self.classCode = classCode.lowercased()
        self.numaNode = numaNode
        self.kind = kind
        self.parentAddress = parentAddress?.lowercased()
        self.driver = driver
    }

    /// Whether `text` is a full PCI address (`0000:00:1f.3`).
    public static func isAddress(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2 else { return false }
        let slot = parts[2].split(separator: ".", omittingEmptySubsequences: false)
        guard slot.count == 2, slot[0].count == 2, slot[1].count == 1 else { return false }
        return [parts[0], parts[1], slot[0], slot[1]].allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }
}

/// Reads the CPU list syntax of sysfs and Nova's extra specs: `0-3,8,10-11`; `^N` excludes when `allowExclusions`.
public enum CPUList {
    public static func parse(_ text: String, allowExclusions: Bool = false) -> (include: [Int], exclude: [Int])? {
        var include = Set<Int>(), exclude = Set<Int>()
        let trimmed = text.trimmingSpaces()
        guard !trimmed.isEmpty else { return ([], []) }
        for item in trimmed.split(separator: ",") {
            var part = Substring(String(item).trimmingSpaces())
            var excluded = false
            if part.hasPrefix("^") {
                guard allowExclusions else { return nil }
                excluded = true
                part = part.dropFirst()
            }
            guard let cpus = range(part), cpus.count <= 65536 else { return nil }
            if excluded { exclude.formUnion(cpus) } else { include.formUnion(cpus) }
        }
        return (include.sorted(), exclude.sorted())
    }

    /// One entry of a CPU list: `N` or `LOW-HIGH`.
    public static func range(_ part: Substring) -> ClosedRange<Int>? {
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]),
            low >= 0, low <= high
        else { return nil }
        return low...high
    }

    /// `[0, 1, 2, 5]` → `0-2,5`.
    public static func format(_ cpus: some Sequence<Int>) -> String {
        var ranges: [String] = []
        var start: Int?, last: Int?
        for cpu in Set(cpus).sorted() {
            if let l = last, cpu == l + 1 { last = cpu; continue }
            if let s = start, let l = last { ranges.append(s == l ? "\(s)" : "\(s)-\(l)") }
            start = cpu
            last = cpu
        }
        if let s = start, let l = last { ranges.append(s == l ? "\(s)" : "\(s)-\(l)") }
        return ranges.joined(separator: ",")
    }
}

/// A child provider of a compute node in Placement: a PCI device (or a PF with its VFs), or a NUMA cell.
public struct ChildProvider: Hashable, Sendable {
    public var uuid: String
    public var name: String
    public var inventories: [String: Inventory]
    public var traits: Set<String>
    /// Device address → its class.
    public var classes: [String: String]
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

/// How a node's topology may be used, from its agent's configuration (saved with the node, so whoever commits a
/// claim for it fits the same way): Nova's `cpu_dedicated_set` and `cpu_shared_set`, the NUMA packing strategy,
/// and the PCI device specs and aliases.
public struct HostConfig: Hashable, Sendable, Codable {
    /// Host CPUs that may be pinned (PCPU inventory).
    public var dedicatedCPUs: [Int]
    /// Host CPUs floating vCPUs run on; by default every CPU not dedicated.
    public var sharedCPUs: [Int]?
    public var strategy: NUMAFitter.Strategy
    public var pciSpecs: [PCIDeviceSpec]
    public var pciAliases: [PCIAlias]
    /// Report assignable PCI devices as child providers of the node in Placement (Nova's
    /// `[pci] report_in_placement`), so claims allocate them there too.
    public var pciInPlacement: Bool
    /// Report NUMA cells as child providers holding VCPU, PCPU and MEMORY_MB (instead of the node's root), with
    /// these ratios and host reservations (the first cell carries the reservations).
    public var numaInPlacement: NUMAInPlacement?

    public struct NUMAInPlacement: Hashable, Sendable, Codable {
        public var cpuAllocationRatio: Double
        public var ramAllocationRatio: Double
        public var reservedCPUs: Int
        public var reservedMemoryMB: Int
        /// Memory of orphan guests (running on the host, unknown to the ledger) held back from the first cell on top
        /// of ``reservedMemoryMB`` until they go away; set by the audit, `nil` when there is none.
        public var orphanMemoryMB: Int?

        public init(
            cpuAllocationRatio: Double, ramAllocationRatio: Double, reservedCPUs: Int, reservedMemoryMB: Int,
            orphanMemoryMB: Int? = nil
        ) {
            self.cpuAllocationRatio = cpuAllocationRatio
            self.ramAllocationRatio = ramAllocationRatio
            self.reservedCPUs = reservedCPUs
            self.reservedMemoryMB = reservedMemoryMB
            self.orphanMemoryMB = orphanMemoryMB
        }

        private enum CodingKeys: String, CodingKey {
            case cpuAllocationRatio = "cpu_allocation_ratio", ramAllocationRatio = "ram_allocation_ratio"
            case reservedCPUs = "reserved_host_cpus", reservedMemoryMB = "reserved_host_memory_mb"
            case orphanMemoryMB = "orphan_memory_mb"
        }
    }

    /// The classes NUMA cells take over from the node's root.
    public static let cellClasses: Set<String> = ["VCPU", "PCPU", "MEMORY_MB"]

    public init(
        dedicatedCPUs: [Int] = [], sharedCPUs: [Int]? = nil, strategy: NUMAFitter.Strategy = .pack,
        pciSpecs: [PCIDeviceSpec] = [], pciAliases: [PCIAlias] = [], pciInPlacement: Bool = false,
        numaInPlacement: NUMAInPlacement? = nil
    ) {
        self.pciInPlacement = pciInPlacement
        self.numaInPlacement = numaInPlacement
        self.dedicatedCPUs = dedicatedCPUs.sorted()
        self.sharedCPUs = sharedCPUs?.sorted()
        self.strategy = strategy
        self.pciSpecs = pciSpecs
        self.pciAliases = pciAliases
    }

    private enum CodingKeys: String, CodingKey {
        case dedicatedCPUs = "cpu_dedicated_set", sharedCPUs = "cpu_shared_set", strategy = "numa_strategy"
        case pciSpecs = "pci_device_specs", pciAliases = "pci_aliases", pciInPlacement = "pci_in_placement"
        case numaInPlacement = "numa_in_placement"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            dedicatedCPUs: try c.decode([Int].self, forKey: .dedicatedCPUs),
            sharedCPUs: try c.decodeIfPresent([Int].self, forKey: .sharedCPUs),
            strategy: try c.decode(NUMAFitter.Strategy.self, forKey: .strategy),
            pciSpecs: try c.decode([PCIDeviceSpec].self, forKey: .pciSpecs),
            pciAliases: try c.decode([PCIAlias].self, forKey: .pciAliases),
            pciInPlacement: try c.decodeIfPresent(Bool.self, forKey: .pciInPlacement) ?? false,
            numaInPlacement: try c.decodeIfPresent(NUMAInPlacement.self, forKey: .numaInPlacement))
    }

    /// Whether this node's NUMA cells are child providers (configured, and the node has cells).
    public func reportsCells(_ topology: HostTopology?) -> Bool { numaInPlacement != nil && !(topology?.cells.isEmpty ?? true) }

    /// Every child provider of the node: NUMA cells, then PCI devices.
    public func childProviders(node: String, hostname: String, topology: HostTopology?) -> [ChildProvider] {
        numaProviders(node: node, hostname: hostname, topology: topology)
            + pciProviders(node: node, hostname: hostname, topology: topology)
    }

    /// The node's NUMA cells as child providers (none unless ``numaInPlacement``), named `HOSTNAME_NUMA<ID>`:
    /// VCPU for the cell's shared CPUs, PCPU for its dedicated ones, MEMORY_MB for its memory.
    public func numaProviders(node: String, hostname: String, topology: HostTopology?) -> [ChildProvider] {
        guard let numa = numaInPlacement, let topology, reportsCells(topology) else { return [] }
        let dedicated = Set(dedicatedCPUs)
        return topology.cells.sorted { $0.id < $1.id }.enumerated().map { index, cell in
            let first = index == 0
            var inventories: [String: Inventory] = [:]
            let shared = shared(among: cell.cpus).filter { cell.cpus.contains($0) }.count
            if shared > 0 {
                inventories["VCPU"] = Inventory(
                    total: shared, reserved: first ? min(numa.reservedCPUs, shared - 1) : 0, maxUnit: shared,
                    allocationRatio: numa.cpuAllocationRatio)
            }
            let pinned = cell.cpus.filter(dedicated.contains).count
            if pinned > 0 { inventories["PCPU"] = Inventory(total: pinned, maxUnit: pinned) }
            if cell.memoryMB > 0 {
                inventories["MEMORY_MB"] = Inventory(
                    total: cell.memoryMB,
                    reserved: first
                        ? min(min(numa.reservedMemoryMB, cell.memoryMB - 1)
                                + min(numa.orphanMemoryMB ?? 0, cell.memoryMB), cell.memoryMB)
                        : 0,
                    maxUnit: cell.memoryMB, allocationRatio: numa.ramAllocationRatio)
            }
            return ChildProvider(
                uuid: Self.stableUUID(node + "/numa/\(cell.id)"), name: "\(hostname)_NUMA\(cell.id)", inventories: inventories,
                traits: [], classes: [:])
        }
    }

    /// What a NUMA placement takes of the cell providers (nothing unless the node reports its cells).
    public func cellAllocations(_ placement: NUMAPlacement?, node: String, topology: HostTopology?) -> NodeAmounts {
        guard reportsCells(topology), let placement else { return [:] }
        var result: NodeAmounts = [:]
        for cell in placement.cells {
            let uuid = Self.stableUUID(node + "/numa/\(cell.hostCell)")
            var amounts: [String: Int] = [:]
            if cell.sharedVCPUs > 0 { amounts["VCPU"] = cell.sharedVCPUs }
            if !cell.pinning.isEmpty { amounts["PCPU"] = cell.pinning.count }
            if cell.memoryMB > 0 { amounts["MEMORY_MB"] = cell.memoryMB }
            result[uuid, default: [:]].merge(amounts, uniquingKeysWith: +)
        }
        return result
    }

    /// The node's PCI child providers in Placement (none unless ``pciInPlacement``): one per assignable device
    /// or per physical function (its assignable VFs, and itself when assignable), named `HOSTNAME_ADDRESS` with a
    /// uuid derived from the node's and the address (the same at every audit), holding one unit per device of
    /// class `CUSTOM_PCI_VENDOR_PRODUCT` (or the spec's `resource_class`) and the spec's `traits`.
    public func pciProviders(node: String, hostname: String, topology: HostTopology?) -> [ChildProvider] {
        guard pciInPlacement, let topology else { return [] }
        var providers: [String: ChildProvider] = [:]
        for device in topology.devices {
            guard let spec = pciSpecs.first(where: { $0.matches(device) }) else { continue }
            let root = device.kind == .vf ? device.parentAddress ?? device.address : device.address
            var provider = providers[root] ?? ChildProvider(
                uuid: Self.stableUUID(node + "/" + root), name: "\(hostname)_\(root)", inventories: [:], traits: [],
                classes: [:])
            let rc = Self.resourceClass(spec: spec, device: device)
            let count = (provider.inventories[rc]?.total ?? 0) + 1
            provider.inventories[rc] = Inventory(total: count, maxUnit: count)
            provider.classes[device.address] = rc
            provider.traits.formUnion(Self.traits(spec))
            providers[root] = provider
        }
        return providers.values.sorted { $0.name < $1.name }
    }

    /// What claiming these devices takes of the child providers (nothing unless ``pciInPlacement``).
    public func deviceAllocations(_ addresses: [String], node: String, hostname: String, topology: HostTopology?) -> NodeAmounts {
        var result: NodeAmounts = [:]
        for provider in pciProviders(node: node, hostname: hostname, topology: topology) {
            for address in addresses {
                if let rc = provider.classes[address] { result[provider.uuid, default: [:]][rc, default: 0] += 1 }
            }
        }
        return result
    }

    static func resourceClass(spec: PCIDeviceSpec, device: PCIDevice) -> String {
        if let configured = spec.tags["resource_class"]?.uppercased(), !configured.isEmpty {
            return ResourceClass.standardSet.contains(configured) || configured.hasPrefix("CUSTOM_")
                ? configured : "CUSTOM_" + Self.normalized(configured)
        }
        return "CUSTOM_PCI_\(device.vendorID.uppercased())_\(device.productID.uppercased())"
    }

    static func traits(_ spec: PCIDeviceSpec) -> Set<String> {
        Set((spec.tags["traits"] ?? "").split(separator: ",").map { String($0).trimmingSpaces().uppercased() }
            .filter { !$0.isEmpty }.map { Trait.standardSet.contains($0) || $0.hasPrefix("CUSTOM_") ? $0 : "CUSTOM_" + normalized($0) })
    }

    static func normalized(_ text: String) -> String {
        String(text.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// Whether a child provider of `node` is one these configurations create (a PCI device's or a NUMA cell's): its
    /// uuid is the one derived from the node and its name's suffix (`_ADDRESS`, `_NUMA<ID>`), whatever the hostname
    /// was. Children another service made under the node (e.g. network bandwidth providers) are not.
    public static func isOwnChild(uuid: String, name: String, node: String) -> Bool {
        guard let suffix = name.split(separator: "_").last.map(String.init) else { return false }
        if suffix.hasPrefix("NUMA"), let id = Int(suffix.dropFirst(4)), uuid == stableUUID(node + "/numa/\(id)") { return true }
        return uuid == stableUUID(node + "/" + suffix)
    }

    /// A uuid made from `text` (two 64-bit FNV-1a hashes), stable across runs and machines.
    public static func stableUUID(_ text: String) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x6c62_272e_07bb_0142
        for byte in text.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b << 7) | (b >> 57)
        }
        let hex = String(a, radix: 16).leftPadded(16) + String(b, radix: 16).leftPadded(16)
        var chars = Array(hex)
        chars[12] = "5"
        chars[16] = ["8", "9", "a", "b"][Int(String(chars[16]), radix: 16)! & 3]
        let s = String(chars)
        func part(_ from: Int, _ to: Int) -> Substring { s.dropFirst(from).prefix(to - from) }
        return "\(part(0, 8))-\(part(8, 12))-\(part(12, 16))-\(part(16, 20))-\(part(20, 32))"
    }

    public var aliasesByName: [String: PCIAlias] { Dictionary(pciAliases.map { ($0.name, $0) }) { a, _ in a } }

    /// The host CPUs that float vCPUs, among `cpus`.
    public func shared(among cpus: [Int]) -> [Int] {
        let dedicated = Set(dedicatedCPUs)
        return sharedCPUs ?? cpus.filter { !dedicated.contains($0) }
    }

    /// The first thing wrong with this configuration on a host with these CPUs, or `nil`.
    public func problem(cpus: [Int]) -> String? {
        let all = Set(cpus)
        if let cpu = dedicatedCPUs.first(where: { !all.contains($0) }) { return "cpu_dedicated_set names CPU \(cpu), which is not online" }
        if let shared = sharedCPUs {
            if let cpu = shared.first(where: { !all.contains($0) }) { return "cpu_shared_set names CPU \(cpu), which is not online" }
            if !Set(shared).isDisjoint(with: dedicatedCPUs) { return "cpu_shared_set and cpu_dedicated_set overlap" }
        }
        for spec in pciSpecs { if let problem = spec.problem { return "PCI device spec: \(problem)" } }
        var names = Set<String>()
        for alias in pciAliases {
            guard !alias.name.isEmpty, names.insert(alias.name).inserted else { return "PCI alias names must be unique and not empty" }
        }
        return nil
    }
}
