import AllotStore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import SQLKit
import Testing

/// Two `allot serve` over one database, one running the agent of a fake-driver node, the other `--no-agent`:
/// the node's view (`GET /compute/v1/nodes`) follows claims made through either.
@Suite(.serialized) struct NodeViewReplicaTests {
    static let node = "eeeeeeee-0000-4000-8000-0000000000e1"
    static let postgresURL = ProcessInfo.processInfo.environment["ALLOT_TEST_POSTGRES_URL"]

    @Test func nodeViewsFollowClaimsThroughEitherReplicaOnSQLite() async throws {
        let directory = try AgentTests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await Self.scenario(database: directory.appendingPathComponent("shared.sqlite").path, directory: directory)
    }

    @Test(.enabled(if: postgresURL != nil, "needs ALLOT_TEST_POSTGRES_URL"))
    func nodeViewsFollowClaimsThroughEitherReplicaOnPostgreSQL() async throws {
        let directory = try AgentTests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await Self.scenario(database: try await Self.freshPostgresDatabase(), directory: directory)
    }

    static func scenario(database: String, directory: URL) async throws {
        let nodesFile = directory.appendingPathComponent("nodes.json")
        try """
        {"nodes": [{"hostname": "replica-node", "uuid": "\(node)", "vcpus": 32, "memory_mb": 65536, "disk_gb": 800}]}
        """.write(to: nodesFile, atomically: true, encoding: .utf8)
        let first = try await ServerProcess(
            database: database, logDirectory: directory,
            arguments: ComputeServer.fakeDriver(nodesFile: nodesFile.path, host: "host-1"))
        defer { first.stop() }
        let second = try await ServerProcess(database: database, logDirectory: directory)
        defer { second.stop() }
        func on(_ process: ServerProcess, _ path: String, _ method: HTTPRequest.Method = .get, _ body: String? = nil)
            async throws -> (Int, [String: Any])
        {
            let response = try await process.request(path, method: method, body: body)
            return (Int(response.status.code), response.body?.jsonObject ?? [:])
        }
        for index in 0..<6 {
            let replica = index.isMultiple(of: 2) ? first : second
            let (status, _) = try await on(replica, "/compute/v1/instances", .post,
                                           ComputeServer.buildBody(newUUID(), node: node, vcpus: 4))
            #expect(status == 201)
        }
        for replica in [first, second] {
            let usages = try await on(replica, "/resource_providers/\(node)/usages").1["usages"] as? [String: Int]
            #expect(usages?["VCPU"] == 24)
            let instances = try await on(replica, "/compute/v1/instances").1["instances"] as? [[String: Any]]
            #expect(instances?.count == 6)
            let nodes = try await on(replica, "/compute/v1/nodes").1["nodes"] as? [[String: Any]] ?? []
            let view = try #require(nodes.first { $0["uuid"] as? String == node })
            #expect((view["usage"] as? [String: Int])?["VCPU"] == 24, "usage through port \(replica.port)")
            #expect((view["stats"] as? [String: Int])?["num_instances"] == 6, "stats through port \(replica.port)")
            let one = try await on(replica, "/compute/v1/nodes/\(node)").1
            #expect((one["usage"] as? [String: Int])?["VCPU"] == 24, "node through port \(replica.port)")
        }
    }

    /// Creates an empty database on the test server and returns its URL.
    static func freshPostgresDatabase() async throws -> String {
        let base = try #require(postgresURL)
        let name = "allot_views_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try await Database.open(.postgres(url: base), logger: Logger(label: "test"), migrate: false)
        try await admin.withConnection { try await $0.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
        await admin.close()
        guard let query = base.firstIndex(of: "?") else { return base.replacingDatabase(with: name) }
        return base[..<query].description.replacingDatabase(with: name) + base[query...]
    }
}
