public import AllotCore
public import Foundation
import Synchronization

/// What a driver reports for one node.
public enum NodeResources: Sendable, Equatable {
    /// A hypervisor host: raw totals, to which the tracker applies allocation ratios and reservations.
    case host(HostInventory)
    /// A bare-metal machine offered whole as one unit of a custom class; unavailable (maintenance, broken)
    /// machines are reported with everything reserved.
    case baremetal(resourceClass: String, available: Bool)
}

/// One node as a driver sees it.
public struct DriverNode: Sendable, Equatable {
    /// The node's stable uuid when the driver knows one (bare metal); otherwise the tracker adopts the node by
    /// hostname or makes a uuid once and keeps it.
    public var uuid: String?
    public var hostname: String
    /// The node's resources, or why the driver could not make sense of it (that node is skipped, others go on).
    public var resources: Result<NodeResources, HostDriverError>
    /// Traits the driver knows the node has (besides `COMPUTE_NODE`, which the tracker adds).
    public var traits: Set<String>
    /// The uuids of the instances really running on the node, or `nil` when the driver cannot tell.
    public var running: Set<String>?
    /// The memory (MiB) of the guests running on the node, by uuid, when the driver can tell (`libvirt`): an orphan's
    /// (a guest the ledger does not know) is held back from the node's memory until it goes away, as Nova does.
    public var guestMemoryMB: [String: Int]
    /// NUMA cells and PCI devices of a node whose resources do not carry them (a bare-metal machine's, for the
    /// record); a host's come with its ``HostInventory``.
    public var topology: HostTopology?

    public init(
        uuid: String? = nil, hostname: String, resources: Result<NodeResources, HostDriverError>, traits: Set<String> = [],
        running: Set<String>? = nil, guestMemoryMB: [String: Int] = [:], topology: HostTopology? = nil
    ) {
        self.guestMemoryMB = guestMemoryMB
        self.topology = topology
        self.uuid = uuid
        self.hostname = hostname
        self.resources = resources
        self.traits = traits
        self.running = running
    }
}

/// Where the tracker gets its nodes (with the instances really running on them, when it can tell) and host metrics.
public protocol HostDriver: Sendable {
    /// `linux`, `fake`, `baremetal`.
    var name: String { get }
    /// The nodes managed now. Throws only when the driver cannot report anything at all (e.g. its inventory file
    /// is unreadable); a problem with one node is reported in that node's `resources`.
    func nodes() async throws -> [DriverNode]
    /// Host metrics (`cpu.percent`, `load.1`, …) for `compute.metrics.update` events; empty when none.
    func metrics() async -> [String: Double]
    /// Signals that something on the host changed (a guest started or stopped: libvirt's lifecycle events), so the
    /// tracker audits now instead of at the next period; `nil` when the driver has no such events.
    var changes: AsyncStream<Void>? { get }
}

extension HostDriver {
    public var changes: AsyncStream<Void>? { nil }
}

extension LinuxHostDriver: HostDriver {
    public var name: String { "linux" }

    public func nodes() async throws -> [DriverNode] {
        let hostname = ProcessInfo.processInfo.hostName
        let resources: Result<NodeResources, HostDriverError>
        do {
            resources = .success(.host(try discover()))
        } catch let error as HostDriverError {
            resources = .failure(error)
        }
        return [DriverNode(hostname: hostname, resources: resources)]
    }

    public func metrics() async -> [String: Double] {
        var result: [String: Double] = [:]
        if let text = try? String(contentsOfFile: root + "/proc/loadavg", encoding: .utf8) {
            let fields = text.split(separator: " ")
            for (index, key) in ["load.1", "load.5", "load.15"].enumerated() where index < fields.count {
                result[key] = Double(fields[index])
            }
        }
        if let text = try? String(contentsOfFile: root + "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        {
            let values = line.split(separator: " ").dropFirst().compactMap { Double($0) }
            if values.count >= 4 {
                let total = values.reduce(0, +)
                let idle = values[3] + (values.count > 4 ? values[4] : 0)
                result["cpu.user.time"] = values[0]
                result["cpu.kernel.time"] = values[2]
                result["cpu.idle.time"] = values[3]
                if total > 0 { result["cpu.percent"] = (total - idle) / total * 100 }
            }
        }
        return result
    }
}

