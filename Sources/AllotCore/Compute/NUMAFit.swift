/// What a flavor asks of a host's NUMA cells (Nova's `hw:` extra specs).
///
/// A flavor asks for a NUMA topology when it sets `hw:numa_nodes`, a dedicated or mixed CPU policy, or
/// `hw:mem_page_size`; without any of them it floats over the whole host and ``from(_:)`` gives `nil`.
public struct NUMARequest: Hashable, Sendable, Codable {
    public enum CPUPolicy: String, Hashable, Sendable, Codable { case shared, dedicated, mixed }
    public enum ThreadPolicy: String, Hashable, Sendable, Codable { case prefer, isolate, require }
    public enum PageSize: Hashable, Sendable, Codable {
        case small, large, any
        case kb(Int)
    }

    /// One guest cell: which guest vCPUs (indices) and how much memory.
    public struct Cell: Hashable, Sendable, Codable {
        public var vcpus: [Int]
        public var memoryMB: Int

        public init(vcpus: [Int], memoryMB: Int) {
            self.vcpus = vcpus
            self.memoryMB = memoryMB
        }
    }

    public var cells: [Cell]
    public var cpuPolicy: CPUPolicy
    public var threadPolicy: ThreadPolicy
    public var pageSize: PageSize?
    /// Guest vCPUs that get a host CPU of their own (all of them with `dedicated`, the mask with `mixed`).
    public var dedicatedVCPUs: Set<Int>

    public init(
        cells: [Cell], cpuPolicy: CPUPolicy = .shared, threadPolicy: ThreadPolicy = .prefer, pageSize: PageSize? = nil,
        dedicatedVCPUs: Set<Int>? = nil
    ) {
        self.cells = cells
        self.cpuPolicy = cpuPolicy
        self.threadPolicy = threadPolicy
        self.pageSize = pageSize
        self.dedicatedVCPUs = dedicatedVCPUs ?? (cpuPolicy == .dedicated ? Set(cells.flatMap(\.vcpus)) : [])
    }

