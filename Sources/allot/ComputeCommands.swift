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
        if client.json { return try APIClient.printJSON(answer) }
        let nodes = (answer as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        if topology {
            for node in nodes {
                print("\(node["hostname"] as? String ?? "") (\(node["uuid"] as? String ?? ""))")
                let claims = node["host_claims"] as? [String: [String: Any]] ?? [:]
                let status = node["pci_device_status"] as? [String: [String: String]] ?? [:]
                for line in TopologyText.lines(node["topology"] as? [String: Any], claims: claims, status: status) {
                    print("  " + line)
                }
            }
            return
        }
        printTable(["UUID", "HOSTNAME", "HOST", "DRIVER", "INSTANCES", "USED", "FREE", "STATE"], nodes.map { node in
            let stats = node["stats"] as? [String: Any]
            return [
                node["uuid"] as? String ?? "", node["hostname"] as? String ?? "", node["host"] as? String ?? "",
                node["driver"] as? String ?? "", "\(stats?["num_instances"] ?? 0)", amounts(node["usage"]),
                amounts(node["free"]), (node["disabled"] as? Bool ?? false) ? "disabled" : "enabled",
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
        if client.json { return try APIClient.printJSON(answer) }
        let instances = (answer as? [String: Any])?["instances"] as? [[String: Any]] ?? []
        printTable(["UUID", "NODE", "FLAVOR", "VM STATE", "TASK STATE", "PROJECT"], instances.map { instance in
            let flavor = instance["flavor"] as? [String: Any]
            return [
                instance["uuid"] as? String ?? "", instance["node"] as? String ?? "",
                "\(flavor?["name"] ?? "") (\(flavor?["vcpus"] ?? 0) vcpu, \(flavor?["memory_mb"] ?? 0) MiB)",
                instance["vm_state"] as? String ?? "", instance["task_state"] as? String ?? "-",
                instance["project_id"] as? String ?? "",
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
        if client.json { return try APIClient.printJSON(answer) }
        let migrations = (answer as? [String: Any])?["migrations"] as? [[String: Any]] ?? []
        printTable(["UUID", "INSTANCE", "KIND", "STATUS", "SOURCE", "DEST"], migrations.map { migration in
            [
                migration["uuid"] as? String ?? "", migration["instance_uuid"] as? String ?? "",
                migration["kind"] as? String ?? "", migration["status"] as? String ?? "",
                migration["source_node"] as? String ?? "", migration["dest_node"] as? String ?? "",
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
        if client.json { return try APIClient.printJSON(answer) }
        let report = answer as? [String: Any] ?? [:]
        func count(_ key: String) -> Int { (report[key] as? [Any])?.count ?? (report[key] as? [String: Any])?.count ?? 0 }
        print("nodes \(report["nodes"] ?? 0): added \(count("added")), removed \(count("removed")), "
            + "saved \(count("saved")), invalid \(count("invalid")), removal refused \(count("removal_refused"))")
        print("allocations: repaired \(count("repaired")), deleted \(count("deleted_allocations")), "
            + "unknown consumers \(count("unknown_consumers")), refused repairs \(count("refused_repairs")); orphans on \(count("orphans")) node(s); "
            + "drift on \(count("drift")) node(s)")
        for key in ["invalid", "removal_refused", "orphans"] {
            for (name, value) in (report[key] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
                print("  \(key.replacingOccurrences(of: "_", with: " ")) \(name): \(value)")
            }
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

/// A node's topology (its JSON form: `numa_cells`, `pci_devices`) as lines of text.
enum TopologyText {
    /// `claims`: consumer → `{"numa": …, "pci_devices": […]}` (what `GET /compute/v1/nodes` gives as `host_claims`).
    /// `status`: address → `{"status": …, "consumer": …}` (`pci_device_status`).
    static func lines(
        _ topology: [String: Any]?, claims: [String: [String: Any]] = [:], status: [String: [String: String]] = [:]
    ) -> [String] {
        guard let topology else { return ["no NUMA or PCI topology reported"] }
        var pinnedBy: [Int: String] = [:], heldBy: [String: String] = [:]
        for (consumer, claim) in claims {
            for cell in (claim["numa"] as? [String: Any])?["cells"] as? [[String: Any]] ?? [] {
                for cpu in (cell["pinning"] as? [String: Int] ?? [:]).values { pinnedBy[cpu] = consumer }
                for cpu in cell["reserved_cpus"] as? [Int] ?? [] { pinnedBy[cpu] = consumer }
            }
            for address in claim["pci_devices"] as? [String] ?? [] { heldBy[address] = consumer }
        }
        var lines: [String] = []
        for cell in topology["numa_cells"] as? [[String: Any]] ?? [] {
            let cpus = cell["cpus"] as? [Int] ?? []
            let cores = cell["siblings"] as? [[Int]] ?? []
            let pages = (cell["pages"] as? [String: Int] ?? [:]).sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }
                .map { "\($0.value) × \(Self.size(kb: Int($0.key) ?? 0))" }
            var line = "NUMA cell \(cell["id"] as? Int ?? 0): CPUs \(CPUList.format(cpus)) (\(cores.count) cores"
            let smt: [[Int]] = cores.filter { $0.count > 1 }
            if !smt.isEmpty {
                let groups: [String] = smt.map { core in core.map { String($0) }.joined(separator: "+") }
                line += ", siblings " + groups.joined(separator: " ")
            }
            line += "), \(cell["memory_mb"] as? Int ?? 0) MiB"
            if !pages.isEmpty { line += ", huge pages " + pages.joined(separator: ", ") }
            if let socket = cell["socket"] as? Int { line += ", socket \(socket)" }
            let pinned = cpus.filter { pinnedBy[$0] != nil }
            if !pinned.isEmpty { line += ", pinned \(CPUList.format(pinned))" }
            lines.append(line)
        }
        let devices = topology["pci_devices"] as? [[String: Any]] ?? []
        if devices.isEmpty { lines.append("no PCI devices") }
        for device in devices {
            var line = "PCI \(device["address"] as? String ?? "") \(device["vendor_id"] as? String ?? ""):"
                + "\(device["product_id"] as? String ?? "") class \(device["class_code"] as? String ?? "")"
                + " \(device["type"] as? String ?? "")"
            if let parent = device["parent_address"] as? String { line += " of \(parent)" }
            line += (device["numa_node"] as? Int).map { ", NUMA cell \($0)" } ?? ", no NUMA cell"
            if let driver = device["driver"] as? String { line += ", driver \(driver)" }
            let address = device["address"] as? String ?? ""
            if let entry = status[address], let state = entry["status"] {
                line += ", " + state + (entry["consumer"].map { " (\($0))" } ?? "")
            } else if let holder = heldBy[address] {
                line += ", held by \(holder)"
            }
            lines.append(line)
        }
        // Devices the host no longer reports but an instance still holds.
        for (address, entry) in status.sorted(by: { $0.key < $1.key }) where entry["status"] == "removed" {
            lines.append("PCI \(address) removed from the host, still held (\(entry["consumer"] ?? ""))")
        }
        return lines
    }

    static func size(kb: Int) -> String {
        kb >= 1 << 20 && kb % (1 << 20) == 0 ? "\(kb >> 20) GiB" : kb >= 1024 && kb % 1024 == 0 ? "\(kb >> 10) MiB" : "\(kb) KiB"
    }
}
