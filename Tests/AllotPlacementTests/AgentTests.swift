import AllotCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// `allot agent` against a separate Placement service: Allot's own (`allot serve --no-agent`) and upstream
/// OpenStack Placement (`scripts/upstream-placement.sh`, when scripts/test.sh could install it).
@Suite(.serialized) struct AgentTests {
    static let nodeA = "aaaaaaaa-0000-4000-8000-0000000000a1"
    static let nodeB = "bbbbbbbb-0000-4000-8000-0000000000b1"
    static let nodeC = "cccccccc-0000-4000-8000-0000000000c1"

    static var upstreamScript: String? { ProcessInfo.processInfo.environment["ALLOT_TEST_UPSTREAM_PLACEMENT"] }

    @Test func agentAgainstAllotPlacement() async throws {
        try await Self.againstAllotPlacement { try await Self.scenario(placementPort: $0, directory: $1) }
    }

    @Test(.enabled(if: upstreamScript != nil, "upstream Placement is not installed (scripts/test.sh installs it)"))
    func agentAgainstUpstreamPlacement() async throws {
        // `auto` finds no compute ledger upstream and keeps its own.
        try await Self.againstUpstreamPlacement { try await Self.scenario(placementPort: $0, directory: $1, ledger: "auto") }
    }

    /// Runs `scenario` (Placement's port, a scratch directory) against `allot serve --no-agent`.
    ///
    /// noauth's `admin` token has the admin role only, and upstream's policy lets only the service role reshape
    /// (Nova's compute sends a service token): the policy file admits admin too, as scripts/upstream-placement.sh
    /// does for upstream, so an agent with that token can reshape here.
    static func againstAllotPlacement(_ scenario: (Int, URL) async throws -> Void) async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policy = directory.appendingPathComponent("policy.yaml")
        try #""placement:reshaper:reshape": "role:admin or role:service""#.write(to: policy, atomically: true, encoding: .utf8)
        let placement = try await ServerProcess(
            database: directory.appendingPathComponent("placement.sqlite").path, logDirectory: directory,
            arguments: ["--no-agent", "--policy-file", policy.path])
        defer { placement.stop() }
        try await scenario(placement.port, directory)
    }

    /// Runs `scenario` (Placement's port, a scratch directory) against upstream Placement.
    static func againstUpstreamPlacement(_ scenario: (Int, URL) async throws -> Void) async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (port, pid) = try await startUpstream(directory)
        defer { kill(pid, SIGTERM) }
        try await scenario(port, directory)
    }

    /// Two agents on two hosts keep their books in one `allot serve`'s ledger (`--ledger remote`): claims commit
    /// there with their allocations in one transaction, a move between the hosts is one claim, each agent's
    /// audit follows what the other did, and the server's compute API sees every host.
    /// An agent serves the compute API only: it holds no Placement store, and Placement's routes are 404 there.
    @Test func anAgentServesTheComputeAPIOnly() async throws {
        try await Self.againstAllotPlacement { placementPort, directory in
            try Self.writeNodes(directory, withC: false)
            let agent = try await Self.startAgent(placementPort: placementPort, directory: directory)
            defer { agent.stop() }
            let nodes = try await agent.request("/compute/v1/nodes", method: .get)
            #expect(nodes.status == .ok)
            for path in ["/resource_providers", "/traits", "/allocation_candidates?resources=VCPU:1"] {
                let answer = try await agent.request(path, method: .get)
                #expect(answer.status == .notFound, "\(path)")
                #expect(answer.body?.errorDetail?.contains("serves the compute API (/compute/v1) only") == true, "\(path)")
            }
            // Placement itself (the separate service) has the agent's nodes.
            let placement = try await ServerProcess.request(port: placementPort, "/resource_providers", method: .get)
            #expect((placement.body?.jsonObject["resource_providers"] as? [Any])?.count == 2)
        }
    }

    @Test func agentsShareTheServersLedger() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await ServerProcess(
            database: directory.appendingPathComponent("placement.sqlite").path, logDirectory: directory)
        defer { server.stop() }
        let dirA = directory.appendingPathComponent("host-1"), dirB = directory.appendingPathComponent("host-2")
        for (dir, node, name) in [(dirA, Self.nodeA, "node-a"), (dirB, Self.nodeB, "node-b")] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try """
            {"nodes": [{"hostname": "\(name)", "uuid": "\(node)", "vcpus": 16, "memory_mb": 32768, "disk_gb": 400}]}
            """.write(to: dir.appendingPathComponent("nodes.json"), atomically: true, encoding: .utf8)
        }
        let agentA = try await Self.startAgent(placementPort: server.port, directory: dirA, ledger: "remote", host: "host-1")
        defer { agentA.stop() }
        // `auto` finds the server's ledger too.
        var agentB = try await Self.startAgent(placementPort: server.port, directory: dirB, ledger: "auto", host: "host-2")
        defer { agentB.stop() }
        func on(_ process: ServerProcess, _ path: String, _ method: HTTPRequest.Method = .get, _ body: String? = nil)
            async throws -> (Int, [String: Any])
        {
            let response = try await process.request(path, method: method, body: body)
            return (Int(response.status.code), response.body?.jsonObject ?? [:])
        }
        func allocations(_ consumer: String) async throws -> [String: [String: Int]] {
            (try await on(server, "/allocations/\(consumer)").1["allocations"] as? [String: Any] ?? [:]).mapValues {
                ($0 as? [String: Any])?["resources"] as? [String: Int] ?? [:]
            }
        }
        func usage(_ node: String) async throws -> [String: Int] {
            (try await on(server, "/resource_providers/\(node)/usages").1["usages"] as? [String: Int] ?? [:]).filter { $0.value != 0 }
        }
        func liveUsage(_ agent: ServerProcess, _ node: String) async throws -> [String: Int] {
            try await on(agent, "/compute/v1/nodes/\(node)").1["usage"] as? [String: Int] ?? [:]
        }
        let small = ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20], large = ["VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 40]

        // Both hosts are registered in the server's ledger and Placement; neither agent keeps a local file.
        let nodes = try await on(server, "/compute/v1/nodes").1["nodes"] as? [[String: Any]] ?? []
        #expect(Set(nodes.compactMap { $0["host"] as? String }) == ["host-1", "host-2"])
        #expect(try await on(server, "/resource_providers/\(Self.nodeA)").0 == 200)
        #expect(try await on(server, "/resource_providers/\(Self.nodeB)").0 == 200)
        #expect(!FileManager.default.fileExists(atPath: dirA.appendingPathComponent("agent.sqlite").path))

        // A build through host-1's agent lands in the server's books, allocations included.
        let vm1 = newUUID()
        #expect(try await on(agentA, "/compute/v1/instances", .post, ComputeServer.buildBody(vm1, node: Self.nodeA)).0 == 201)
        #expect(try await on(server, "/compute/v1/instances/\(vm1)").1["node"] as? String == Self.nodeA)
        #expect(try await allocations(vm1) == [Self.nodeA: small])
        // Refusals cross the wire with their codes and change nothing.
        let (tooBig, refusal) = try await on(agentB, "/compute/v1/instances", .post,
                                             ComputeServer.buildBody(newUUID(), node: Self.nodeB, vcpus: 20))
        #expect(tooBig == 409 && Self.code(refusal) == "allot.does_not_fit")
        // Room taken in Placement is seen by the claim's own transaction (no claim to undo afterwards).
        let foreign = newUUID()
        #expect(try await on(server, "/allocations/\(foreign)", .put, """
            {"allocations": {"\(Self.nodeB)": {"resources": {"VCPU": 15}}}, "project_id": "other", "user_id": "other",
             "consumer_generation": null, "consumer_type": "OTHER"}
            """).0 == 204)
        let vm2 = newUUID()
        let (full, answer) = try await on(agentB, "/compute/v1/instances", .post, ComputeServer.buildBody(vm2, node: Self.nodeB))
        #expect(full == 409 && Self.code(answer) == "allot.does_not_fit")
        #expect(try await on(server, "/compute/v1/instances/\(vm2)").0 == 404)
        #expect(try await allocations(vm2).isEmpty)
        #expect(try await on(server, "/allocations/\(foreign)", .delete).0 == 204)

        // A resize from host-1 to host-2, claimed at the destination's agent: one transaction over both hosts.
        #expect(try await on(agentA, "/compute/v1/instances/\(vm1)/state", .post, "{\"vm_state\": \"active\", \"task_state\": null}").0 == 200)
        let m1 = newUUID()
        #expect(try await on(agentB, "/compute/v1/migrations", .post,
                             ComputeServer.moveBody(m1, instance: vm1, kind: "resize", dest: Self.nodeB)).0 == 201)
        #expect(try await allocations(vm1) == [Self.nodeB: large])
        #expect(try await allocations(m1) == [Self.nodeA: small])
        #expect(try await liveUsage(agentB, Self.nodeB) == large)
        #expect(try await on(agentB, "/compute/v1/migrations/\(m1)/finish", .post).0 == 200)
        // Host-1's agent confirms (Nova confirms at the source): it reads the migration from the shared ledger.
        #expect(try await on(agentA, "/compute/v1/migrations/\(m1)/confirm", .post).0 == 200)
        #expect(try await allocations(m1).isEmpty)
        #expect(try await usage(Self.nodeA).isEmpty)
        // After an audit each agent's live view equals Placement on its node.
        for agent in [agentA, agentB] { #expect(try await on(agent, "/compute/v1/audit", .post).0 == 200) }
        #expect(try await liveUsage(agentA, Self.nodeA) == usage(Self.nodeA))
        #expect(try await liveUsage(agentB, Self.nodeB) == usage(Self.nodeB))
        let (_, quiet) = try await on(agentB, "/compute/v1/audit", .post)
        #expect(quiet["repaired"] as? [String] == [] && quiet["deleted_allocations"] as? [String] == [])

        // kill -9 host-2's agent: on restart it restores its node from the server's ledger.
        agentB.kill9()
        agentB = try await Self.startAgent(placementPort: server.port, directory: dirB, port: agentB.port, ledger: "remote", host: "host-2")
        #expect(try await liveUsage(agentB, Self.nodeB) == large)
        // Deleting through either agent releases everything.
        #expect(try await on(agentA, "/compute/v1/instances/\(vm1)", .delete).0 == 200)
        #expect(try await allocations(vm1).isEmpty)
        #expect(try await usage(Self.nodeB).isEmpty)
        #expect(try await on(agentB, "/compute/v1/audit", .post).0 == 200)
        #expect(try await liveUsage(agentB, Self.nodeB).isEmpty)
        // With the server gone a claim is a 503 that says how to find out whether it landed.
        server.stop()
        let (down, reason) = try await on(agentB, "/compute/v1/instances", .post, ComputeServer.buildBody(newUUID(), node: Self.nodeB))
        #expect(down == 503)
        #expect(((reason["errors"] as? [[String: Any]])?.first?["detail"] as? String)?.contains("idempotent") == true)
    }

    @Test func agentReshapesAgainstAllotPlacement() async throws {
        try await Self.againstAllotPlacement(Self.reshapeScenario)
    }

    @Test(.enabled(if: upstreamScript != nil, "upstream Placement is not installed (scripts/test.sh installs it)"))
    func agentReshapesAgainstUpstreamPlacement() async throws {
        try await Self.againstUpstreamPlacement(Self.reshapeScenario)
    }

    /// A node with a GPU and an instance holding it; the agent restarts with --pci-in-placement: the GPU becomes a
    /// child provider and the instance's allocation moves onto it in one reshape; claims then allocate it; turned
    /// off again, the allocation moves back and the provider goes.
    static func reshapeScenario(placementPort: Int, directory: URL) async throws {
        try """
        {"nodes": [{"hostname": "gpu-node", "uuid": "\(nodeA)", "vcpus": 8, "memory_mb": 16384, "disk_gb": 100,
          "numa_cells": [{"id": 0, "cpus": [0, 1, 2, 3, 4, 5, 6, 7], "memory_mb": 16384}],
          "pci_devices": [{"address": "0000:af:00.0", "vendor_id": "10de", "product_id": "1db4", "numa_node": 0}]}]}
        """.write(to: directory.appendingPathComponent("nodes.json"), atomically: true, encoding: .utf8)
        func start(_ inPlacement: Bool, cells: Bool = false, port: Int? = nil) async throws -> ServerProcess {
            try await ServerProcess(
                command: [
                    "agent", "--placement-url", "http://127.0.0.1:\(placementPort)", "--placement-token", "admin",
                    "--ledger", "local", "--database", directory.appendingPathComponent("agent.sqlite").path,
                ] + ComputeServer.fakeDriver(nodesFile: directory.appendingPathComponent("nodes.json").path, host: "gpu-host") + [
                    "--pci-device-spec", #"{"vendor_id": "10de", "traits": "gpu"}"#,
                    "--pci-alias", #"{"name": "gpu", "vendor_id": "10de", "product_id": "1db4"}"#,
                ] + (inPlacement ? ["--pci-in-placement"] : []) + (cells ? ["--numa-in-placement"] : []), port: port,
                logDirectory: directory)
        }
        func placement(_ path: String, _ method: HTTPRequest.Method = .get, _ body: String? = nil) async throws -> (Int, [String: Any]) {
            let response = try await ServerProcess.request(port: placementPort, path, method: method, body: body)
            return (Int(response.status.code), response.body?.jsonObject ?? [:])
        }
        func allocations(_ consumer: String) async throws -> [String: [String: Int]] {
            (try await placement("/allocations/\(consumer)").1["allocations"] as? [String: Any] ?? [:]).mapValues {
                ($0 as? [String: Any])?["resources"] as? [String: Int] ?? [:]
            }
        }
        let gpu = "CUSTOM_PCI_10DE_1DB4"
        let child = HostConfig.stableUUID(nodeA + "/0000:af:00.0")
        var agent = try await start(false)
        let vm = newUUID()
        #expect(try await agent.request("/compute/v1/instances", method: .post, body: ComputeServer.buildBody(
            vm, node: nodeA, specs: "{\"pci_passthrough:alias\": \"gpu:1\"}")).status == .created)
        #expect(try await allocations(vm) == [nodeA: ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20]])
        #expect(try await placement("/resource_providers/\(child)").0 == 404)

        // On: one reshape puts the GPU in Placement with the instance's allocation on it.
        agent.stop()
        agent = try await start(true, port: agent.port)
        let (found, provider) = try await placement("/resource_providers/\(child)")
        #expect(found == 200 && provider["parent_provider_uuid"] as? String == nodeA && provider["name"] as? String == "gpu-node_0000:af:00.0")
        let inventory = (try await placement("/resource_providers/\(child)/inventories").1["inventories"] as? [String: Any])?[gpu]
        #expect((inventory as? [String: Any])?["total"] as? Int == 1)
        #expect(Set(try await placement("/resource_providers/\(child)/traits").1["traits"] as? [String] ?? []) == ["CUSTOM_GPU"])
        #expect(try await allocations(vm) == [nodeA: ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20], child: [gpu: 1]])
        // Placement now refuses a second GPU on its own terms too; deleting frees the child.
        let (refused, _) = try await agent.request("/compute/v1/instances", method: .post, body: ComputeServer.buildBody(
            newUUID(), node: nodeA, specs: "{\"pci_passthrough:alias\": \"gpu:1\"}")).statusAndBody()
        #expect(refused == 409)
        let (_, audit) = try await agent.request("/compute/v1/audit", method: .post).statusAndBody()
        #expect(audit["reshaped"] as? [String] == [] && audit["repaired"] as? [String] == [])

        // Another service's child of the node is left alone throughout.
        let foreign = newUUID()
        #expect(try await placement("/resource_providers", .post,
                                    "{\"uuid\": \"\(foreign)\", \"name\": \"gpu-node:bandwidth\", \"parent_provider_uuid\": \"\(nodeA)\"}").0 == 200)
        // Off: the allocation moves back to the node and the provider goes.
        agent.stop()
        agent = try await start(false, port: agent.port)
        #expect(try await placement("/resource_providers/\(child)").0 == 404)
        #expect(try await allocations(vm) == [nodeA: ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20]])

        // NUMA cells in Placement: VCPU and MEMORY_MB leave the root for the cell, with the instance's allocation.
        let cell = HostConfig.stableUUID(nodeA + "/numa/0")
        agent.stop()
        agent = try await start(false, cells: true, port: agent.port)
        let rootInventories = try await placement("/resource_providers/\(nodeA)/inventories").1["inventories"] as? [String: Any]
        #expect(rootInventories.map { Set($0.keys) } == ["DISK_GB"])
        let cellInventories = try await placement("/resource_providers/\(cell)/inventories").1["inventories"] as? [String: Any]
        #expect(cellInventories.map { Set($0.keys) } == ["VCPU", "MEMORY_MB"])
        #expect(try await allocations(vm) == [nodeA: ["DISK_GB": 20], cell: ["VCPU": 2, "MEMORY_MB": 4096]])
        agent.stop()
        agent = try await start(false, port: agent.port)
        defer { agent.stop() }
        #expect(try await placement("/resource_providers/\(cell)").0 == 404)
        #expect(try await allocations(vm) == [nodeA: ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20]])
        #expect(try await placement("/resource_providers/\(foreign)").0 == 200)
        #expect(try await agent.request("/compute/v1/instances/\(vm)", method: .delete).status == .ok)
        #expect(try await allocations(vm).isEmpty)
    }

    /// Starts upstream Placement on a random port below the kernel's ephemeral range (an outgoing connection can
    /// hold any port from 32768 up) and apart from `ServerProcess`'s, trying another port when that one is taken.
    /// - Returns: the port and the uWSGI master's pid.
    /// `environment` prefixes the script's command line (e.g. `ALLOT_UPSTREAM_POLICY=default`).
    static func startUpstream(_ directory: URL, environment: String = "") async throws -> (port: Int, pid: Int32) {
        for attempt in 1...5 {
            let port = Int.random(in: 10000...19999)
            // Through system(3), not Process: Foundation's Process waits for a descriptor that uWSGI, started in the
            // background by the script, would inherit and keep open. On a thread of its own: it waits for uWSGI.
            let pidFile = directory.appendingPathComponent("upstream.pid").path
            let status = await ShellScript.status(
                "\(environment) bash '\(upstreamScript ?? "")' start \(port) '\(directory.path)/upstream-\(attempt)' > '\(pidFile)'")
            let pid = Int32(String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: pidFile))) ?? Data(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines))
            if status == 0, let pid { return (port, pid) }
        }
        throw ServerProcessError.didNotStart("upstream Placement did not start on five ports")
    }

    static func directory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-agent-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func writeNodes(_ directory: URL, withC: Bool = true) throws {
        let c = withC ? ",\n  {\"hostname\": \"node-c\", \"uuid\": \"\(nodeC)\", \"vcpus\": 16, \"memory_mb\": 32768, \"disk_gb\": 400}" : ""
        try """
        {"nodes": [
          {"hostname": "node-a", "uuid": "\(nodeA)", "vcpus": 16, "memory_mb": 32768, "disk_gb": 400, "traits": ["CUSTOM_SSD"]},
          {"hostname": "node-b", "uuid": "\(nodeB)", "vcpus": 16, "memory_mb": 32768, "disk_gb": 400}\(c)
        ]}
        """.write(to: directory.appendingPathComponent("nodes.json"), atomically: true, encoding: .utf8)
    }

    /// Provider config: every node gets a CUSTOM_LICENSE inventory and the CUSTOM_RACK_7 trait, except node-b,
    /// whose own entry gives it CUSTOM_GPU_HOST only.
    static func writeProviderConfig(_ directory: URL) throws {
        let configs = directory.appendingPathComponent("provider-config")
        try FileManager.default.createDirectory(at: configs, withIntermediateDirectories: true)
        try """
        meta:
          schema_version: '1.0'
        providers:
          - identification:
              uuid: '$COMPUTE_NODE'
            inventories:
              additional:
                - CUSTOM_LICENSE:
                    total: 4
                    allocation_ratio: 1.0
            traits:
              additional:
                - CUSTOM_RACK_7
          - identification:
              name: node-b
            traits:
              additional:
                - CUSTOM_GPU_HOST
        """.write(to: configs.appendingPathComponent("site.yaml"), atomically: true, encoding: .utf8)
    }

    /// An agent with the fake driver over `directory`'s nodes.json; `ledger` is its --ledger.
    static func startAgent(
        placementPort: Int, directory: URL, port: Int? = nil, ledger: String = "local", host: String = "agent-host"
    ) async throws -> ServerProcess {
        let configs = directory.appendingPathComponent("provider-config").path
        return try await ServerProcess(
            command: [
                "agent", "--placement-url", "http://127.0.0.1:\(placementPort)", "--placement-token", "admin",
                "--ledger", ledger, "--database", directory.appendingPathComponent("agent.sqlite").path,
            ] + ComputeServer.fakeDriver(nodesFile: directory.appendingPathComponent("nodes.json").path, host: host)
                + (FileManager.default.fileExists(atPath: configs) ? ["--provider-config-dir", configs] : []),
            port: port, logDirectory: directory)
    }

    /// The whole life of an agent against the Placement on `placementPort`: registration, claims, a refusal by
    /// Placement that is undone, moves, audits that heal Placement, a kill -9 and restart, deletion, a node
    /// that goes away.
    static func scenario(placementPort: Int, directory: URL, ledger: String = "local") async throws {
        try writeNodes(directory)
        try writeProviderConfig(directory)
        var agent = try await startAgent(placementPort: placementPort, directory: directory, ledger: ledger)
        defer { agent.stop() }
        func placement(_ path: String, _ method: HTTPRequest.Method = .get, _ body: String? = nil) async throws -> (Int, [String: Any]) {
            let response = try await ServerProcess.request(port: placementPort, path, method: method, body: body)
            return (Int(response.status.code), response.body?.jsonObject ?? [:])
        }
        func compute(_ path: String, _ method: HTTPRequest.Method = .get, _ body: String? = nil) async throws -> (Int, [String: Any]) {
            let response = try await agent.request(path, method: method, body: body)
            return (Int(response.status.code), response.body?.jsonObject ?? [:])
        }
        func allocations(_ consumer: String) async throws -> [String: [String: Int]] {
            let (_, answer) = try await placement("/allocations/\(consumer)")
            return (answer["allocations"] as? [String: Any] ?? [:]).mapValues {
                ($0 as? [String: Any])?["resources"] as? [String: Int] ?? [:]
            }
        }
        func usage(_ node: String) async throws -> [String: Int] {
            let (_, answer) = try await placement("/resource_providers/\(node)/usages")
            return (answer["usages"] as? [String: Int] ?? [:]).filter { $0.value != 0 }
        }
        func liveUsage(_ node: String) async throws -> [String: Int] {
            let (_, answer) = try await compute("/compute/v1/nodes/\(node)")
            return answer["usage"] as? [String: Int] ?? [:]
        }
        func traits(_ node: String) async throws -> Set<String> {
            Set(try await placement("/resource_providers/\(node)/traits").1["traits"] as? [String] ?? [])
        }
        let small = ["VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20]

        // Registration: providers named after the nodes, inventories and traits.
        for (node, name) in [(nodeA, "node-a"), (nodeB, "node-b"), (nodeC, "node-c")] {
            let (status, provider) = try await placement("/resource_providers/\(node)")
            #expect(status == 200 && provider["name"] as? String == name)
            let (_, inventories) = try await placement("/resource_providers/\(node)/inventories")
            let vcpu = (inventories["inventories"] as? [String: Any])?["VCPU"] as? [String: Any]
            #expect(vcpu?["total"] as? Int == 16)
            #expect(try await traits(node).contains("COMPUTE_NODE"))
        }
        #expect(try await traits(nodeA) == ["COMPUTE_NODE", "CUSTOM_SSD", "CUSTOM_RACK_7"])
        #expect(try await traits(nodeB) == ["COMPUTE_NODE", "CUSTOM_GPU_HOST"])
        let licenses = (try await placement("/resource_providers/\(nodeC)/inventories").1["inventories"] as? [String: Any])?["CUSTOM_LICENSE"]
        #expect((licenses as? [String: Any])?["total"] as? Int == 4)
        #expect((try await placement("/resource_providers/\(nodeB)/inventories").1["inventories"] as? [String: Any])?["CUSTOM_LICENSE"] == nil)
        // The agent serves the compute API only.
        #expect(try await compute("/resource_providers").0 == 404)

        // A build that fits, with a required trait and a license from the provider config.
        let vm1 = newUUID()
        #expect(try await compute("/compute/v1/instances", .post, ComputeServer.buildBody(
            vm1, node: nodeA, specs: "{\"trait:CUSTOM_SSD\": \"required\", \"resources:CUSTOM_LICENSE\": \"1\"}")).0 == 201)
        let licensed = small.merging(["CUSTOM_LICENSE": 1]) { a, _ in a }
        #expect(try await allocations(vm1) == [nodeA: licensed])
        let (_, consumer) = try await placement("/allocations/\(vm1)")
        #expect(consumer["project_id"] as? String == "proj" && consumer["consumer_type"] as? String == "INSTANCE")
        // One that does not fit the ledger: refused before Placement sees it.
        let big = newUUID()
        let (tooBig, refusal) = try await compute("/compute/v1/instances", .post, ComputeServer.buildBody(big, node: nodeA, vcpus: 20))
        #expect(tooBig == 409 && Self.code(refusal) == "allot.does_not_fit")
        #expect(try await allocations(big).isEmpty)
        // Someone else takes most of node B in Placement: the agent's claim fits its ledger, Placement refuses
        // it, and the ledger's part is undone.
        let foreign = newUUID()
        #expect(try await placement("/allocations/\(foreign)", .put, """
            {"allocations": {"\(nodeB)": {"resources": {"VCPU": 15}}}, "project_id": "other", "user_id": "other",
             "consumer_generation": null, "consumer_type": "OTHER"}
            """).0 == 204)
        let vm2 = newUUID()
        let (refused, answer) = try await compute("/compute/v1/instances", .post, ComputeServer.buildBody(vm2, node: nodeB))
        #expect(refused == 409 && Self.code(answer) == "allot.placement_refused")
        #expect(try await compute("/compute/v1/instances/\(vm2)").0 == 404)
        #expect(try await allocations(vm2).isEmpty)
        #expect(try await liveUsage(nodeB).isEmpty)
        #expect(try await placement("/allocations/\(foreign)", .delete).0 == 204)

        // Resize across nodes: the instance holds the new flavor at the destination, the migration the old
        // one at the source, until confirmed.
        #expect(try await compute("/compute/v1/instances/\(vm1)/state", .post, "{\"vm_state\": \"active\", \"task_state\": null}").0 == 200)
        let m1 = newUUID()
        #expect(try await compute("/compute/v1/migrations", .post,
                                  ComputeServer.moveBody(m1, instance: vm1, kind: "resize", dest: nodeC)).0 == 201)
        let large = ["VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 40]
        #expect(try await allocations(vm1) == [nodeC: large])
        #expect(try await allocations(m1) == [nodeA: licensed])
        #expect(try await placement("/allocations/\(m1)").1["consumer_type"] as? String == "MIGRATION")
        #expect(try await compute("/compute/v1/migrations/\(m1)/finish", .post).0 == 200)
        #expect(try await compute("/compute/v1/migrations/\(m1)/confirm", .post).0 == 200)
        #expect(try await allocations(m1).isEmpty)
        #expect(try await allocations(vm1) == [nodeC: large])
        // A live migration rolled back leaves the instance where it was.
        let m2 = newUUID()
        #expect(try await compute("/compute/v1/migrations", .post,
                                  ComputeServer.moveBody(m2, instance: vm1, kind: "live-migration", dest: nodeB)).0 == 201)
        #expect(try await allocations(vm1) == [nodeB: large])
        #expect(try await compute("/compute/v1/migrations/\(m2)/rollback", .post).0 == 200)
        #expect(try await allocations(vm1) == [nodeC: large])
        #expect(try await allocations(m2).isEmpty)

        // Placement drifts: allocations deleted, an inventory changed, a trait added by an operator. The audit
        // puts back what the ledger says and keeps the operator's trait.
        #expect(try await placement("/allocations/\(vm1)", .delete).0 == 204)
        let (_, inventories) = try await placement("/resource_providers/\(nodeA)/inventories")
        let generation = inventories["resource_provider_generation"] as? Int ?? 0
        #expect(try await placement("/resource_providers/\(nodeA)/inventories/VCPU", .put,
                                    "{\"resource_provider_generation\": \(generation), \"total\": 8}").0 == 200)
        #expect(try await placement("/traits/CUSTOM_OPERATOR", .put).0 == 201)
        let traitGeneration = try await placement("/resource_providers/\(nodeB)/traits").1["resource_provider_generation"] as? Int ?? 0
        #expect(try await placement("/resource_providers/\(nodeB)/traits", .put,
                                    "{\"resource_provider_generation\": \(traitGeneration), \"traits\": [\"COMPUTE_NODE\", \"CUSTOM_OPERATOR\"]}").0 == 200)
        let (audited, report) = try await compute("/compute/v1/audit", .post)
        #expect(audited == 200)
        #expect(report["repaired"] as? [String] == [vm1])
        #expect(try await allocations(vm1) == [nodeC: large])
        let vcpu = (try await placement("/resource_providers/\(nodeA)/inventories").1["inventories"] as? [String: Any])?["VCPU"]
        #expect((vcpu as? [String: Any])?["total"] as? Int == 16)
        #expect(try await traits(nodeB) == ["COMPUTE_NODE", "CUSTOM_GPU_HOST", "CUSTOM_OPERATOR"])
        // Once Placement agrees, an audit writes nothing there: no provider's generation moves.
        func generations() async throws -> [Int] {
            var result: [Int] = []
            for node in [nodeA, nodeB, nodeC] {
                result.append(try await placement("/resource_providers/\(node)").1["generation"] as? Int ?? -1)
            }
            return result
        }
        #expect(try await compute("/compute/v1/audit", .post).0 == 200)
        let settled = try await generations()
        let (_, quiet) = try await compute("/compute/v1/audit", .post)
        #expect(quiet["saved"] as? [String] == [] && quiet["repaired"] as? [String] == [])
        #expect(try await generations() == settled)

        // kill -9 and restart: the agent restores its ledger and goes on.
        agent.kill9()
        agent = try await startAgent(placementPort: placementPort, directory: directory, port: agent.port, ledger: ledger)
        #expect(try await compute("/compute/v1/instances/\(vm1)").1["node"] as? String == nodeC)
        #expect(try await liveUsage(nodeC) == large)
        let vm3 = newUUID()
        #expect(try await compute("/compute/v1/instances", .post, ComputeServer.buildBody(vm3, node: nodeB)).0 == 201)
        for node in [nodeA, nodeB, nodeC] {
            #expect(try await liveUsage(node) == usage(node), "live vs Placement on \(node)")
        }

        // Deletion releases; a node the driver stops reporting is removed from Placement once it is empty.
        #expect(try await compute("/compute/v1/instances/\(vm1)", .delete).0 == 200)
        #expect(try await allocations(vm1).isEmpty)
        #expect(try await usage(nodeC).isEmpty)
        try writeNodes(directory, withC: false)
        let (_, removal) = try await compute("/compute/v1/audit", .post)
        #expect(removal["removed"] as? [String] == [nodeC])
        #expect(try await placement("/resource_providers/\(nodeC)").0 == 404)
        #expect(try await allocations(vm3) == [nodeB: small])
    }

    static func code(_ answer: [String: Any]) -> String? {
        ((answer["errors"] as? [[String: Any]])?.first)?["code"] as? String
    }
}

extension TestClient.Response {
    /// The status code and the body as a JSON object.
    func statusAndBody() -> (Int, [String: Any]) { (Int(status.code), body?.jsonObject ?? [:]) }
}