    /// The request a flavor's extra specs make, `nil` when they ask for no NUMA topology.
    /// - Throws: ``ComputeError/invalidFlavor(_:)`` for specs that are malformed or contradict each other.
    public static func from(_ flavor: Flavor) throws(ComputeError) -> NUMARequest? {
        let specs = flavor.extraSpecs
        func bad(_ text: String) -> ComputeError { .invalidFlavor(text) }
        var policy = CPUPolicy.shared
        if let text = specs["hw:cpu_policy"] {
            guard let parsed = CPUPolicy(rawValue: text) else {
                throw bad("hw:cpu_policy must be shared, dedicated or mixed, not '\(text)'")
            }
            policy = parsed
        }
        var mask: Set<Int>?
        if let text = specs["hw:cpu_dedicated_mask"] {
            guard let parsed = CPUList.parse(text, allowExclusions: true) else {
                throw bad("hw:cpu_dedicated_mask '\(text)' is not a CPU list")
            }
            var set = parsed.include.isEmpty && !parsed.exclude.isEmpty ? Set(0..<flavor.vcpus) : Set(parsed.include)
            set.subtract(parsed.exclude)
            guard set.allSatisfy({ $0 < flavor.vcpus }) else {
                throw bad("hw:cpu_dedicated_mask names vCPUs beyond the flavor's \(flavor.vcpus)")
            }
            guard !set.isEmpty, set.count < flavor.vcpus else {
                throw bad("hw:cpu_dedicated_mask must leave at least one vCPU dedicated and one shared")
            }
            if specs["hw:cpu_policy"] == nil { policy = .mixed }
            guard policy == .mixed else { throw bad("hw:cpu_dedicated_mask needs hw:cpu_policy=mixed") }
            mask = set
        } else if policy == .mixed {
            throw bad("hw:cpu_policy=mixed needs hw:cpu_dedicated_mask")
        }
        var threads = ThreadPolicy.prefer
        if let text = specs["hw:cpu_thread_policy"] {
            guard let parsed = ThreadPolicy(rawValue: text) else {
                throw bad("hw:cpu_thread_policy must be prefer, isolate or require, not '\(text)'")
            }
            guard policy != .shared else { throw bad("hw:cpu_thread_policy needs hw:cpu_policy=dedicated or mixed") }
            threads = parsed
        }
        var pageSize: PageSize?
        if let text = specs["hw:mem_page_size"] {
            guard let parsed = parsePageSize(text) else {
                throw bad("hw:mem_page_size must be small, large, any or a size such as 2048, 2MB or 1GB, not '\(text)'")
            }
            pageSize = parsed
        }
        var count = 1
        if let text = specs["hw:numa_nodes"] {
            guard let parsed = Int(text), parsed >= 1, parsed <= flavor.vcpus else {
                throw bad("hw:numa_nodes must be between 1 and the flavor's vCPUs (\(flavor.vcpus)), not '\(text)'")
            }
            count = parsed
        }
        guard specs["hw:numa_nodes"] != nil || policy != .shared || pageSize != nil else { return nil }

        var cells: [Cell] = []
        let explicit = (0..<count).map { (specs["hw:numa_cpus.\($0)"], specs["hw:numa_mem.\($0)"]) }
        if explicit.contains(where: { $0.0 != nil || $0.1 != nil }) {
            var seen = Set<Int>(), memory = 0
            for (index, pair) in explicit.enumerated() {
                guard let cpuText = pair.0, let memText = pair.1, let cpus = CPUList.parse(cpuText),
                    cpus.exclude.isEmpty, !cpus.include.isEmpty, let mem = Int(memText), mem > 0
                else { throw bad("hw:numa_cpus.\(index) and hw:numa_mem.\(index) must both be given for every cell") }
                guard cpus.include.allSatisfy({ $0 < flavor.vcpus && seen.insert($0).inserted }) else {
                    throw bad("hw:numa_cpus.\(index) names a vCPU twice or beyond the flavor's \(flavor.vcpus)")
                }
                memory += mem
                cells.append(Cell(vcpus: cpus.include, memoryMB: mem))
            }
            guard seen.count == flavor.vcpus, memory == flavor.memoryMB else {
                throw bad("hw:numa_cpus.N must cover every vCPU once and hw:numa_mem.N add up to the flavor's memory")
            }
        } else {
            guard flavor.vcpus % count == 0, flavor.memoryMB % count == 0 else {
                throw bad("\(flavor.vcpus) vCPUs and \(flavor.memoryMB) MB do not split evenly over \(count) NUMA nodes")
            }
            let per = flavor.vcpus / count
            for index in 0..<count {
                cells.append(Cell(vcpus: Array(index * per..<(index + 1) * per), memoryMB: flavor.memoryMB / count))
            }
        }
        if case .kb(let size) = pageSize {
            for cell in cells where (cell.memoryMB * 1024) % size != 0 {
                throw bad("each NUMA cell's memory must be a multiple of the \(size) KiB page size")
            }
        }
        return NUMARequest(cells: cells, cpuPolicy: policy, threadPolicy: threads, pageSize: pageSize, dedicatedVCPUs: mask)
    }

    /// `small`, `large`, `any`, or a size: a number of KiB, or with a unit (`2MB`, `1GB`, `2048KiB`).
    static func parsePageSize(_ text: String) -> PageSize? {
        switch text.lowercased() {
        case "small": return .small
        case "large": return .large
        case "any": return .any
        default: break
        }
        let lower = text.lowercased()
        let digits = lower.prefix { $0.isNumber }
        guard let number = Int(digits), number > 0 else { return nil }
        let unit = lower.dropFirst(digits.count)
        let factor: Int
        switch unit {
        case "", "k", "kb", "kib": factor = 1
        case "m", "mb", "mib": factor = 1024
        case "g", "gb", "gib": factor = 1024 * 1024
        default: return nil
        }
        return .kb(number * factor)
    }
}

