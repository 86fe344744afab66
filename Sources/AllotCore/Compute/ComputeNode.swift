/// A compute node as the ledger keeps it: what it offers Placement and how it is doing.
public struct ComputeNode: Hashable, Sendable, Codable {
    /// Stable id; also the uuid of its resource provider.
    public var uuid: String
    /// The hypervisor hostname; also its provider's name.
    public var hostname: String
    /// The host whose agent manages this node.
    public var host: String
    /// The host driver that reports it (`linux`, `fake`, `baremetal`).
    public var driver: String
    /// What the node offers Placement (after allocation ratios and reservations).
    public var inventories: [String: Inventory]
    public var traits: Set<String>
    /// Nova's stats (num_instances, num_vm_*, …) as of the last audit.
    public var stats: [String: Int]
    /// Usage by class as of the last audit.
    public var usage: [String: Int]
    public var disabled: Bool
    public var updatedAt: Double
    /// NUMA cells and PCI devices, when the driver reports them.
    public var topology: HostTopology?
    /// How claims may use the topology (dedicated CPUs, PCI specs and aliases), from the agent's configuration.
    public var hostConfig: HostConfig?

    public init(
        uuid: String, hostname: String, host: String, driver: String, inventories: [String: Inventory],
        traits: Set<String> = [], stats: [String: Int] = [:], usage: [String: Int] = [:], disabled: Bool = false,
        updatedAt: Double = 0, topology: HostTopology? = nil, hostConfig: HostConfig? = nil
    ) {
        self.topology = topology
        self.hostConfig = hostConfig
        self.uuid = uuid
        self.hostname = hostname
        self.host = host
        self.driver = driver
        self.inventories = inventories
        self.traits = traits
        self.stats = stats
        self.usage = usage
        self.disabled = disabled
        self.updatedAt = updatedAt
    }

    /// Whether two records differ in anything but the time stamp (the node is saved only then).
    public func differs(from other: ComputeNode) -> Bool {
        var a = self
        a.updatedAt = other.updatedAt
        return a != other
    }
}

/// Compact text forms for storing maps in one column.
public enum LedgerText {
    /// `CLASS:total:reserved:min:max:step:ratio` joined by `;`.
    public static func encode(_ inventories: [String: Inventory]) -> String {
        inventories.sorted { $0.key < $1.key }.map { name, inv in
            "\(name):\(inv.total):\(inv.reserved):\(inv.minUnit):\(inv.maxUnit):\(inv.stepSize):\(inv.allocationRatio)"
        }.joined(separator: ";")
    }

    public static func decodeInventories(_ text: String) -> [String: Inventory]? {
        var result: [String: Inventory] = [:]
        for item in text.split(separator: ";") {
            let f = item.split(separator: ":")
            guard f.count == 7, let total = Int(f[1]), let reserved = Int(f[2]), let minUnit = Int(f[3]),
                let maxUnit = Int(f[4]), let step = Int(f[5]), let ratio = Double(f[6])
            else { return nil }
            result[String(f[0])] = Inventory(
                total: total, reserved: reserved, minUnit: minUnit, maxUnit: maxUnit, stepSize: step,
                allocationRatio: ratio)
        }
        return result
    }

    /// `key=value` joined by `;` (keys never hold `=` or `;`).
    public static func encode(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ";")
    }

    public static func decodeCounts(_ text: String) -> [String: Int]? {
        var result: [String: Int] = [:]
        for item in text.split(separator: ";") {
            guard let equals = item.lastIndex(of: "="), let value = Int(item[item.index(after: equals)...]) else {
                return nil
            }
            result[String(item[..<equals])] = value
        }
        return result
    }
}
