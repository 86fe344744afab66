import AllotCore
import AllotTracker
import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// `allot bench-claims`: a burst of build claims through the compute API, timed, then the books checked.
struct BenchClaims: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-claims",
        abstract: "Drive a burst of build claims through the compute API, time them, and check the books.",
        discussion: """
            Each of --concurrency clients holds one keep-alive connection and sends `POST /compute/v1/instances`
            builds one after the other until --claims are sent; claim i goes to node i mod N of the first --nodes
            nodes of `GET /compute/v1/nodes`. Each claim is timed from request to answer (the server answers once
            the claim is durable). Afterwards, on every node used, Placement's usage and the ledger's must each
            have grown by exactly the answered claims (exit status 1 otherwise, and when --delete cannot delete an
            instance). --server-pid adds the server's CPU
            per claim (from /proc), to compare with this client's own.
            --url may be given more than once, for `allot serve` replicas over one database: client i sends to URL
            i mod the number of URLs, and the nodes and the books are read through the first. --server-pid may be
            repeated as well (one per replica); their CPU is summed.
            Example: `allot bench-claims --url http://127.0.0.1:8778 --concurrency 64 --claims 5000 --nodes 8`.
            """)

    @Option(
        name: .customLong("url"),
        help: "The Allot API (env ALLOT_URL); repeat for replicas over one database, clients round-robin.")
    var urls: [String] = [env("ALLOT_URL") ?? "http://127.0.0.1:8778"]
    @Option(help: "API token (env ALLOT_TOKEN or OS_TOKEN; default: the admin token beside --database, else 'admin' for noauth).")
    var token: String = env("ALLOT_TOKEN") ?? env("OS_TOKEN") ?? ""
    @Option(help: "The database `allot serve` uses, to find its token file (env ALLOT_DATABASE).")
    var database: String = env("ALLOT_DATABASE") ?? "./allot.sqlite"
    @Flag(help: "Print the figures as one JSON object.") var json = false
    @OptionGroup(title: "TLS") var tls: ClientTLSOptions
    @Option(help: "Concurrent clients, each with a keep-alive connection of its own.") var concurrency = 1
    @Option(help: "Claims to send in all.") var claims = 1000
    @Option(help: "Spread the claims over the first N nodes (default: every node).") var nodes: Int?
    @Option(help: "VCPUs per claim.") var vcpus = 1
    @Option(help: "Memory per claim, MiB.") var memoryMb = 1
    @Option(
        name: .customLong("server-pid"),
        help: "The server's process id, to report its CPU time per claim (Linux /proc); repeat for replicas (summed).")
    var serverPids: [Int32] = []
    @Flag(help: "Delete the claimed instances afterwards (not timed).") var delete = false

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard claims >= 1 else { throw ValidationError("--claims must be at least 1") }
        if let nodes, nodes < 1 { throw ValidationError("--nodes must be at least 1") }
        guard vcpus >= 1, memoryMb >= 1 else { throw ValidationError("--vcpus and --memory-mb must be at least 1") }
        guard concurrency >= urls.count else { throw ValidationError("--concurrency must be at least the number of --url") }
    }

    private struct NodeList: Decodable {
        struct Node: Decodable {
            let uuid: String
            let usage: [String: Int]
        }
        let nodes: [Node]
    }

    private struct Usages: Decodable {
        let usages: [String: Int]
    }

    private struct Build: Encodable {
        struct Flavor: Encodable {
            let name = "bench"
            let vcpus: Int
            let memory_mb: Int
            let root_gb = 0
            let ephemeral_gb = 0
            let swap = 0
            let extra_specs: [String: String] = [:]
        }
        let uuid: String
        let node: String
        let project_id = "bench"
        let user_id = "bench"
        let flavor: Flavor
    }

    /// The claim numbers the clients take, one by one.
    private final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
    }

    /// What one client saw.
    private struct Tally: Sendable {
        var latencies: [Double] = []
        var answered: [String: Int] = [:]
        var instances: [String] = []
        var refusals: [String: Int] = [:]
    }

    func run() async throws {
        let token = ConnectionOptions.resolveToken(token, database: database)
        var services: [ServiceClient] = []
        for (index, url) in urls.enumerated() {
            // Client i sends to URL i mod N: this URL's share of the clients, each with a connection of its own.
            let clients = (concurrency - index + urls.count - 1) / urls.count
            do {
                services.append(try ServiceClient(
                    url: url, token: token, tls: tls.clientTLS, timeout: .seconds(120), connections: clients))
            } catch {
                for service in services { try await service.shutdown() }
                throw ValidationError("\(error)")
            }
        }
        do {
            try await bench(services)
        } catch {
            for service in services { try await service.shutdown() }
            throw error
        }
        for service in services { try await service.shutdown() }
    }

    /// The burst, client i through `services[i mod N]`; the figures; the books check through the first service.
    private func bench(_ services: [ServiceClient]) async throws {
        let service = services[0]
        let listed = try await service.send(.GET, "/compute/v1/nodes", as: NodeList.self)?.nodes ?? []
        guard !listed.isEmpty else { throw ValidationError("\(service.redactedURL) tracks no node to claim on") }
        let used = Array(listed.prefix(nodes ?? listed.count))
        let before = try await books(used, service)
        FileHandle.standardError.write(Data(
            "bench-claims: \(claims) claims from \(concurrency) clients over \(used.count) nodes at \(services.map { "\($0.redactedURL)" }.joined(separator: ", "))\n".utf8))

        let serverBefore = Self.processesCPU(serverPids)
        let clientBefore = Self.ownCPU()
        let next = Counter()
        let (claims, vcpus, memoryMb) = (self.claims, self.vcpus, self.memoryMb)
        let started = ContinuousClock.now
        var tally = Tally()
        await withTaskGroup(of: Tally.self) { group in
            for client in 0..<concurrency {
                let service = services[client % services.count]
                group.addTask {
                    var mine = Tally()
                    while true {
                        let index = next.take()
                        guard index < claims else { break }
                        let node = used[index % used.count].uuid
                        let uuid = randomUUIDString()
                        let body = Build(uuid: uuid, node: node, flavor: .init(vcpus: vcpus, memory_mb: memoryMb))
                        let sent = ContinuousClock.now
                        do throws(ServiceClientError) {
                            let status = try await service.send(.POST, "/compute/v1/instances", body: body)
                            mine.latencies.append(Self.milliseconds(ContinuousClock.now - sent))
                            if status == 201 {
                                mine.answered[node, default: 0] += 1
                                mine.instances.append(uuid)
                            } else {
                                mine.refusals["HTTP \(status)", default: 0] += 1
                            }
                        } catch {
                            mine.latencies.append(Self.milliseconds(ContinuousClock.now - sent))
                            let reason = error.status == 0 ? "\(error.kind)" : "HTTP \(error.status)"
                            mine.refusals[error.code.map { "\(reason) \($0)" } ?? reason, default: 0] += 1
                        }
                    }
                    return mine
                }
            }
            for await mine in group {
                tally.latencies += mine.latencies
                tally.answered.merge(mine.answered, uniquingKeysWith: +)
                tally.instances += mine.instances
                tally.refusals.merge(mine.refusals, uniquingKeysWith: +)
            }
        }
        let wall = Self.milliseconds(ContinuousClock.now - started) / 1000
        let clientCPU = Self.ownCPU() - clientBefore
        let serverCPU = serverBefore.flatMap { start in Self.processesCPU(serverPids).map { $0 - start } }

        let after = try await books(used, service)
        var unbalanced: [String] = []
        for node in used {
            let expected = (tally.answered[node.uuid] ?? 0) * vcpus
            let placement = (after[node.uuid]?.placement ?? 0) - (before[node.uuid]?.placement ?? 0)
            let ledger = (after[node.uuid]?.ledger ?? 0) - (before[node.uuid]?.ledger ?? 0)
            if placement != expected || ledger != expected {
                unbalanced.append("\(node.uuid): answered \(expected) VCPU, Placement +\(placement), ledger +\(ledger)")
            }
        }
        var undeleted: [String] = []
        if delete {
            for uuid in tally.instances {
                do throws(ServiceClientError) {
                    try await service.send(.DELETE, "/compute/v1/instances/\(uuid)")
                } catch {
                    undeleted.append("\(uuid): \(error)")
                }
            }
        }

        let answered = tally.answered.values.reduce(0, +)
        let sorted = tally.latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
        }
        let figures: [(String, String)] = [
            ("claims", "\(claims)"), ("answered", "\(answered)"), ("refused", "\(claims - answered)"),
            ("concurrency", "\(concurrency)"), ("nodes", "\(used.count)"),
            ("wall_s", Self.format(wall)), ("claims_per_s", Self.format(Double(claims) / wall)),
            ("p50_ms", Self.format(percentile(0.5))), ("p90_ms", Self.format(percentile(0.9))),
            ("p99_ms", Self.format(percentile(0.99))), ("max_ms", Self.format(sorted.last ?? 0)),
            ("client_cpu_ms_per_claim", Self.format(clientCPU * 1000 / Double(claims))),
            ("server_cpu_ms_per_claim", serverCPU.map { Self.format($0 * 1000 / Double(claims)) } ?? "null"),
            ("books_balanced", unbalanced.isEmpty ? "true" : "false"),
        ]
        if json {
            print("{" + figures.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
        } else {
            print("claims \(claims): \(answered) answered 201"
                + tally.refusals.sorted { $0.key < $1.key }.map { ", \($0.value) \($0.key)" }.joined())
            print("wall \(Self.format(wall)) s: \(Self.format(Double(claims) / wall)) claims/s")
            print("latency ms: p50 \(Self.format(percentile(0.5))), p90 \(Self.format(percentile(0.9))), "
                + "p99 \(Self.format(percentile(0.99))), max \(Self.format(sorted.last ?? 0))")
            print("CPU ms per claim: client \(Self.format(clientCPU * 1000 / Double(claims)))"
                + (serverCPU.map { ", server \(Self.format($0 * 1000 / Double(claims)))" } ?? ""))
            print(unbalanced.isEmpty
                ? "books: Placement = ledger = answered claims on all \(used.count) nodes"
                : "books DO NOT BALANCE:\n  " + unbalanced.joined(separator: "\n  "))
        }
        if !undeleted.isEmpty {
            FileHandle.standardError.write(Data(
                "bench-claims: \(undeleted.count) of \(tally.instances.count) instances not deleted, first: \(undeleted[0])\n".utf8))
        }
        if !unbalanced.isEmpty || !undeleted.isEmpty { throw ExitCode(1) }
    }

    /// Every used node's VCPU usage in Placement and in the ledger.
    private func books(_ nodes: [NodeList.Node], _ service: ServiceClient) async throws -> [String: (placement: Int, ledger: Int)] {
        let ledger = try await service.send(.GET, "/compute/v1/nodes", as: NodeList.self)?.nodes ?? []
        var result: [String: (placement: Int, ledger: Int)] = [:]
        for node in nodes {
            let placement = try await service.send(.GET, "/resource_providers/\(node.uuid)/usages", as: Usages.self)
            result[node.uuid] = (placement?.usages["VCPU"] ?? 0, ledger.first { $0.uuid == node.uuid }?.usage["VCPU"] ?? 0)
        }
        return result
    }

    private static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    private static func format(_ value: Double) -> String { String(format: "%.3f", value) }

    /// This process's user + system CPU seconds.
    private static func ownCPU() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// The summed user + system CPU seconds of `pids`, or `nil` when there is none or one cannot be read.
    private static func processesCPU(_ pids: [Int32]) -> Double? {
        guard !pids.isEmpty else { return nil }
        var total = 0.0
        for pid in pids {
            guard let seconds = processCPU(pid) else { return nil }
            total += seconds
        }
        return total
    }

    /// Another process's user + system CPU seconds (Linux `/proc/PID/stat`), or `nil`.
    private static func processCPU(_ pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