/// What is taken of one host cell by the instances placed on it.
public struct NUMACellUsage: Hashable, Sendable, Codable {
    /// Host CPUs pinned to a guest vCPU, or held empty beside one (`isolate`).
    public var pinnedCPUs: Set<Int> = []
    /// Guest vCPUs floating over the cell's shared CPUs.
    public var sharedVCPUs = 0
    /// Memory in small pages.
    public var memoryMB = 0
    /// Huge pages used, by size in KiB.
    public var pages: [Int: Int] = [:]

    public init(pinnedCPUs: Set<Int> = [], sharedVCPUs: Int = 0, memoryMB: Int = 0, pages: [Int: Int] = [:]) {
        self.pinnedCPUs = pinnedCPUs
        self.sharedVCPUs = sharedVCPUs
        self.memoryMB = memoryMB
        self.pages = pages
    }
}

/// Where an instance's cells went: per guest cell, the host cell, the pinning and the pages.
public struct NUMAPlacement: Hashable, Sendable, Codable {
    public struct Cell: Hashable, Sendable, Codable {
        public var guestCell: Int
        public var hostCell: Int
        /// Guest vCPU → host CPU, for dedicated vCPUs.
        public var pinning: [Int: Int]
        /// Host CPUs held empty for an `isolate` thread policy (siblings of the pinned ones).
        public var reservedCPUs: [Int]
        /// Guest vCPUs floating over the cell's shared CPUs.
        public var sharedVCPUs: Int
        public var memoryMB: Int
        /// The page size backing the memory, KiB (4: small pages).
        public var pageSizeKB: Int

        private enum CodingKeys: String, CodingKey {
            case guestCell = "guest_cell", hostCell = "host_cell", pinning, reservedCPUs = "reserved_cpus"
            case sharedVCPUs = "shared_vcpus", memoryMB = "memory_mb", pageSizeKB = "page_size_kb"
        }
    }

    public var cells: [Cell]

    /// What the placement takes of each host cell, by cell id.
    public var usage: [Int: NUMACellUsage] {
        var result: [Int: NUMACellUsage] = [:]
        for cell in cells {
            var usage = result[cell.hostCell] ?? NUMACellUsage()
            usage.pinnedCPUs.formUnion(cell.pinning.values)
            usage.pinnedCPUs.formUnion(cell.reservedCPUs)
            usage.sharedVCPUs += cell.sharedVCPUs
            if cell.pageSizeKB == NUMACell.smallPageKB {
                usage.memoryMB += cell.memoryMB
            } else {
                usage.pages[cell.pageSizeKB, default: 0] += cell.memoryMB * 1024 / cell.pageSizeKB
            }
            result[cell.hostCell] = usage
        }
        return result
    }
}

/// How a requested PCI device must relate to the instance's cells (Nova's `numa_policy`).
public enum PCINUMAPolicy: String, Hashable, Sendable, Codable, CaseIterable {
    /// On one of the instance's cells, no exceptions.
    case required
    /// On one of the instance's cells when possible, anywhere otherwise.
    case preferred
    /// On one of the instance's cells, unless the device reports no NUMA cell at all.
    case legacy
    /// On the same socket as one of the instance's cells.
    case socket
}

/// Devices an instance asks for, as far as NUMA fitting is concerned: how many, by which policy, and how many
/// suitable free devices each host cell has (`nil` key: devices that report no cell).
public struct PCIAffinityRequest: Hashable, Sendable {
    public var count: Int
    public var policy: PCINUMAPolicy
    public var freeByCell: [Int?: Int]

    public init(count: Int, policy: PCINUMAPolicy, freeByCell: [Int?: Int]) {
        self.count = count
        self.policy = policy
        self.freeByCell = freeByCell
    }
}

/// Why an instance's cells do not fit a host.
public enum NUMAFitError: Error, Hashable, Sendable, CustomStringConvertible {
    case tooManyCells(requested: Int, host: Int)
    /// The best reason found for the cell that could go nowhere (the first guest cell that failed on every host cell).
    case cellDoesNotFit(guestCell: Int, reasons: [Int: String])
    case pciAffinity(String)

