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

    func run() async throws {
        let query = host.map { "?host=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) } ?? ""
        let answer = try await APIClient(options: client).call(.GET, "/compute/v1/nodes" + query)
        if client.json { return try APIClient.printJSON(answer) }
        let nodes = (answer as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
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
        let base = client.url.hasSuffix("/") ? String(client.url.dropLast()) : client.url
        var request = HTTPClientRequest(url: base + "/compute/v1/events" + (after.map { "?after=\($0)" } ?? ""))
        request.headers.add(name: "X-Auth-Token", value: client.resolvedToken())
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await HTTPClient.shared.execute(request, timeout: .hours(24 * 365))
        guard response.status.code == 200 else {
            throw APIError(status: Int(response.status.code), message: "cannot follow events")
        }
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
