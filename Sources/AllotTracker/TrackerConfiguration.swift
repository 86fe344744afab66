public import AllotCore

/// How an agent turns what its driver reports into what it offers Placement.
public struct TrackerConfiguration: Sendable {
    /// The name of the host this agent runs on (compute nodes record it as their manager).
    public var host: String
    public var cpuAllocationRatio: Double
    public var ramAllocationRatio: Double
    public var diskAllocationRatio: Double
    public var reservedHostCPUs: Int
    public var reservedHostMemoryMB: Int
    public var reservedHostDiskMB: Int
    /// Traits every node of this agent gets (besides `COMPUTE_NODE` and the provider configs' ones).
    public var traits: Set<String>
    /// Extra inventories and traits from provider config files (``ProviderConfig``).
    public var providerConfigs: [ProviderConfig]
    /// The nodes are disabled for new work (`COMPUTE_STATUS_DISABLED`).
    public var disabled: Bool
    /// Seconds between periodic audits; 0 turns them off.
    public var auditInterval: Double
    /// Dedicated and shared CPUs, NUMA strategy, PCI device specs and aliases (saved with each host node).
    public var hostConfig: HostConfig

    /// Nova's defaults: initial ratios 16 / 1.5 / 1, 512 MiB of memory reserved for the host.
    public init(
        host: String, cpuAllocationRatio: Double = 16, ramAllocationRatio: Double = 1.5, diskAllocationRatio: Double = 1,
        reservedHostCPUs: Int = 0, reservedHostMemoryMB: Int = 512, reservedHostDiskMB: Int = 0,
        traits: Set<String> = [], providerConfigs: [ProviderConfig] = [], disabled: Bool = false,
        auditInterval: Double = 60, hostConfig: HostConfig = HostConfig()
    ) {
        self.hostConfig = hostConfig
        self.host = host
        self.cpuAllocationRatio = cpuAllocationRatio
        self.ramAllocationRatio = ramAllocationRatio
        self.diskAllocationRatio = diskAllocationRatio
        self.reservedHostCPUs = reservedHostCPUs
        self.reservedHostMemoryMB = reservedHostMemoryMB
        self.reservedHostDiskMB = reservedHostDiskMB
        self.traits = traits
        self.providerConfigs = providerConfigs
        self.disabled = disabled
        self.auditInterval = auditInterval
    }

    /// The first setting that makes no sense, or `nil`.
    public var problem: String? {
        for (name, ratio) in [("cpu", cpuAllocationRatio), ("ram", ramAllocationRatio), ("disk", diskAllocationRatio)]
        where !(ratio > 0 && ratio.isFinite) {
            return "the \(name) allocation ratio must be a positive number"
        }
        for (name, value) in [("cpus", reservedHostCPUs), ("memory", reservedHostMemoryMB), ("disk", reservedHostDiskMB)]
        where value < 0 || value > Limits.maxInt {
            return "reserved host \(name) must be between 0 and \(Limits.maxInt)"
        }
        if auditInterval < 0 || !auditInterval.isFinite { return "the audit interval must be 0 or more seconds" }
        return nil
    }

    /// The inventories a node offers Placement: what its resources give after ratios and reservations, plus
    /// the provider config's additions for it.
    /// - Throws: ``HostDriverError/invalid(field:reason:)`` when the reservations leave nothing (e.g. 512 MiB
    ///   reserved on a 256 MiB node) or a provider config adds a class the driver already reports.
    public func inventories(
        for resources: NodeResources, uuid: String = "", hostname: String = ""
    ) throws(HostDriverError) -> [String: Inventory] {
        var result: [String: Inventory]
        switch resources {
        case .host(let host):
            let reservedDisk = (reservedHostDiskMB + 1023) / 1024
            guard reservedHostMemoryMB < host.memoryMB else {
                throw .invalid(field: "memory_mb", reason: "\(reservedHostMemoryMB) MiB reserved of \(host.memoryMB) leaves none")
            }
            // With a cpu_dedicated_set those CPUs are PCPU (pinned, never oversubscribed) and VCPU is what is shared.
            // The host's CPU numbers matter only with dedicated or shared sets (every audit asks; hosts may have
            // thousands of CPUs).
            let namesCPUs = !hostConfig.dedicatedCPUs.isEmpty || hostConfig.sharedCPUs != nil
            let cpus = !namesCPUs ? [] : host.cells.isEmpty ? Array(0..<host.vcpus) : host.cells.flatMap(\.cpus).sorted()
            if let problem = hostConfig.problem(cpus: cpus) { throw .invalid(field: "host_config", reason: problem) }
            let shared = hostConfig.dedicatedCPUs.isEmpty ? host.vcpus : hostConfig.shared(among: cpus).count
            result = [
                ResourceClass.memoryMB.name: Inventory(
                    total: host.memoryMB, reserved: reservedHostMemoryMB, maxUnit: host.memoryMB,
                    allocationRatio: ramAllocationRatio),
            ]
            if shared > 0 {
                guard reservedHostCPUs < shared else {
                    throw .invalid(field: "vcpus", reason: "\(reservedHostCPUs) reserved of \(shared) shared CPUs leaves none")
                }
                result[ResourceClass.vcpu.name] = Inventory(
                    total: shared, reserved: reservedHostCPUs, maxUnit: shared, allocationRatio: cpuAllocationRatio)
            }
            if !hostConfig.dedicatedCPUs.isEmpty {
                let count = hostConfig.dedicatedCPUs.count
                result["PCPU"] = Inventory(total: count, maxUnit: count)
            }
            // NUMA cells in Placement take VCPU, PCPU and MEMORY_MB off the root (HostConfig.numaProviders).
            if hostConfig.reportsCells(host.topology) {
                for rc in HostConfig.cellClasses { result[rc] = nil }
            }
            if host.diskGB > 0 {
                guard reservedDisk < host.diskGB else {
                    throw .invalid(field: "disk_gb", reason: "\(reservedDisk) GiB reserved of \(host.diskGB) leaves none")
                }
                result[ResourceClass.diskGB.name] = Inventory(
                    total: host.diskGB, reserved: reservedDisk, maxUnit: host.diskGB, allocationRatio: diskAllocationRatio)
            }
        case .baremetal(let resourceClass, let available):
            result = [resourceClass: Inventory(total: 1, reserved: available ? 0 : 1, minUnit: 1, maxUnit: 1)]
        }
        if let additions = ProviderConfig.additions(for: uuid, hostname: hostname, in: providerConfigs) {
            for (name, inventory) in additions.inventories {
                guard result[name] == nil else {
                    throw .invalid(field: name, reason: "\(additions.source) adds \(name), which the driver reports itself")
                }
                result[name] = inventory
            }
        }
        return result
    }
}

extension TrackerConfiguration {
    /// The traits a provider config adds to this node.
    public func configuredTraits(uuid: String, hostname: String) -> Set<String> {
        ProviderConfig.additions(for: uuid, hostname: hostname, in: providerConfigs)?.traits ?? []
    }
}