    public var description: String {
        switch self {
        case .tooManyCells(let requested, let host):
            "the instance asks for \(requested) NUMA cells and the host has \(host)"
        case .cellDoesNotFit(let guest, let reasons):
            "guest NUMA cell \(guest) fits no host cell: "
                + reasons.sorted { $0.key < $1.key }.map { "cell \($0.key): \($0.value)" }.joined(separator: "; ")
        case .pciAffinity(let text): text
        }
    }
}

/// Fits an instance's NUMA cells onto a host's (Nova's `numa_fit_instance_to_host`): every guest cell on its own
/// host cell, trying host cells in order of `strategy`, with per-cell CPU and memory oversubscription for
/// floating vCPUs and small pages, pinning for dedicated vCPUs by thread policy, huge pages by size, and the NUMA
/// affinity of requested PCI devices.
public struct NUMAFitter: Sendable {
    public enum Strategy: String, Sendable, Codable, CaseIterable {
        /// Fill the busiest cells first (keeps whole cells free for big instances).
        case pack
        /// Use the emptiest cells first (spreads load).
        case spread
    }

    public var cells: [NUMACell]
    /// Host CPUs that may be pinned (Nova's `cpu_dedicated_set`); none by default.
    public var dedicatedCPUs: Set<Int>
    /// Host CPUs floating vCPUs run on (Nova's `cpu_shared_set`); by default every CPU not dedicated.
    public var sharedCPUs: Set<Int>
    public var cpuAllocationRatio: Double
    public var ramAllocationRatio: Double
    public var strategy: Strategy

    public init(
        cells: [NUMACell], dedicatedCPUs: Set<Int> = [], sharedCPUs: Set<Int>? = nil, cpuAllocationRatio: Double = 1,
        ramAllocationRatio: Double = 1, strategy: Strategy = .pack
    ) {
        self.cells = cells.sorted { $0.id < $1.id }
        self.dedicatedCPUs = dedicatedCPUs
        self.sharedCPUs = sharedCPUs ?? Set(cells.flatMap(\.cpus)).subtracting(dedicatedCPUs)
        self.cpuAllocationRatio = cpuAllocationRatio
        self.ramAllocationRatio = ramAllocationRatio
        self.strategy = strategy
    }

    /// Places `request` on the host given what is already used, or says why it cannot.
    public func fit(
        _ request: NUMARequest, usage: [Int: NUMACellUsage] = [:], pci: [PCIAffinityRequest] = []
    ) -> Result<NUMAPlacement, NUMAFitError> {
        guard request.cells.count <= cells.count else {
            return .failure(.tooManyCells(requested: request.cells.count, host: cells.count))
        }
        // Host cells in the order the strategy prefers: by the share of their CPUs in use, then by id.
        let busy = { (cell: NUMACell) -> Double in
            let used = usage[cell.id].map { Double($0.pinnedCPUs.count + $0.sharedVCPUs) } ?? 0
            return cell.cpus.isEmpty ? 0 : used / Double(cell.cpus.count)
        }
        let ordered = cells.sorted { a, b in
            let (x, y) = (busy(a), busy(b))
            if x != y { return strategy == .pack ? x > y : x < y }
            return a.id < b.id
        }
        // Each guest cell's fit on each host cell does not depend on the others (each host cell takes one).
        var options: [[Int: NUMAPlacement.Cell]] = []
        var reasons: [[Int: String]] = []
        for (index, guest) in request.cells.enumerated() {
            var fits: [Int: NUMAPlacement.Cell] = [:]
            var why: [Int: String] = [:]
            for host in ordered {
                switch fitCell(guest, index: index, request: request, host: host, usage: usage[host.id] ?? NUMACellUsage()) {
                case .success(let cell): fits[host.id] = cell
                case .failure(let refusal): why[host.id] = refusal.text
                }
            }
            if fits.isEmpty { return .failure(.cellDoesNotFit(guestCell: index, reasons: why)) }
            options.append(fits)
            reasons.append(why)
        }
        let hardPCI = pci.filter { $0.policy != .preferred }
        var fallback: NUMAPlacement?
        var found: NUMAPlacement?
        var firstFailure: NUMAFitError?
        _ = search(ordered.map(\.id), options: options, chosen: []) { choice in
            let placement = NUMAPlacement(cells: choice)
            let hosts = Set(choice.map(\.hostCell))
            if let problem = pciProblem(hardPCI, hosts: hosts) {
                if firstFailure == nil { firstFailure = .pciAffinity(problem) }
                return false
            }
            if pciProblem(pci, hosts: hosts) == nil {
                found = placement
                return true
            }
            if fallback == nil { fallback = placement }
            return false
        }
        if let placement = found ?? fallback { return .success(placement) }
        return .failure(firstFailure ?? .pciAffinity("no combination of host cells fits"))
    }

