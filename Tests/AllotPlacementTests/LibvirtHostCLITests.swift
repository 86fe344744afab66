import Foundation
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
}
