import AllotCore
import AllotPlacement
import AllotStore
import AllotTracker
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The ledger protocol agents use to keep their books in `allot serve` (`POST /compute/v1/ledger/{call}`).
@Suite struct LedgerProtocolTests {
    static let flavor = Flavor(name: "small", vcpus: 2, memoryMB: 2048, rootGB: 10, extraSpecs: ["trait:CUSTOM_SSD": "required"])

    /// Every operation and every refusal decodes to exactly what was encoded (the task-state update's three
    /// cases included: unchanged, cleared, set).
    @Test func operationsAndRefusalsSurviveTheWire() throws {
        let instance = Instance(uuid: newUUID(), projectID: "p", userID: "u", flavor: Self.flavor, bootFromVolume: true,
                                node: newUUID(), vmState: .active, taskState: "spawning", osType: "linux", updatedAt: 1.5)
        let migration = Migration(uuid: newUUID(), instanceUUID: instance.uuid, kind: .liveMigration, status: .running,
                                  sourceNode: newUUID(), destNode: newUUID(), oldFlavor: Self.flavor,
                                  newFlavor: Flavor(name: "big", vcpus: 8, memoryMB: 8192), updatedAt: 2.25)
        let operations: [ComputeOperation] = [
            .build(instance), .abortBuild(instance: instance.uuid), .move(migration),
            .progress(migration: migration.uuid, status: .postMigrating), .finish(migration: migration.uuid),
            .confirm(migration: migration.uuid), .revert(migration: migration.uuid), .rollback(migration: migration.uuid),
            .update(instance: instance.uuid, vmState: .stopped, taskState: nil, osType: nil),
            .update(instance: instance.uuid, vmState: nil, taskState: .some(nil), osType: "windows"),
            .update(instance: instance.uuid, vmState: nil, taskState: .some("powering-off"), osType: nil),
            .delete(instance: instance.uuid),
        ]
        for operation in operations {
            #expect(try JSONDecoder().decode(ComputeOperation.self, from: JSONEncoder().encode(operation)) == operation)
        }
        let errors: [ComputeError] = [
            .invalidFlavor("x"), .invalidRequest("y"), .nodeNotFound("n"), .instanceNotFound("i"), .migrationNotFound("m"),
            .doesNotFit(node: "n", resourceClass: "VCPU", requested: 4, free: 1),
            .unitRule(node: "n", resourceClass: "VCPU", requested: 3, rule: "step_size 2"),
            .noInventory(node: "n", resourceClass: "CUSTOM_GPU"), .missingTrait(node: "n", trait: "CUSTOM_SSD"),
            .forbiddenTrait(node: "n", trait: "CUSTOM_SLOW"), .conflictingRequest("c"), .illegalTransition("t"),
            .concurrentUpdate("u"), .nodeDisabled("n"), .placementRefused(reason: "r", nodes: ["a", "b"]),
        ]
        for error in errors {
            #expect(try JSONDecoder().decode(ComputeError.self, from: JSONEncoder().encode(error)) == error)
        }
        let bad = Data(#"{"op": "explode", "uuid": "x"}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ComputeOperation.self, from: bad) }
    }

    /// Through the HTTP API: the probe, the policy (a reader may not use it), unknown calls, malformed
    /// arguments (a refusal, nothing changes), a node saved and a claim committed with its allocations, and a
    /// claim that does not fit coming back as the same typed refusal.
    @Test func ledgerCallsOverHTTP() async throws {
        try await TestAPI.with(auth: .tokens(AuthTests.tokens), compute: true) { api in
            try await api.app.test(.router) { client in
                let admin = HTTPFields.admin(token: "admin-token-0123456789")
                func call(_ name: String, _ request: LedgerRequest, headers: HTTPFields = admin) async throws -> LedgerAnswer {
                    try await client.execute(uri: "/compute/v1/ledger/\(name)", method: .post, headers: headers,
                                             body: ByteBuffer(bytes: try JSONEncoder().encode(request))) { response in
                        #expect(response.status == .ok)
                        return try JSONDecoder().decode(LedgerAnswer.self, from: Data(response.body.readableBytesView))
                    }
                }
                try await client.execute(uri: "/compute/v1/ledger", method: .get, headers: admin) {
                    #expect($0.status == .ok && $0.body.jsonObject["ledger_protocol"] as? Int == LedgerProtocol.version)
                }
                try await client.execute(uri: "/compute/v1/ledger", method: .get,
                                         headers: .admin(token: "reader-token-0123456789")) {
                    #expect($0.status == .forbidden)
                }
                try await client.execute(uri: "/compute/v1/ledger/nodes", method: .post,
                                         headers: .admin(token: "reader-token-0123456789"), body: ByteBuffer(string: "{}")) {
                    #expect($0.status == .forbidden)
                }
                try await client.execute(uri: "/compute/v1/ledger/explode", method: .post, headers: admin,
                                         body: ByteBuffer(string: "{}")) {
                    #expect($0.status == .notFound)
                }
                // Malformed or missing arguments are refusals.
                try await client.execute(uri: "/compute/v1/ledger/commit", method: .post, headers: admin,
                                         body: ByteBuffer(string: "{\"operation\": 5}")) { response in
                    let answer = try JSONDecoder().decode(LedgerAnswer.self, from: Data(response.body.readableBytesView))
                    guard case .invalidRequest = answer.refusal else {
                        Issue.record("expected invalidRequest, got \(String(describing: answer.refusal))")
                        return
                    }
                }
                guard case .invalidRequest = try await call("commit", LedgerRequest()).refusal else {
                    Issue.record("a commit without an operation must be refused")
                    return
                }

                let node = ComputeNode(uuid: newUUID(), hostname: "h1", host: "host-1", driver: "fake",
                                       inventories: ["VCPU": Inventory(total: 4), "MEMORY_MB": Inventory(total: 4096),
                                                     "DISK_GB": Inventory(total: 100)], traits: ["COMPUTE_NODE", "CUSTOM_SSD"])
                var save = LedgerRequest()
                save.computeNode = node
                #expect(try await call("save-node", save).save?.createdProvider == true)
                var nodes = LedgerRequest()
                nodes.host = "host-1"
                #expect(try await call("nodes", nodes).nodes?.map(\.uuid) == [node.uuid])

                var build = LedgerRequest()
                let instance = Instance(uuid: newUUID(), projectID: "p", userID: "u", flavor: Self.flavor, node: node.uuid)
                build.operation = .build(instance)
                let committed = try #require(try await call("commit", build).commit)
                #expect(committed.change.after.instance?.uuid == instance.uuid)
                #expect(committed.generations[node.uuid] == 1)
                #expect(try await api.store.usages(providerUUID: node.uuid).1["VCPU"] == 2)

                var tooBig = LedgerRequest()
                tooBig.operation = .build(Instance(uuid: newUUID(), projectID: "p", userID: "u",
                                                   flavor: Flavor(name: "huge", vcpus: 8, memoryMB: 512), node: node.uuid))
                #expect(try await call("commit", tooBig).refusal
                        == .doesNotFit(node: node.uuid, resourceClass: "VCPU", requested: 8, free: 2))
                #expect(try await api.store.usages(providerUUID: node.uuid).1["VCPU"] == 2)

                var views = LedgerRequest()
                views.uuids = [node.uuid]
                let wire = try #require(try await call("node-ledgers", views).ledgers?[node.uuid])
                #expect(wire.generation == 1 && wire.instances.map(\.uuid) == [instance.uuid])
            }
        }
    }
}
