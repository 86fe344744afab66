import AllotCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// A real `allot serve` with its embedded agent on the fake driver (two nodes), for compute API tests.
struct ComputeServer {
    static let nodeA = "aaaaaaaa-0000-4000-8000-00000000000a"
    static let nodeB = "bbbbbbbb-0000-4000-8000-00000000000b"

    let directory: URL
    var server: ServerProcess

    static func nodesJSON(running: [String] = []) -> String {
        """
        {"nodes": [
          {"hostname": "node-a", "uuid": "\(nodeA)", "vcpus": 16, "memory_mb": 32768, "disk_gb": 400, "traits": ["CUSTOM_SSD"],
           "numa_cells": [{"id": 0, "cpus": [0, 1, 2, 3, 4, 5, 6, 7], "siblings": [[0, 1], [2, 3], [4, 5], [6, 7]],
                           "memory_mb": 16384, "pages": {"2048": 1024}, "socket": 0},
                          {"id": 1, "cpus": [8, 9, 10, 11, 12, 13, 14, 15], "memory_mb": 16384, "socket": 1}],
           "pci_devices": [{"address": "0000:3b:00.0", "vendor_id": "8086", "product_id": "1572", "class_code": "020000",
                            "numa_node": 0, "type": "type-PF"},
                           {"address": "0000:3b:02.0", "vendor_id": "8086", "product_id": "154c", "numa_node": 0,
                            "type": "type-VF", "parent_address": "0000:3b:00.0"}]},
          {"hostname": "node-b", "uuid": "\(nodeB)", "vcpus": 16, "memory_mb": 32768, "disk_gb": 400}
        ]}
        """
    }

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-compute-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Self.nodesJSON().write(to: directory.appendingPathComponent("nodes.json"), atomically: true, encoding: .utf8)
        server = try await Self.start(directory)
    }

    static func start(_ directory: URL) async throws -> ServerProcess {
        try await ServerProcess(
            database: directory.appendingPathComponent("allot.sqlite").path, logDirectory: directory,
            arguments: fakeDriver(nodesFile: directory.appendingPathComponent("nodes.json").path))
    }

    /// The fake driver over `nodesFile` on host `host`, with nothing held back and no periodic audit: every count
    /// a test reads is what its claims made. The options `allot serve` and `allot agent` share.
    static func fakeDriver(nodesFile: String, host: String = "test-host") -> [String] {
        [
            "--driver", "fake", "--nodes-file", nodesFile, "--compute-host", host, "--cpu-allocation-ratio", "1",
            "--ram-allocation-ratio", "1", "--reserved-host-memory-mb", "0", "--audit-interval", "0",
        ]
    }

    mutating func restart() async throws {
        server = try await Self.start(directory)
    }

    func json(_ path: String, _ method: HTTPRequest.Method = .get, _ body: String? = nil) async throws -> (Int, [String: Any]) {
        let response = try await server.request(path, method: method, body: body)
        return (Int(response.status.code), response.body?.jsonObject ?? [:])
    }

    func remove() {
        server.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    static func buildBody(_ uuid: String, node: String, vcpus: Int = 2, memory: Int = 4096, disk: Int = 20, specs: String = "{}") -> String {
        """
        {"uuid": "\(uuid)", "project_id": "proj", "user_id": "user", "node": "\(node)",
         "flavor": {"name": "f\(vcpus)", "vcpus": \(vcpus), "memory_mb": \(memory), "root_gb": \(disk), "extra_specs": \(specs)}}
        """
    }

    static func moveBody(_ uuid: String, instance: String, kind: String, dest: String, vcpus: Int = 4) -> String {
        let flavor = kind == "resize"
            ? ", \"flavor\": {\"name\": \"f\(vcpus)\", \"vcpus\": \(vcpus), \"memory_mb\": \(vcpus * 2048), \"root_gb\": 40}" : ""
        return "{\"uuid\": \"\(uuid)\", \"instance_uuid\": \"\(instance)\", \"kind\": \"\(kind)\", \"dest_node\": \"\(dest)\"\(flavor)}"
    }

    /// Every node's usage three ways — live (the agent), Placement, and rebuilt from the ledger's instances and
    /// migrations — plus each provider's consumers in Placement against what the ledger says they hold.
    func expectAgreement(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let (_, nodesAnswer) = try await json("/compute/v1/nodes")
        let nodes = nodesAnswer["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.count == 2, sourceLocation: sourceLocation)
        let (_, instancesAnswer) = try await json("/compute/v1/instances")
        let (_, migrationsAnswer) = try await json("/compute/v1/migrations?in_progress=true")
        var instances: [String: Instance] = [:]
        for object in instancesAnswer["instances"] as? [[String: Any]] ?? [] {
            let instance = Self.instance(object)
            instances[instance.uuid] = instance
        }
        var expected: [String: [String: [String: Int]]] = [:]  // node → consumer → class → amount
        var moving: [String: Migration] = [:]
        for object in migrationsAnswer["migrations"] as? [[String: Any]] ?? [] {
            let migration = Self.migration(object)
            moving[migration.instanceUUID] = migration
        }
        for instance in instances.values {
            for (consumer, amounts) in LedgerRecords(instance: instance, migration: moving[instance.uuid]).allocations {
                for (node, classes) in amounts where !classes.isEmpty { expected[node, default: [:]][consumer] = classes }
            }
        }
        for node in nodes {
            let uuid = node["uuid"] as? String ?? ""
            let live = node["usage"] as? [String: Int] ?? [:]
            let (_, usages) = try await json("/resource_providers/\(uuid)/usages")
            let placement = (usages["usages"] as? [String: Int] ?? [:]).filter { $0.value != 0 }
            var rebuilt: [String: Int] = [:]
            for classes in (expected[uuid] ?? [:]).values { for (rc, n) in classes { rebuilt[rc, default: 0] += n } }
            #expect(live == placement, "live vs Placement on \(uuid)", sourceLocation: sourceLocation)
            #expect(rebuilt == placement, "ledger vs Placement on \(uuid)", sourceLocation: sourceLocation)
            let (_, allocations) = try await json("/resource_providers/\(uuid)/allocations")
            var consumers: [String: [String: Int]] = [:]
            for (consumer, value) in allocations["allocations"] as? [String: Any] ?? [:] {
                consumers[consumer] = (value as? [String: Any])?["resources"] as? [String: Int] ?? [:]
            }
            #expect(consumers == expected[uuid] ?? [:], "consumers on \(uuid)", sourceLocation: sourceLocation)
        }
    }

    static func flavor(_ object: Any?) -> Flavor {
        let f = object as? [String: Any] ?? [:]
        return Flavor(
            name: f["name"] as? String ?? "", vcpus: f["vcpus"] as? Int ?? 0, memoryMB: f["memory_mb"] as? Int ?? 0,
            rootGB: f["root_gb"] as? Int ?? 0, ephemeralGB: f["ephemeral_gb"] as? Int ?? 0, swapMB: f["swap"] as? Int ?? 0,
            extraSpecs: f["extra_specs"] as? [String: String] ?? [:])
    }

    static func instance(_ o: [String: Any]) -> Instance {
        Instance(
            uuid: o["uuid"] as? String ?? "", projectID: o["project_id"] as? String ?? "", userID: o["user_id"] as? String ?? "",
            flavor: flavor(o["flavor"]), bootFromVolume: o["boot_from_volume"] as? Bool ?? false,
            node: o["node"] as? String ?? "", vmState: VMState(rawValue: o["vm_state"] as? String ?? "") ?? .error)
    }

    static func migration(_ o: [String: Any]) -> Migration {
        Migration(
            uuid: o["uuid"] as? String ?? "", instanceUUID: o["instance_uuid"] as? String ?? "",
            kind: MigrationKind(rawValue: o["kind"] as? String ?? "") ?? .resize,
            status: MigrationStatus(rawValue: o["status"] as? String ?? "") ?? .error,
            sourceNode: o["source_node"] as? String ?? "", destNode: o["dest_node"] as? String ?? "",
            oldFlavor: flavor(o["old_flavor"]), newFlavor: flavor(o["new_flavor"]))
    }
}

@Suite(.serialized) struct ComputeAPITests {
    static let nodeA = ComputeServer.nodeA
    static let nodeB = ComputeServer.nodeB

    @Test func claimsAndMovesThroughTheAPIAgreeWithPlacement() async throws {
        let server = try await ComputeServer()
        defer { server.remove() }
        let (status, nodes) = try await server.json("/compute/v1/nodes")
        #expect(status == 200)
        #expect((nodes["nodes"] as? [[String: Any]])?.compactMap { $0["hostname"] as? String }.sorted() == ["node-a", "node-b"])
        let vm1 = newUUID(), vm2 = newUUID(), m1 = newUUID(), m2 = newUUID()
        #expect(try await server.json("/compute/v1/instances", .post, ComputeServer.buildBody(vm1, node: Self.nodeA)).0 == 201)
        #expect(try await server.json("/compute/v1/instances", .post, ComputeServer.buildBody(vm1, node: Self.nodeA)).0 == 200)
        #expect(try await server.json("/compute/v1/instances", .post, ComputeServer.buildBody(vm2, node: Self.nodeB)).0 == 201)
        for vm in [vm1, vm2] {
            #expect(try await server.json("/compute/v1/instances/\(vm)/state", .post, "{\"vm_state\": \"active\", \"task_state\": null}").0 == 200)
        }
        try await server.expectAgreement()
        // Resize across nodes, finished then reverted.
        let (moved, change) = try await server.json(
            "/compute/v1/migrations", .post, ComputeServer.moveBody(m1, instance: vm1, kind: "resize", dest: Self.nodeB))
        #expect(moved == 201)
        #expect((change["migration"] as? [String: Any])?["status"] as? String == "pre-migrating")
        try await server.expectAgreement()
        #expect(try await server.json("/compute/v1/migrations/\(m1)/finish", .post).0 == 200)
        try await server.expectAgreement()
        #expect(try await server.json("/compute/v1/migrations/\(m1)/revert", .post).0 == 200)
        try await server.expectAgreement()
        // Live migration rolled back, then one that completes.
        #expect(try await server.json("/compute/v1/migrations", .post,
                                      ComputeServer.moveBody(m2, instance: vm2, kind: "live-migration", dest: Self.nodeA)).0 == 201)
        #expect(try await server.json("/compute/v1/migrations/\(m2)/rollback", .post).0 == 200)
        try await server.expectAgreement()
        #expect(try await server.json("/compute/v1/migrations/\(m2)/confirm", .post).0 == 409)
        // Deleting mid-move releases both ends.
        let m3 = newUUID()
        #expect(try await server.json("/compute/v1/migrations", .post,
                                      ComputeServer.moveBody(m3, instance: vm1, kind: "resize", dest: Self.nodeB, vcpus: 8)).0 == 201)
        #expect(try await server.json("/compute/v1/instances/\(vm1)", .delete).0 == 200)
        let (_, migration) = try await server.json("/compute/v1/migrations/\(m3)")
        #expect(migration["status"] as? String == "cancelled")
        try await server.expectAgreement()
        let (_, audit) = try await server.json("/compute/v1/audit", .post)
        #expect(audit["nodes"] as? Int == 2)
        #expect((audit["repaired"] as? [Any])?.isEmpty == true)
        try await server.expectAgreement()
    }

    @Test func refusalsAreClearAndChangeNothing() async throws {
        let server = try await ComputeServer()
        defer { server.remove() }
        let vm = newUUID()
        let (tooBig, body) = try await server.json(
            "/compute/v1/instances", .post, ComputeServer.buildBody(vm, node: Self.nodeA, vcpus: 64))
        #expect(tooBig == 409)
        let error = (body["errors"] as? [[String: Any]])?.first
        #expect(error?["code"] as? String == "allot.does_not_fit")
        #expect((error?["detail"] as? String)?.contains("VCPU requested 64, free 16") == true)
        let (missingTrait, traitBody) = try await server.json(
            "/compute/v1/instances", .post,
            ComputeServer.buildBody(vm, node: Self.nodeB, specs: "{\"trait:CUSTOM_SSD\": \"required\"}"))
        #expect(missingTrait == 409)
        #expect(((traitBody["errors"] as? [[String: Any]])?.first?["code"] as? String) == "allot.traits_not_met")
        #expect(try await server.json("/compute/v1/instances", .post, "{\"uuid\": \"nope\"}").0 == 400)
        #expect(try await server.json("/compute/v1/instances", .post, "not json").0 == 400)
        #expect(try await server.json("/compute/v1/instances", .post,
                                      ComputeServer.buildBody(vm, node: Self.nodeA).replacingOccurrences(of: "\"proj\"", with: "\"p\", \"color\": 1")).0 == 400)
        #expect(try await server.json("/compute/v1/instances/\(vm)").0 == 404)
        #expect(try await server.json("/compute/v1/migrations/\(newUUID())/finish", .post).0 == 404)
        #expect(try await server.json("/compute/v1/instances", .post, ComputeServer.buildBody(vm, node: newUUID())).0 == 404)
        let (_, instances) = try await server.json("/compute/v1/instances")
        #expect((instances["instances"] as? [Any])?.isEmpty == true)
        // Without a token: 401.
        let client = TestClient(host: "127.0.0.1", port: server.server.port)
        client.connect()
        let anonymous = try await client.execute(TestClient.Request("/compute/v1/nodes", method: .get, headers: [:]))
        #expect(anonymous.status == .unauthorized)
        try? await client.shutdown()
        try await server.expectAgreement()
    }

    @Test func theCLIDrivesClaimsAndShowsTables() async throws {
        let server = try await ComputeServer()
        defer { server.remove() }
        let url = "http://127.0.0.1:\(server.server.port)"
        let vm = newUUID()
        let built = try await runCLI(["claim", "build", "--url", url, "--token", "admin", "--node", Self.nodeA, "--uuid", vm,
                                "--vcpus", "2", "--memory-mb", "1024", "--root-gb", "10"])
        #expect(built.status == 0)
        #expect(built.output.contains("instance \(vm): building on node \(Self.nodeA)"))
        let nodes = try await runCLI(["nodes", "--url", url, "--token", "admin"])
        #expect(nodes.output.contains("node-a"))
        #expect(nodes.output.contains("DISK_GB 10, MEMORY_MB 1024, VCPU 2"))
        // The topology the driver reported, kept in the ledger.
        let topology = try await runCLI(["nodes", "--topology", "--url", url, "--token", "admin"])
        #expect(topology.output.contains("NUMA cell 0: CPUs 0-7 (4 cores, siblings 0+1 2+3 4+5 6+7), 16384 MiB, huge pages 1024 × 2 MiB, socket 0"))
        #expect(topology.output.contains("NUMA cell 1: CPUs 8-15 (8 cores), 16384 MiB, socket 1"))
        #expect(topology.output.contains("PCI 0000:3b:02.0 8086:154c class 000000 type-VF of 0000:3b:00.0, NUMA cell 0"))
        #expect(topology.output.contains("no NUMA or PCI topology reported"))
        let topologyJSON = try await runCLI(["nodes", "--topology", "--json", "--url", url, "--token", "admin"])
        let listedNodes = (try JSONSerialization.jsonObject(with: Data(topologyJSON.output.utf8)) as? [String: Any])?["nodes"] as? [[String: Any]]
        let nodeA = listedNodes?.first { $0["uuid"] as? String == Self.nodeA }
        #expect(((nodeA?["topology"] as? [String: Any])?["pci_devices"] as? [Any])?.count == 2)
        let listed = try await runCLI(["instances", "--url", url, "--token", "admin", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [String: Any]
        #expect((object?["instances"] as? [[String: Any]])?.first?["uuid"] as? String == vm)
        let refused = try await runCLI(["claim", "build", "--url", url, "--token", "admin", "--node", Self.nodeA,
                                  "--vcpus", "99", "--memory-mb", "1"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("does not fit") && refused.output.contains("allot.does_not_fit"))
        let common = ["--url", url, "--token", "admin"]
        #expect(try await runCLI(["claim", "state", vm, "--vm-state", "active"] + common).status == 0)
        let migration = newUUID()
        let resized = try await runCLI(["claim", "resize", vm, "--dest-node", Self.nodeB, "--migration", migration,
                                  "--vcpus", "4", "--memory-mb", "2048", "--root-gb", "10"] + common)
        #expect(resized.status == 0)
        #expect(resized.output.contains("migration \(migration): resize pre-migrating"))
        #expect(try await runCLI(["claim", "finish", migration] + common).output.contains("resize finished"))
        let reverted = try await runCLI(["claim", "revert", migration] + common)
        #expect(reverted.output.contains("resize reverted"))
        #expect(reverted.output.contains("instance \(vm): active on node \(Self.nodeA)"))
        let audit = try await runCLI(["audit", "--url", url, "--token", "admin"])
        #expect(audit.output.contains("nodes 2"))
        try await server.expectAgreement()
    }

    /// kill -9 of `allot serve` at random points during a stream of claims and moves, 50 times: after each restart
    /// and one audit nothing acknowledged is lost, nothing is counted twice, and usages equal the live claims.
    @Test func killNineDuringClaimsAndMovesLosesNothing() async throws {
        var server = try await ComputeServer()
        defer { server.remove() }
        var rng = SplitMix64(seed: 20261201)
        var acknowledged: [String: String] = [:]  // instance uuid → vm_state it was acknowledged in (or "deleted")
        var active: [String] = []
        var moving: [String: String] = [:]  // instance → migration in progress
        for round in 0..<50 {
            let port = server.server.port
            let seed = rng.next()
            let killAfter = 20 + Int(rng.next() % 250)
            let snapshot = (active, moving)
            let progress = AckCounter()
            let worker = Task { () -> [String: String] in
                var local = SplitMix64(seed: seed)
                var (active, moving) = snapshot
                var acks: [String: String] = [:]
                while !Task.isCancelled {
                    let choice = local.next() % 6
                    do {
                        if choice < 2 || active.isEmpty {
                            let vm = newUUID()
                            let node = local.next() % 2 == 0 ? Self.nodeA : Self.nodeB
                            let r = try await ServerProcess.request(port: port, "/compute/v1/instances", method: .post,
                                                                    body: ComputeServer.buildBody(vm, node: node, vcpus: 1, memory: 512, disk: 1))
                            if r.status == .created {
                                acks[vm] = "building"
                                progress.add()
                                let s = try await ServerProcess.request(port: port, "/compute/v1/instances/\(vm)/state",
                                                                        method: .post, body: "{\"vm_state\": \"active\"}")
                                if s.status == .ok { acks[vm] = "active"; active.append(vm) }
                            }
                        } else {
                            let vm = active[Int(local.next() % UInt64(active.count))]
                            if let migration = moving[vm] {
                                let action = ["finish", "rollback", "confirm", "revert"][Int(local.next() % 4)]
                                let r = try await ServerProcess.request(
                                    port: port, "/compute/v1/migrations/\(migration)/\(action)", method: .post)
                                if r.status == .ok, action == "rollback" || action == "confirm" || action == "revert" {
                                    moving[vm] = nil
                                }
                            } else if choice == 5 {
                                let r = try await ServerProcess.request(port: port, "/compute/v1/instances/\(vm)", method: .delete)
                                if r.status == .ok { acks[vm] = "deleted"; active.removeAll { $0 == vm }; progress.add() }
                            } else {
                                let migration = newUUID()
                                let kind = ["resize", "migration", "live-migration"][Int(local.next() % 3)]
                                let r = try await ServerProcess.request(
                                    port: port, "/compute/v1/migrations", method: .post,
                                    body: ComputeServer.moveBody(migration, instance: vm, kind: kind,
                                                                 dest: local.next() % 2 == 0 ? Self.nodeA : Self.nodeB, vcpus: 1))
                                if r.status == .created { moving[vm] = migration }
                            }
                        }
                    } catch {
                        break  // the server is gone
                    }
                }
                return acks
            }
            // The random moment counts from the round's first acknowledgement, so that every round has one however
            // slow the machine is (waiting 10 s at most).
            for _ in 0..<400 where progress.count == 0 { try await Task.sleep(for: .milliseconds(25)) }
            try await Task.sleep(for: .milliseconds(killAfter))
            server.server.kill9()
            worker.cancel()
            let acks = await worker.value
            for (vm, state) in acks { acknowledged[vm] = state }
            try await server.restart()
            let (auditStatus, _) = try await server.json("/compute/v1/audit", .post)
            #expect(auditStatus == 200)
            try await server.expectAgreement()
            // Every acknowledged claim is still there (a later, unacknowledged operation may have moved it on).
            let (_, all) = try await server.json("/compute/v1/instances?deleted=true")
            let states = Dictionary(uniqueKeysWithValues: (all["instances"] as? [[String: Any]] ?? []).map {
                ($0["uuid"] as? String ?? "", $0["vm_state"] as? String ?? "")
            })
            for (vm, state) in acknowledged {
                let stored = states[vm]
                #expect(stored != nil, "round \(round): acknowledged instance \(vm) lost")
                if state == "deleted" { #expect(stored == "deleted", "round \(round): \(vm) came back") }
            }
            // Carry on from what the ledger now says.
            active = states.filter { $0.value != "deleted" && $0.value != "building" }.map(\.key)
            let (_, inProgress) = try await server.json("/compute/v1/migrations?in_progress=true")
            moving = [:]
            for object in inProgress["migrations"] as? [[String: Any]] ?? [] {
                moving[object["instance_uuid"] as? String ?? ""] = object["uuid"] as? String
            }
            // Keep the nodes from filling up: delete instances beyond 20.
            for vm in active.dropFirst(20) {
                _ = try await server.json("/compute/v1/instances/\(vm)", .delete)
                acknowledged[vm] = "deleted"
                moving[vm] = nil
            }
            active = Array(active.prefix(20))
        }
        #expect(acknowledged.count >= 50)
    }

    /// How many operations a round's worker has had acknowledged.
    final class AckCounter: Sendable {
        private let value = Mutex(0)
        func add() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    /// `allot serve` with a dedicated CPU set, PCI specs and aliases: PCPU in Placement, and a pinned build with a
    /// VF through the CLI shows its pinning and device in the API; with the node's only VF taken the next build is
    /// refused with a clear reason; a malformed alias stops the start.
    @Test func pinnedBuildsWithDevicesThroughTheCLI() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-numa-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try ComputeServer.nodesJSON().write(to: directory.appendingPathComponent("nodes.json"), atomically: true, encoding: .utf8)
        let server = try await ServerProcess(
            database: directory.appendingPathComponent("allot.sqlite").path, logDirectory: directory,
            arguments: ComputeServer.fakeDriver(nodesFile: directory.appendingPathComponent("nodes.json").path) + [
                "--cpu-dedicated-set", "2-7,10-15",
                "--pci-device-spec", #"{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet1"}"#,
                "--pci-alias", #"{"name": "vf", "vendor_id": "8086", "product_id": "154c", "device_type": "type-VF", "numa_policy": "required"}"#,
            ])
        defer { server.stop() }
        let inventories = try await server.request("/resource_providers/\(Self.nodeA)/inventories", method: .get).body?.jsonObject
        let classes = inventories?["inventories"] as? [String: [String: Any]]
        #expect(classes?["PCPU"]?["total"] as? Int == 12 && classes?["VCPU"]?["total"] as? Int == 4)
        let common = ["--url", "http://127.0.0.1:\(server.port)", "--token", "admin"]
        let vm = newUUID()
        let built = try await runCLI(["claim", "build", "--node", Self.nodeA, "--uuid", vm, "--vcpus", "2", "--memory-mb", "1024",
                                "--extra-spec", "hw:cpu_policy=dedicated", "--extra-spec", "pci_passthrough:alias=vf:1"] + common)
        #expect(built.status == 0, "\(built.output)")
        let instance = try await server.request("/compute/v1/instances/\(vm)", method: .get).body?.jsonObject
        #expect(instance?["pci_devices"] as? [String] == ["0000:3b:02.0"])
        let cell = ((instance?["numa"] as? [String: Any])?["cells"] as? [[String: Any]])?.first
        #expect(cell?["host_cell"] as? Int == 0 && cell?["pinning"] as? [String: Int] == ["0": 2, "1": 3])
        let usages = try await server.request("/resource_providers/\(Self.nodeA)/usages", method: .get).body?.jsonObject
        #expect((usages?["usages"] as? [String: Int])?["PCPU"] == 2)
        let shown = try await runCLI(["nodes", "--topology"] + common)
        #expect(shown.output.contains("socket 0, pinned 2-3"))
        #expect(shown.output.contains("PCI 0000:3b:02.0 8086:154c class 000000 type-VF of 0000:3b:00.0, NUMA cell 0, claimed (\(vm))"))
        // The PF of the claimed VF is unavailable; it matches no spec here, so it is unassignable anyway.
        #expect(shown.output.contains("PCI 0000:3b:00.0 8086:1572 class 020000 type-PF, NUMA cell 0, unassignable"))
        #expect(try await runCLI(["claim", "state", vm, "--vm-state", "active"] + common).status == 0)
        #expect(try await runCLI(["nodes", "--topology"] + common).output.contains("NUMA cell 0, allocated (\(vm))"))
        // The node's only VF is taken: the next one is refused, and says why.
        let refused = try await runCLI(["claim", "build", "--node", Self.nodeA, "--vcpus", "1", "--memory-mb", "512",
                                  "--extra-spec", "pci_passthrough:alias=vf:1"] + common)
        #expect(refused.status != 0)
        #expect(refused.output.contains("allot.does_not_fit") && refused.output.contains("PCI alias 'vf'"))
        // A bad alias is refused at start-up with the option named.
        let bad = try await runCLI(["serve", "--database", directory.appendingPathComponent("x.sqlite").path, "--auth", "noauth",
                              "--pci-alias", "{\"nom\": 1}"])
        #expect(bad.status != 0 && bad.output.contains("--pci-alias"))
    }

    /// `allot serve` with the linux driver shows this machine's NUMA cells and PCI devices, as the kernel lists
    /// them, through `allot nodes --topology`.
    @Test func serveShowsThisMachinesTopology() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-host-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await ServerProcess(
            database: directory.appendingPathComponent("allot.sqlite").path, logDirectory: directory,
            arguments: ["--instances-path", directory.path, "--audit-interval", "0"])
        defer { server.stop() }
        let fm = FileManager.default
        let cells = ((try? fm.contentsOfDirectory(atPath: "/sys/devices/system/node")) ?? [])
            .filter { $0.hasPrefix("node") && Int($0.dropFirst(4)) != nil }
        let devices = (try? fm.contentsOfDirectory(atPath: "/sys/bus/pci/devices")) ?? []
        let common = ["--url", "http://127.0.0.1:\(server.port)", "--token", "admin"]
        let json = try await runCLI(["nodes", "--topology", "--json"] + common)
        let nodes = (try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])?["nodes"] as? [[String: Any]]
        let topology = nodes?.first?["topology"] as? [String: Any]
        #expect(nodes?.count == 1 && nodes?.first?["driver"] as? String == "linux")
        #expect((topology?["numa_cells"] as? [Any])?.count ?? 0 == cells.count)
        #expect((topology?["pci_devices"] as? [Any])?.count ?? 0 == devices.count)
        let text = try await runCLI(["nodes", "--topology"] + common)
        for cell in cells { #expect(text.output.contains("NUMA cell \(cell.dropFirst(4)): CPUs")) }
        for address in devices { #expect(text.output.contains("PCI \(address) ")) }
    }

    /// Runs the `allot` binary; returns its exit status and stdout+stderr.
    func runCLI(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = ServerProcess.binary
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        return (await process.exitStatus(), String(decoding: data, as: UTF8.self))
    }
}
