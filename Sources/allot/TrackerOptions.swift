import AllotCore
import AllotTracker
import ArgumentParser
import Foundation

/// The options of a resource tracker agent, shared by `allot serve` (embedded agent) and `allot agent`.
struct TrackerOptions: ParsableArguments {
    @Option(help: "Host driver: 'linux' (this machine), 'libvirt' (the hypervisor at --libvirt-uri), 'fake' or 'baremetal' (nodes from --nodes-file) (env ALLOT_DRIVER).")
    var driver: DriverChoice = env("ALLOT_DRIVER").flatMap(DriverChoice.init(rawValue:)) ?? .linux

    @OptionGroup var libvirt: LibvirtOptions

    @Option(help: "JSON node file for the fake and baremetal drivers; read again at every audit (env ALLOT_NODES_FILE).")
    var nodesFile: String = env("ALLOT_NODES_FILE") ?? ""

    @Option(help: "Directory holding instance disks; DISK_GB is its file system's size (env ALLOT_INSTANCES_PATH).")
    var instancesPath: String = env("ALLOT_INSTANCES_PATH") ?? "."

    @Option(help: "This agent's host name, recorded on its compute nodes (default: the machine's host name).")
    var computeHost: String = env("ALLOT_COMPUTE_HOST") ?? ProcessInfo.processInfo.hostName

    @Option(help: "VCPU allocation ratio.")
    var cpuAllocationRatio: Double = 16

    @Option(help: "MEMORY_MB allocation ratio.")
    var ramAllocationRatio: Double = 1.5

    @Option(help: "DISK_GB allocation ratio.")
    var diskAllocationRatio: Double = 1

    @Option(help: "CPUs reserved for the host (VCPU reserved).")
    var reservedHostCpus: Int = 0

    @Option(help: "Memory reserved for the host, MiB (MEMORY_MB reserved).")
    var reservedHostMemoryMb: Int = 512

    @Option(help: "Disk reserved for the host, MiB (DISK_GB reserved, rounded up to GiB).")
    var reservedHostDiskMb: Int = 0

    @Option(help: "A trait every node gets (repeatable; CUSTOM_ traits are created).")
    var trait: [String] = []

    @Option(help: "Directory of Nova provider config files (*.yaml: extra CUSTOM_ inventories and traits per node), read at start-up (env ALLOT_PROVIDER_CONFIG_DIR).")
    var providerConfigDir: String = env("ALLOT_PROVIDER_CONFIG_DIR") ?? ""

    @Flag(help: "Mark the nodes disabled for new work (trait COMPUTE_STATUS_DISABLED; claims are refused).")
    var disableCompute = false

    @Option(help: "Seconds between periodic audits (0: only at start-up and on request).")
    var auditInterval: Double = 60

    @Option(help: "Host CPUs instances may pin (Nova's cpu_dedicated_set, e.g. 2-7,10): offered as PCPU, used by hw:cpu_policy=dedicated (env ALLOT_CPU_DEDICATED_SET).")
    var cpuDedicatedSet: String = env("ALLOT_CPU_DEDICATED_SET") ?? ""

    @Option(help: "Host CPUs floating vCPUs run on (Nova's cpu_shared_set; default: every CPU not dedicated) (env ALLOT_CPU_SHARED_SET).")
    var cpuSharedSet: String = env("ALLOT_CPU_SHARED_SET") ?? ""

    @Option(help: "Which NUMA cells an instance tries first: 'pack' (busiest) or 'spread' (emptiest).")
    var numaStrategy: StrategyChoice = .pack

    @Option(help: "A PCI device spec, Nova's JSON (repeatable): {\"vendor_id\": \"8086\", \"product_id\": \"154c\", \"address\": \"0000:3b:*.*\", \"physical_network\": \"physnet1\"}; only matching devices are assignable.")
    var pciDeviceSpec: [String] = []

    @Option(help: "A PCI alias flavors ask for with pci_passthrough:alias=NAME:COUNT, Nova's JSON (repeatable): {\"name\": \"gpu\", \"vendor_id\": \"10de\", \"product_id\": \"1db4\", \"device_type\": \"type-PCI\", \"numa_policy\": \"preferred\"}.")
    var pciAlias: [String] = []

    @Flag(help: "Report assignable PCI devices as child providers in Placement (Nova's [pci] report_in_placement); turning it on or off reshapes the nodes, moving existing allocations.")
    var pciInPlacement = false

    @Flag(help: "Report NUMA cells as child providers holding VCPU, PCPU and MEMORY_MB (every instance then lives in one cell or those its flavor asks for); turning it on or off reshapes the nodes.")
    var numaInPlacement = false

