import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// `allot host --driver libvirt` through the built binary, against libvirt's built-in test driver.
@Suite struct LibvirtHostCLITests {
    @Test func hostShowsTheTestDriver() async throws {
        let process = Process()
        process.executableURL = ServerProcess.binary
        process.arguments = ["host", "--driver", "libvirt", "--libvirt-uri", "test:///default", "--instances-path", "/", "--json"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        #expect(await process.exitStatus() == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let inventories = object["inventories"] as? [String: [String: Int]]
        #expect(inventories?["VCPU"]?["total"] == 16)
        #expect(inventories?["MEMORY_MB"]?["total"] == 3072)
        let cells = (object["topology"] as? [String: Any])?["numa_cells"] as? [[String: Any]]
        #expect(cells?.count == 2)
        #expect(cells?.map { ($0["cpus"] as? [Int])?.count } == [8, 8])
        let running = object["running"] as? [String: [String: Any]]
        let guest = running?["6695eb01-f6a4-8304-79aa-97f2502e193f"]
        #expect(guest?["name"] as? String == "test")
        #expect(guest?["memory_mb"] as? Int == 2048)
        #expect(object["traits"] as? [String] == [])
        #expect((object["cpu"] as? [String: Any])?["arch"] as? String == "i686")
    }

    /// `allot serve --driver libvirt`: the embedded agent registers libvirt's test host, its cells in the ledger and
    /// its totals in Placement.
    @Test func serveRegistersTheTestDriversHost() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-libvirt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await ServerProcess(
            database: directory.appendingPathComponent("allot.sqlite").path, logDirectory: directory,
            arguments: [
                "--driver", "libvirt", "--libvirt-uri", "test:///default", "--instances-path", directory.path,
                "--audit-interval", "0",
            ])
        defer { server.stop() }
        let nodes = try await server.request("/compute/v1/nodes?topology=true", method: .get).body?.jsonObject["nodes"]
            as? [[String: Any]]
        #expect(nodes?.count == 1)
        let node = try #require(nodes?.first)
        #expect(node["driver"] as? String == "libvirt")
        let cells = (node["topology"] as? [String: Any])?["numa_cells"] as? [[String: Any]]
        #expect(cells?.count == 2)
        let uuid = try #require(node["uuid"] as? String)
        let inventories = try await server.request("/resource_providers/\(uuid)/inventories", method: .get).body?.jsonObject
        let classes = inventories?["inventories"] as? [String: [String: Any]]
        #expect(classes?["VCPU"]?["total"] as? Int == 16)
        #expect(classes?["MEMORY_MB"]?["total"] as? Int == 3072)
    }
}
