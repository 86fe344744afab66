import AllotCore
import AllotTracker
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// `allot nodes`: the compute nodes, with capacity, usage and state.
struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List compute nodes with their capacity, usage and stats.")

    @OptionGroup var client: ClientOptions

    @Option(help: "Only the nodes managed by this host.")
    var host: String?

    @Flag(help: "Also show each node's NUMA cells (CPUs, thread siblings, memory, huge pages) and PCI devices.")
    var topology = false

    func run() async throws {
        var query: [String] = []
        if let host { query.append("host=" + (host.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? host)) }
        if topology { query.append("topology=true") }
        let path = "/compute/v1/nodes" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let answer = try await APIClient(options: client).call(.GET, path)
        if client.json { return APIClient.printJSON(answer) }
        let nodes = try APIClient.read(APIAnswers.NodeList.self, answer).nodes
        if topology {
            for node in nodes {
                print("\(node.hostname) (\(node.uuid))")
                let lines = TopologyText.lines(
                    node.topology, claims: node.hostClaims ?? [:], status: node.pciDeviceStatus ?? [:])
                for line in lines { print("  " + line) }
            }
            return
        }
        printTable(["UUID", "HOSTNAME", "HOST", "DRIVER", "INSTANCES", "USED", "FREE", "STATE"], nodes.map { node in
            [
                node.uuid, node.hostname, node.host, node.driver, "\(node.stats["num_instances"] ?? 0)",
                amounts(node.usage), amounts(node.free), node.disabled ? "disabled" : "enabled",
            ]
        })
    }
}

/// `allot instances`: the instances in the ledger.
struct Instances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List instances in the compute ledger.")

    @OptionGroup var client: ClientOptions

    @Option(help: "Only the instances on this node (uuid).")
    var node: String?

    @Flag(help: "Include deleted instances.")
    var deleted = false

    func run() async throws {
        var query: [String] = []
        if let node { query.append("node=\(node)") }
        if deleted { query.append("deleted=true") }
        let path = "/compute/v1/instances" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let answer = try await APIClient(options: client).call(.GET, path)
        if client.json { return APIClient.printJSON(answer) }
        let instances = try APIClient.read(APIAnswers.InstanceList.self, answer).instances
        printTable(["UUID", "NODE", "FLAVOR", "VM STATE", "TASK STATE", "PROJECT"], instances.map { instance in
            [
                instance.uuid, instance.node,
                "\(instance.flavor.name) (\(instance.flavor.vcpus) vcpu, \(instance.flavor.memoryMB) MiB)",
                instance.vmState, instance.taskState ?? "-", instance.projectID,
            ]
        })
    }
}

/// `allot migrations`: moves in the ledger.
struct Migrations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List migrations (resizes, moves, evacuations).")

    @OptionGroup var client: ClientOptions

    @Option(help: "Only moves from or to this node (uuid).")
    var node: String?

    @Flag(help: "Only moves still in progress.")
    var inProgress = false

    func run() async throws {
        var query: [String] = []
        if let node { query.append("node=\(node)") }
        if inProgress { query.append("in_progress=true") }
        let path = "/compute/v1/migrations" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let answer = try await APIClient(options: client).call(.GET, path)
        if client.json { return APIClient.printJSON(answer) }
        let migrations = try APIClient.read(APIAnswers.MigrationList.self, answer).migrations
        printTable(["UUID", "INSTANCE", "KIND", "STATUS", "SOURCE", "DEST"], migrations.map { migration in
            [
                migration.uuid, migration.instanceUUID, migration.kind, migration.status, migration.sourceNode,
                migration.destNode,
            ]
        })
    }
}

/// `allot audit`: runs the embedded agent's audit now.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audit now: re-read the host, rebuild usage from the ledger, heal Placement, report orphans.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let answer = try await APIClient(options: client).call(.POST, "/compute/v1/audit")
        if client.json { return APIClient.printJSON(answer) }
        let report = try APIClient.read(APIAnswers.Audit.self, answer)
        print("nodes \(report.nodes): added \(report.added.count), removed \(report.removed.count), "
            + "saved \(report.saved.count), invalid \(report.invalid.count), removal refused \(report.removalRefused.count)")
        print("allocations: repaired \(report.repaired.count), deleted \(report.deletedAllocations.count), "
            + "unknown consumers \(report.unknownConsumers.count), refused repairs \(report.refusedRepairs.count); "
            + "orphans on \(report.orphans.count) node(s); drift on \(report.drift.count) node(s)")
        for (name, reason) in report.invalid.sorted(by: { $0.key < $1.key }) { print("  invalid \(name): \(reason)") }
        for (name, reason) in report.removalRefused.sorted(by: { $0.key < $1.key }) {
            print("  removal refused \(name): \(reason)")
        }
        for (name, consumers) in report.orphans.sorted(by: { $0.key < $1.key }) {
            let memory = report.orphanMemoryMB?[name].map { " (\($0) MiB held back)" } ?? ""
            print("  orphans \(name): \(consumers)\(memory)")
        }
        for (name, instances) in (report.missing ?? [:]).sorted(by: { $0.key < $1.key }) {
            print("  missing \(name): \(instances)")
        }
    }
}