/// Nodes described by a JSON file, for tests, simulation and bare-metal farms.
///
/// The file is read again on every discovery, so nodes can appear, disappear or change:
/// `{"nodes": [{"hostname": "n1", "uuid": "…", "vcpus": 8, "memory_mb": 16384, "disk_gb": 100, "traits": []}]}`
/// for the `fake` driver, and `{"nodes": [{"uuid": "…", "name": "bm-1", "resource_class": "baremetal.gold",
/// "maintenance": false, "traits": ["CUSTOM_GOLD"]}]}` for `baremetal`. A `fake` node may list the instances
/// running there (`"running": ["uuid", …]`) and guests with their memory
/// (`"guests": [{"uuid": "…", "memory_mb": N}]`, each also running).
public struct FileHostDriver: HostDriver {
    public enum Kind: String, Sendable { case fake, baremetal }

    public let kind: Kind
    public let path: String
    /// The file's bytes at the last pass and what they parsed to: an unchanged file (the usual audit) is compared,
    /// not parsed again.
    private let lastParse = LastParse()

    private final class LastParse: Sendable {
        let value = Mutex<(data: Data, nodes: [DriverNode])?>(nil)
    }

    public init(kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    public var name: String { kind.rawValue }

    public func nodes() async throws -> [DriverNode] {
        guard let data = FileManager.default.contents(atPath: path) else { throw HostDriverError.unreadable(path: path) }
        if let nodes = lastParse.value.withLock({ last in last.flatMap { $0.data == data ? $0.nodes : nil } }) { return nodes }
        let nodes = try Self.parse(data, kind: kind, path: path)
        lastParse.value.withLock { $0 = (data, nodes) }
        return nodes
    }

    public func metrics() async -> [String: Double] { [:] }

    /// Parses a node file. A malformed entry becomes a failed node; a malformed file is an error.
    public static func parse(_ data: Data, kind: Kind, path: String) throws -> [DriverNode] {
        guard let object = try? JSONValue.parse(data), let entries = object["nodes"]?.arrayValue else {
            throw HostDriverError.malformed(path: path, reason: "expected an object with a \"nodes\" array")
        }
        var result: [DriverNode] = []
        var seen = Set<String>()
        for (index, entry) in entries.enumerated() {
            guard let fields = entry.objectValue else {
                throw HostDriverError.malformed(path: path, reason: "node \(index) is not an object")
            }
            let hostname = fields[kind == .fake ? "hostname" : "name"]?.stringValue ?? ""
            guard !hostname.isEmpty, hostname.utf8.count <= 255 else {
                throw HostDriverError.malformed(path: path, reason: "node \(index) has no \(kind == .fake ? "hostname" : "name")")
            }
            guard seen.insert(hostname).inserted else {
                throw HostDriverError.malformed(path: path, reason: "node name \(hostname) appears twice")
            }
            let uuid = fields["uuid"]?.stringValue
            let traits = Set(Self.strings(fields["traits"]) ?? [])
            var resources = Self.resources(fields, kind: kind, uuid: uuid)
            var topology: HostTopology?
            if kind == .baremetal, case .success = resources {
                switch Self.topology(fields) {
                case .success(let found):
                    topology = found.cells.isEmpty && found.devices.isEmpty ? nil : found
                    if let problem = topology?.problem { resources = .failure(.invalid(field: "topology", reason: problem)) }
                case .failure(let error): resources = .failure(error)
                }
            }
            // Guests with their memory (fake driver): each one is also running.
            var running = Self.strings(fields["running"]).map(Set.init)
            var guestMemory: [String: Int] = [:]
            if kind == .fake, fields["guests"] != nil {
                switch Self.guests(fields["guests"]) {
                case .success(let guests):
                    guestMemory = guests
                    running = (running ?? []).union(guests.keys)
                case .failure(let error):
                    if case .success = resources { resources = .failure(error) }
                }
            }
            result.append(DriverNode(
                uuid: uuid, hostname: hostname, resources: resources, traits: traits,
                running: running, guestMemoryMB: guestMemory, topology: topology))
        }
        return result
    }

    /// A node entry's `guests`: `[{"uuid": "…", "memory_mb": N}]` (`memory_mb` may be left out: unknown, 0), as
    /// memory by uuid; a list that is not one, a bad or repeated uuid or a negative memory makes the node invalid.
    static func guests(_ value: JSONValue?) -> Result<[String: Int], HostDriverError> {
        guard let items = value?.arrayValue else {
            return .failure(.invalid(field: "guests", reason: "must be a list"))
        }
        var result: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            guard let guest = item.objectValue else {
                return .failure(.invalid(field: "guests", reason: "guest \(index) is not an object"))
            }
            guard let uuid = guest["uuid"]?.stringValue, UUIDSyntax.isValid(uuid) else {
                return .failure(.invalid(field: "guests", reason: "guest \(index) has no valid uuid"))
            }
            var memory = 0
            if let field = guest["memory_mb"] {
                guard let value = field.intValue, value >= 0, value <= Limits.maxInt else {
                    return .failure(.invalid(field: "guests", reason:
                        "guest \(uuid): memory_mb must be an integer between 0 and \(Limits.maxInt)"))
                }
                memory = value
            }
            guard result.updateValue(memory, forKey: uuid) == nil else {
                return .failure(.invalid(field: "guests", reason: "guest \(uuid) is listed twice"))
            }
        }
        return .success(result)
    }

