import AllotCore
import AllotPlacement
import AllotStore
import AllotTracker
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// The ledger protocol checks what agents send as the compute API does, and a token bound to hosts acts only
/// on those hosts' nodes.
@Suite struct LedgerTrustTests {
    static let tokens = AuthTests.tokens + [
        TokenRecord(token: "agent1-token-0123456789", user: "nova", project: "service", roles: ["service"],
                    hosts: ["host-1"]),
        TokenRecord(token: "service-token-0123456789", user: "nova", project: "service", roles: ["service"]),
    ]
    static let flavor = Flavor(name: "small", vcpus: 2, memoryMB: 2048, rootGB: 10)

    static func node(_ host: String, _ hostname: String) -> ComputeNode {
        ComputeNode(uuid: newUUID(), hostname: hostname, host: host, driver: "fake",
                    inventories: ["VCPU": Inventory(total: 8), "MEMORY_MB": Inventory(total: 8192),
                                  "DISK_GB": Inventory(total: 100)], traits: ["COMPUTE_NODE"])
    }

    /// Sends one ledger call; returns the status and the decoded answer (when 200).
    static func call(
        _ client: some TestClientProtocol, _ name: String, _ request: LedgerRequest, token: String
    ) async throws -> (HTTPResponse.Status, LedgerAnswer?, String?) {
        try await client.execute(uri: "/compute/v1/ledger/\(name)", method: .post, headers: .admin(token: token),
                                 body: ByteBuffer(bytes: try JSONEncoder().encode(request))) { response in
            let answer = response.status == .ok
                ? try JSONDecoder().decode(LedgerAnswer.self, from: Data(response.body.readableBytesView)) : nil
            return (response.status, answer, response.body.errorCode)
        }
    }

    @Test func operationsAndNodesAreCheckedAsTheComputeAPIChecksThem() async throws {
        try await TestAPI.with(auth: .tokens(Self.tokens), compute: true) { api in
            try await api.app.test(.router) { client in
                let admin = "admin-token-0123456789"
                let node = Self.node("host-1", "h1")
                var save = LedgerRequest()
                save.computeNode = node
                #expect(try await Self.call(client, "save-node", save, token: admin).1?.refusal == nil)
                func refusal(_ operation: ComputeOperation) async throws -> String? {
                    var request = LedgerRequest()
                    request.operation = operation
                    guard case .invalidRequest(let text)? = try await Self.call(client, "commit", request, token: admin).1?.refusal
                    else { return nil }
                    return text
                }
                let good = Instance(uuid: newUUID(), projectID: "p", userID: "u", flavor: Self.flavor, node: node.uuid)
                var badProject = good
                badProject.projectID = "p 1; drop"
                #expect(try await refusal(.build(badProject)) == "'project_id' must have 1 to 255 letters, digits, '-', '_' or '.'.")
                var badUUID = good
                badUUID.uuid = "NOT-A-UUID"
                #expect(try await refusal(.build(badUUID)) == "'uuid' must be a UUID.")
                var presetCells = good
                presetCells.pciDevices = ["0000:3b:00.0"]
                #expect(try await refusal(.build(presetCells)) != nil)
                #expect(try await refusal(.update(instance: good.uuid, vmState: nil, taskState: nil, osType: "lin ux")) != nil)
                #expect(try await refusal(.delete(instance: "x")) == "'uuid' must be a UUID.")
                // Nothing of that was written.
                #expect(try await api.store.usages(providerUUID: node.uuid).1.values.allSatisfy { $0 == 0 })
                // Nodes: a bad uuid, an unknown class, a bad trait, a negative count.
                for broken in [
                    { (n: inout ComputeNode) in n.uuid = "nope" }, { n in n.inventories["vcpu"] = Inventory(total: 1) },
                    { n in n.traits.insert("not a trait") }, { n in n.stats["num_instances"] = -1 },
                    { n in n.hostname = "" }, { n in n.inventories["VCPU"] = Inventory(total: -3) },
                ] as [(inout ComputeNode) -> Void] {
                    var bad = Self.node("host-1", "bad")
                    broken(&bad)
                    var request = LedgerRequest()
                    request.computeNode = bad
                    let answer = try await Self.call(client, "save-node", request, token: admin).1
                    guard case .invalidRequest? = answer?.refusal else {
                        Issue.record("expected a refusal for \(bad)")
                        continue
                    }
                }
                #expect(try await api.store.provider(uuid: "nope") == nil)
                // A valid build still goes through.
                #expect(try await refusal(.build(good)) == nil)
            }
        }
    }

    @Test func aTokenBoundToHostsActsOnlyOnTheirNodes() async throws {
        try await TestAPI.with(auth: .tokens(Self.tokens), compute: true) { api in
            try await api.app.test(.router) { client in
                let (admin, agent1, service) = ("admin-token-0123456789", "agent1-token-0123456789", "service-token-0123456789")
                let mine = Self.node("host-1", "h1"), theirs = Self.node("host-2", "h2")
                var save = LedgerRequest()
                // Saving a node of another host: 403, typed; of its own host: fine.
                save.computeNode = theirs
                let (status, _, code) = try await Self.call(client, "save-node", save, token: agent1)
                #expect(status == .forbidden)
                #expect(code == "allot.host_not_allowed")
                #expect(try await api.store.provider(uuid: theirs.uuid) == nil)
                save.computeNode = mine
                #expect(try await Self.call(client, "save-node", save, token: agent1).0 == .ok)
                // A token without hosts keeps today's rights.
                save.computeNode = theirs
                #expect(try await Self.call(client, "save-node", save, token: service).0 == .ok)
                // A node saved under another host cannot be taken over by renaming its host.
                var hijack = theirs
                hijack.host = "host-1"
                save.computeNode = hijack
                #expect(try await Self.call(client, "save-node", save, token: agent1).0 == .forbidden)

                // Commits: a build on the other host's node is refused, on its own fine.
                var build = LedgerRequest()
                let there = Instance(uuid: newUUID(), projectID: "p", userID: "u", flavor: Self.flavor, node: theirs.uuid)
                build.operation = .build(there)
                #expect(try await Self.call(client, "commit", build, token: agent1).0 == .forbidden)
                #expect(try await api.store.usages(providerUUID: theirs.uuid).1["VCPU"] ?? 0 == 0)
                #expect(try await Self.call(client, "commit", build, token: admin).1?.commit != nil)
                var delete = LedgerRequest()
                delete.operation = .delete(instance: there.uuid)
                #expect(try await Self.call(client, "commit", delete, token: agent1).0 == .forbidden)
                build.operation = .build(Instance(uuid: newUUID(), projectID: "p", userID: "u", flavor: Self.flavor, node: mine.uuid))
                #expect(try await Self.call(client, "commit", build, token: agent1).1?.commit != nil)

                // Removing: only its own host's nodes.
                var remove = LedgerRequest()
                remove.uuid = theirs.uuid
                #expect(try await Self.call(client, "remove-node", remove, token: agent1).0 == .forbidden)
                #expect(try await api.store.provider(uuid: theirs.uuid) != nil)
                // Reads stay open to it.
                var nodes = LedgerRequest()
                nodes.host = "host-2"
                #expect(try await Self.call(client, "nodes", nodes, token: agent1).1?.nodes?.count == 1)
            }
        }
    }
}