    enum DriverChoice: String, ExpressibleByArgument, CaseIterable { case linux, libvirt, fake, baremetal }
    enum StrategyChoice: String, ExpressibleByArgument, CaseIterable { case pack, spread }

    func validateTracker() throws {
        if driver == .fake || driver == .baremetal, nodesFile.isEmpty { throw ValidationError("--driver \(driver.rawValue) needs --nodes-file") }
        if let problem = try configuration().problem { throw ValidationError(problem) }
        for name in trait where !Trait.isCustomName(name) && !Trait.standardSet.contains(name) {
            throw ValidationError("no such trait \(name) (custom traits start with CUSTOM_)")
        }
    }

    /// The tracker's configuration, with the provider config files read.
    /// - Throws: `ValidationError` naming the file and the entry when a provider config file is wrong.
    func configuration() throws -> TrackerConfiguration {
        var providerConfigs: [ProviderConfig] = []
        if !providerConfigDir.isEmpty {
            do {
                providerConfigs = try ProviderConfig.load(directory: providerConfigDir)
            } catch let problem as ProviderConfig.Problem {
                throw ValidationError(problem.description)
            }
        }
        return TrackerConfiguration(
            host: computeHost, cpuAllocationRatio: cpuAllocationRatio, ramAllocationRatio: ramAllocationRatio,
            diskAllocationRatio: diskAllocationRatio, reservedHostCPUs: reservedHostCpus,
            reservedHostMemoryMB: reservedHostMemoryMb, reservedHostDiskMB: reservedHostDiskMb, traits: Set(trait),
            providerConfigs: providerConfigs, disabled: disableCompute, auditInterval: auditInterval,
            hostConfig: try hostConfig())
    }

    /// Dedicated and shared CPUs, NUMA strategy, PCI specs and aliases from their options.
    /// - Throws: `ValidationError` naming the option that is malformed.
    func hostConfig() throws -> HostConfig {
        func cpus(_ text: String, _ option: String) throws -> [Int]? {
            guard !text.isEmpty else { return nil }
            guard let list = CPUList.parse(text, allowExclusions: true), !list.include.isEmpty else {
                throw ValidationError("\(option) must be a CPU list such as 2-7,10 or 0-15,^4, not '\(text)'")
            }
            return list.include.filter { !list.exclude.contains($0) }
        }
        func decode<T: Decodable>(_ text: String, _ option: String) throws -> T {
            do {
                return try JSONCoding.decode(T.self, from: text.utf8)
            } catch {
                throw ValidationError("\(option) '\(text)' is not valid: \(FileHostDriver.describe(error))")
            }
        }
        let specs: [PCIDeviceSpec] = try pciDeviceSpec.map { try decode($0, "--pci-device-spec") }
        for spec in specs { if let problem = spec.problem { throw ValidationError("--pci-device-spec: \(problem)") } }
        let config = HostConfig(
            dedicatedCPUs: try cpus(cpuDedicatedSet, "--cpu-dedicated-set") ?? [],
            sharedCPUs: try cpus(cpuSharedSet, "--cpu-shared-set"),
            strategy: numaStrategy == .pack ? .pack : .spread, pciSpecs: specs,
            pciAliases: try pciAlias.map { try decode($0, "--pci-alias") }, pciInPlacement: pciInPlacement,
            numaInPlacement: numaInPlacement ? HostConfig.NUMAInPlacement(
                cpuAllocationRatio: cpuAllocationRatio, ramAllocationRatio: ramAllocationRatio,
                reservedCPUs: reservedHostCpus, reservedMemoryMB: reservedHostMemoryMb) : nil)
        if let problem = config.problem(cpus: Array(config.dedicatedCPUs) + (config.sharedCPUs ?? [])) {
            throw ValidationError(problem)
        }
        return config
    }

    func makeDriver() -> any HostDriver {
        switch driver {
        case .linux: LinuxHostDriver(instancesPath: instancesPath)
        case .libvirt: LibvirtHostDriver(uri: libvirt.libvirtUri, instancesPath: instancesPath)
        case .fake: FileHostDriver(kind: .fake, path: nodesFile)
        case .baremetal: FileHostDriver(kind: .baremetal, path: nodesFile)
        }
    }
}

/// The libvirt connection of `--driver libvirt` (`allot serve`, `allot agent`, `allot host`).
struct LibvirtOptions: ParsableArguments {
    @Option(help: "libvirt connection URI for --driver libvirt (env ALLOT_LIBVIRT_URI).")
    var libvirtUri: String = env("ALLOT_LIBVIRT_URI") ?? "qemu:///system"
}