    /// Tries guest cells one by one on distinct host cells in preference order; `accept` ends the search.
    private func search(
        _ order: [Int], options: [[Int: NUMAPlacement.Cell]], chosen: [NUMAPlacement.Cell],
        accept: ([NUMAPlacement.Cell]) -> Bool
    ) -> Bool {
        if chosen.count == options.count { return accept(chosen) }
        let used = Set(chosen.map(\.hostCell))
        for host in order where !used.contains(host) {
            guard let cell = options[chosen.count][host] else { continue }
            if search(order, options: options, chosen: chosen + [cell], accept: accept) { return true }
        }
        return false
    }

    /// Why the PCI requests cannot be met from devices on (or, by policy, off) the instance's cells, or `nil`.
    private func pciProblem(_ requests: [PCIAffinityRequest], hosts: Set<Int>) -> String? {
        let sockets = Set(cells.filter { hosts.contains($0.id) }.compactMap(\.socket))
        for request in requests {
            var available = 0
            for (cell, free) in request.freeByCell {
                switch request.policy {
                case .required, .preferred:
                    if let cell, hosts.contains(cell) { available += free }
                case .legacy:
                    if cell.map(hosts.contains) ?? true { available += free }
                case .socket:
                    if let cell, let socket = cells.first(where: { $0.id == cell })?.socket, sockets.contains(socket) {
                        available += free
                    }
                }
            }
            if available < request.count {
                return "\(request.count) PCI device(s) with NUMA policy \(request.policy.rawValue) are needed on cells "
                    + "\(hosts.sorted()) and \(available) are free there"
            }
        }
        return nil
    }

    /// One guest cell on one host cell: memory (pages or small pages with the RAM ratio) and CPUs (floating
    /// within the CPU ratio, dedicated by thread policy).
    func fitCell(
        _ guest: NUMARequest.Cell, index: Int, request: NUMARequest, host: NUMACell, usage: NUMACellUsage
    ) -> Result<NUMAPlacement.Cell, CellRefusal> {
        // Memory.
        let hugeSizes = host.pages.keys.filter { $0 != NUMACell.smallPageKB }.sorted(by: >)
        func freePages(_ size: Int) -> Int { (host.pages[size] ?? 0) - (usage.pages[size] ?? 0) }
        func fitsPages(_ size: Int) -> Bool {
            (guest.memoryMB * 1024) % size == 0 && guest.memoryMB * 1024 / size <= freePages(size)
        }
        let smallCapacity = Int(Double(host.smallPageMemoryMB) * (request.pageSize == nil ? ramAllocationRatio : 1))
        let fitsSmall = usage.memoryMB + guest.memoryMB <= smallCapacity
        var pageSize: Int?
        switch request.pageSize {
        case nil, .small?: pageSize = fitsSmall ? NUMACell.smallPageKB : nil
        case .large?: pageSize = hugeSizes.first(where: fitsPages)
        case .any?: pageSize = hugeSizes.first(where: fitsPages) ?? (fitsSmall ? NUMACell.smallPageKB : nil)
        case .kb(let size)?:
            pageSize = size == NUMACell.smallPageKB ? (fitsSmall ? size : nil) : (fitsPages(size) ? size : nil)
        }
        guard let pageSize else {
            switch request.pageSize {
            case nil, .small?:
                return .failure(CellRefusal("needs \(guest.memoryMB) MB, \(max(0, smallCapacity - usage.memoryMB)) MB free"))
            case .kb(let size)?:
                return .failure(CellRefusal("needs \(guest.memoryMB * 1024 / size) pages of \(size) KiB, \(max(0, freePages(size))) free"))
            default:
                return .failure(CellRefusal("no page size has room for \(guest.memoryMB) MB"))
            }
        }

        // CPUs.
        let dedicated = guest.vcpus.filter { request.dedicatedVCPUs.contains($0) }
        let floating = guest.vcpus.count - dedicated.count
        guard guest.vcpus.count <= host.cpus.count else {
            return .failure(CellRefusal("has \(host.cpus.count) CPUs for \(guest.vcpus.count) vCPUs"))
        }
        if floating > 0 {
            let shared = host.cpus.filter { sharedCPUs.contains($0) }.count
            let capacity = Int(Double(shared) * cpuAllocationRatio)
            guard usage.sharedVCPUs + floating <= capacity else {
                return .failure(CellRefusal("has room for \(max(0, capacity - usage.sharedVCPUs)) floating vCPUs, \(floating) asked"))
            }
        }
        var pinning: [Int: Int] = [:]
        var reserved: [Int] = []
        if !dedicated.isEmpty {
            switch pin(dedicated.count, policy: request.threadPolicy, host: host, usage: usage) {
            case .success(let (cpus, extra)):
                for (vcpu, cpu) in zip(dedicated, cpus) { pinning[vcpu] = cpu }
                reserved = extra
            case .failure(let reason): return .failure(reason)
            }
        }
        return .success(NUMAPlacement.Cell(
            guestCell: index, hostCell: host.id, pinning: pinning, reservedCPUs: reserved, sharedVCPUs: floating,
            memoryMB: guest.memoryMB, pageSizeKB: pageSize))
    }