/// `allot events`: follows the tracker's event stream.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow tracker events (claims, moves, audits, compute.metrics.update) as JSON lines.")

    @OptionGroup var client: ClientOptions

    @Option(help: "First replay the kept events after this sequence number.")
    var after: Int?

    @Option(help: "Stop after this many events.")
    var count: Int?

    func run() async throws {
        let service: ServiceClient
        do {
            service = try ServiceClient(
                url: client.url, token: client.resolvedToken(), tls: client.tls.clientTLS, dedicated: true)
        } catch {
            throw ValidationError(error.description)
        }
        do {
            try await follow(service)
        } catch {
            try await service.shutdown()
            throw error
        }
        try await service.shutdown()
    }

    private func follow(_ service: ServiceClient) async throws {
        let response = try await service.stream(
            "/compute/v1/events" + (after.map { "?after=\($0)" } ?? ""), accept: "text/event-stream",
            timeout: .hours(24 * 365))
        var seen = 0
        var pending = ""
        for try await buffer in response.body {
            pending += String(buffer: buffer)
            while let end = pending.range(of: "\n\n") {
                let block = pending[..<end.lowerBound]
                pending = String(pending[end.upperBound...])
                for line in block.split(separator: "\n") where line.hasPrefix("data: ") {
                    print(line.dropFirst(6))
                    seen += 1
                    if let count, seen >= count { return }
                }
            }
        }
    }
}

/// A node's topology (its cells and devices, as the API's `topology` or the host driver give them) as lines of text.
enum TopologyText {
    /// `claims`: consumer → what it holds (`host_claims` of `GET /compute/v1/nodes`: pinned CPUs, pages, devices).
    /// `status`: address → the device's status and holder (`pci_device_status`).
    static func lines(
        _ topology: HostTopology?, claims: [String: APIAnswers.HostClaim] = [:],
        status: [String: APIAnswers.DeviceStatus] = [:]
    ) -> [String] {
        guard let topology else { return ["no NUMA or PCI topology reported"] }
        var pinnedBy: [Int: String] = [:], heldBy: [String: String] = [:]
        for (consumer, claim) in claims {
            for cell in claim.numa?.cells ?? [] {
                for cpu in cell.pinning.values { pinnedBy[cpu] = consumer }
                for cpu in cell.reservedCPUs { pinnedBy[cpu] = consumer }
            }
            for address in claim.pciDevices { heldBy[address] = consumer }
        }
        var lines: [String] = []
        for cell in topology.cells {
            let pages = cell.pages.sorted { $0.key < $1.key }.map { "\($0.value) × \(Self.size(kb: $0.key))" }
            var line = "NUMA cell \(cell.id): CPUs \(CPUList.format(cell.cpus)) (\(cell.siblings.count) cores"
            let smt = cell.siblings.filter { $0.count > 1 }
            if !smt.isEmpty {
                let groups: [String] = smt.map { core in core.map { String($0) }.joined(separator: "+") }
                line += ", siblings " + groups.joined(separator: " ")
            }
            line += "), \(cell.memoryMB) MiB"
            if !pages.isEmpty { line += ", huge pages " + pages.joined(separator: ", ") }
            if let socket = cell.socket { line += ", socket \(socket)" }
            let pinned = cell.cpus.filter { pinnedBy[$0] != nil }
            if !pinned.isEmpty { line += ", pinned \(CPUList.format(pinned))" }
            lines.append(line)
        }
        if topology.devices.isEmpty { lines.append("no PCI devices") }
        for device in topology.devices {
            var line = "PCI \(device.address) \(device.vendorID):\(device.productID) class \(device.classCode)"
                + " \(device.kind.rawValue)"
            if let parent = device.parentAddress { line += " of \(parent)" }
            line += device.numaNode.map { ", NUMA cell \($0)" } ?? ", no NUMA cell"
            if let driver = device.driver { line += ", driver \(driver)" }
            if let entry = status[device.address] {
                line += ", " + entry.status + (entry.consumer.map { " (\($0))" } ?? "")
            } else if let holder = heldBy[device.address] {
                line += ", held by \(holder)"
            }
            lines.append(line)
        }
        // Devices the host no longer reports but an instance still holds.
        for (address, entry) in status.sorted(by: { $0.key < $1.key }) where entry.status == "removed" {
            lines.append("PCI \(address) removed from the host, still held (\(entry.consumer ?? ""))")
        }
        return lines
    }

    static func size(kb: Int) -> String {
        kb >= 1 << 20 && kb % (1 << 20) == 0 ? "\(kb >> 20) GiB" : kb >= 1024 && kb % 1024 == 0 ? "\(kb >> 10) MiB" : "\(kb) KiB"
    }
}