    /// A list of strings, or `nil` when `value` is missing or anything else.
    private static func strings(_ value: JSONValue?) -> [String]? {
        guard let items = value?.arrayValue else { return nil }
        let strings = items.compactMap(\.stringValue)
        return strings.count == items.count ? strings : nil
    }

    private static func resources(
        _ fields: [String: JSONValue], kind: Kind, uuid: String?
    ) -> Result<NodeResources, HostDriverError> {
        if let uuid, !UUIDSyntax.isValid(uuid) { return .failure(.invalid(field: "uuid", reason: "\(uuid) is not a UUID")) }
        if let traits = fields["traits"], strings(traits) == nil {
            return .failure(.invalid(field: "traits", reason: "must be a list of trait names"))
        }
        for trait in strings(fields["traits"]) ?? [] where !Trait.isCustomName(trait) && !Trait.standardSet.contains(trait) {
            return .failure(.invalid(field: "traits", reason: "no such trait \(trait)"))
        }
        switch kind {
        case .fake:
            func integer(_ key: String) -> Int? { fields[key]?.intValue }
            guard let vcpus = integer("vcpus"), let memory = integer("memory_mb") else {
                return .failure(.invalid(field: "vcpus/memory_mb", reason: "missing or not integers"))
            }
            let topology: HostTopology
            switch Self.topology(fields) {
            case .success(let found): topology = found
            case .failure(let error): return .failure(error)
            }
            let inventory = HostInventory(
                vcpus: vcpus, memoryMB: memory, diskGB: integer("disk_gb") ?? 0, cells: topology.cells,
                devices: topology.devices)
            if let problem = inventory.problem { return .failure(problem) }
            return .success(.host(inventory))
        case .baremetal:
            guard uuid != nil else { return .failure(.invalid(field: "uuid", reason: "a bare-metal node needs its uuid")) }
            guard let rc = fields["resource_class"]?.stringValue, !rc.isEmpty else {
                return .failure(.invalid(field: "resource_class", reason: "missing"))
            }
            let name = "CUSTOM_" + rc.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
            guard ResourceClass.validated(name) != nil else {
                return .failure(.invalid(field: "resource_class", reason: "\(rc) does not make a class name"))
            }
            let maintenance = fields["maintenance"] == .bool(true)
            return .success(.baremetal(resourceClass: name, available: !maintenance))
        }
    }
}

extension FileHostDriver {
    /// A node entry's `numa_cells` and `pci_devices` (empty when it has neither).
    static func topology(_ fields: [String: JSONValue]) -> Result<HostTopology, HostDriverError> {
        for key in ["numa_cells", "pci_devices"] where fields[key] != nil && fields[key]?.arrayValue == nil {
            return .failure(.invalid(field: key, reason: "must be a list"))
        }
        do {
            var topology = HostTopology(cells: [])
            if let value = fields["numa_cells"] {
                topology.cells = try JSONCoding.decode([NUMACell].self, from: value)
            }
            if let value = fields["pci_devices"] {
                topology.devices = try JSONCoding.decode([PCIDevice].self, from: value)
            }
            return .success(topology)
        } catch {
            return .failure(.invalid(field: "numa_cells/pci_devices", reason: describe(error)))
        }
    }

    /// A decoding error in a few words: what is wrong and where.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "not valid JSON for a topology" }
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context)) lacks \"\(key.stringValue)\""
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "not valid JSON for a topology"
        }
    }
}

/// UUID text as Placement accepts it (with or without dashes).
enum UUIDSyntax {
    static func isValid(_ text: String) -> Bool { UUID(uuidString: text) != nil }
}