    /// Chooses `count` free dedicated CPUs of `host` by thread policy: the CPUs in vCPU order, and the siblings
    /// held empty (`isolate`).
    func pin(
        _ count: Int, policy: NUMARequest.ThreadPolicy, host: NUMACell, usage: NUMACellUsage
    ) -> Result<([Int], [Int]), CellRefusal> {
        let usable = Set(host.cpus).intersection(dedicatedCPUs)
        // Per core: its threads that may be pinned and are free; a core is wholly free when all its threads are.
        let cores = host.siblings
        let free = cores.map { $0.filter { usable.contains($0) && !usage.pinnedCPUs.contains($0) } }
        let whole = cores.indices.filter { free[$0].count == cores[$0].count }
        let totalFree = free.map(\.count).reduce(0, +)
        switch policy {
        case .prefer:
            // Fullest free cores first, so a guest's vCPUs share as few cores as possible.
            guard totalFree >= count else { return .failure(CellRefusal("has \(totalFree) free dedicated CPUs, \(count) asked")) }
            let order = free.indices.filter { !free[$0].isEmpty }.sorted {
                free[$0].count != free[$1].count ? free[$0].count > free[$1].count : free[$0][0] < free[$1][0]
            }
            return .success((Array(order.flatMap { free[$0] }.prefix(count)), []))
        case .isolate:
            // One vCPU per wholly free core; its siblings are held empty.
            guard whole.count >= count else {
                return .failure(CellRefusal("has \(whole.count) wholly free cores for \(count) isolated vCPUs"))
            }
            let chosen = whole.prefix(count)
            return .success((chosen.map { cores[$0][0] }, chosen.flatMap { cores[$0].dropFirst() }))
        case .require:
            // vCPUs on thread siblings of wholly free cores.
            guard host.threadsPerCore > 1 else { return .failure(CellRefusal("has no SMT threads (hw:cpu_thread_policy=require)")) }
            let pairs = whole.filter { cores[$0].count > 1 }
            let available = pairs.map { cores[$0].count }.reduce(0, +)
            guard available >= count else {
                return .failure(CellRefusal("has \(available) free sibling threads on whole cores, \(count) asked"))
            }
            return .success((Array(pairs.flatMap { cores[$0] }.prefix(count)), []))
        }
    }
}

/// Why one guest cell does not fit one host cell.
struct CellRefusal: Error, Hashable {
    var text: String
    init(_ text: String) { self.text = text }
}
