import AllotCore
import AllotTracker
import Foundation
import Testing

/// Nova's provider config files: what they add to which node, and the files that are refused.
struct ProviderConfigTests {
    static let header = "meta:\n  schema_version: '1.0'\nproviders:\n"

    @Test func entriesTargetEveryNodeOrOneAndTheExplicitOneWins() throws {
        let configs = try ProviderConfig.parse(Self.header + """
              - identification:
                  uuid: '$COMPUTE_NODE'
                inventories:
                  additional:
                    - CUSTOM_LICENSE:
                        total: 4
                        reserved: 1
                        max_unit: 2
                        allocation_ratio: 2
                traits:
                  additional:
                    - CUSTOM_RACK_7
              - identification:
                  uuid: 'AAAAAAAA-0000-4000-8000-000000000001'
                traits:
                  additional: [CUSTOM_GPU_HOST]
              - identification:
                  name: node-c
                inventories:
                  additional:
                    - CUSTOM_FPGA: {total: 2}
              - identification:
                  name: empty-entry
            """, source: "site.yaml")
        #expect(configs.count == 3)  // the entry that adds nothing is ignored
        let every = try #require(ProviderConfig.additions(for: "x", hostname: "node-x", in: configs))
        #expect(every.target == .everyNode)
        #expect(every.inventories["CUSTOM_LICENSE"] == Inventory(total: 4, reserved: 1, maxUnit: 2, allocationRatio: 2))
        #expect(every.traits == ["CUSTOM_RACK_7"])
        let byUUID = try #require(ProviderConfig.additions(
            for: "aaaaaaaa-0000-4000-8000-000000000001", hostname: "node-a", in: configs))
        #expect(byUUID.traits == ["CUSTOM_GPU_HOST"] && byUUID.inventories.isEmpty)
        let byName = try #require(ProviderConfig.additions(for: "y", hostname: "node-c", in: configs))
        #expect(byName.inventories["CUSTOM_FPGA"]?.total == 2 && byName.traits.isEmpty)
    }

    @Test(arguments: [
        ("not: [yaml", "not YAML"),
        ("providers: []\n", "schema_version is missing"),
        ("meta:\n  schema_version: '2.0'\nproviders: []\n", "not supported"),
        (header + "  - identification: {uuid: '$COMPUTE_NODE'}\n    inventories:\n      additional:\n        - VCPU: {total: 4}\n",
         "only CUSTOM_ resource classes"),
        (header + "  - identification: {uuid: '$COMPUTE_NODE'}\n    traits:\n      additional: [HW_CPU_X86_AVX2]\n",
         "only CUSTOM_ traits"),
        (header + "  - identification: {uuid: 'not-a-uuid'}\n    traits:\n      additional: [CUSTOM_A]\n",
         "neither a uuid"),
        (header + "  - identification: {uuid: '$COMPUTE_NODE', name: x}\n    traits:\n      additional: [CUSTOM_A]\n",
         "exactly one of uuid and name"),
        (header + "  - identification: {name: x}\n    inventories:\n      additional:\n        - CUSTOM_A: {reserved: 1}\n",
         "needs a total"),
        (header + "  - identification: {name: x}\n    inventories:\n      additional:\n        - CUSTOM_A: {total: 2, reserved: 3}\n",
         "makes no sense"),
    ])
    func badFilesAreRefusedWithTheReason(_ text: String, _ reason: String) {
        #expect {
            _ = try ProviderConfig.parse(text, source: "bad.yaml")
        } throws: { error in
            let problem = error as? ProviderConfig.Problem
            return problem?.source == "bad.yaml" && problem?.reason.contains(reason) == true
        }
    }

    @Test func aDirectoryOfFilesIsReadInOrderAndANodeNamedTwiceIsRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-pc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let entry = "  - identification: {name: node-a}\n    traits:\n      additional: [CUSTOM_A]\n"
        try (Self.header + entry).write(to: directory.appendingPathComponent("10-a.yaml"), atomically: true, encoding: .utf8)
        try "ignored".write(to: directory.appendingPathComponent("README"), atomically: true, encoding: .utf8)
        #expect(try ProviderConfig.load(directory: directory.path).map(\.traits) == [["CUSTOM_A"]])
        try (Self.header + entry).write(to: directory.appendingPathComponent("20-b.yaml"), atomically: true, encoding: .utf8)
        #expect(throws: ProviderConfig.Problem.self) { try ProviderConfig.load(directory: directory.path) }
    }

    @Test func theTrackerOffersTheAdditionsAndRefusesAClassTheDriverReports() throws {
        let configuration = TrackerConfiguration(
            host: "h", providerConfigs: [
                ProviderConfig(target: .everyNode, inventories: ["CUSTOM_LICENSE": Inventory(total: 4)], traits: ["CUSTOM_R"]),
                ProviderConfig(target: .name("odd"), inventories: ["VCPU": Inventory(total: 1)]),
            ])
        let host = NodeResources.host(HostInventory(vcpus: 4, memoryMB: 8192, diskGB: 10))
        let inventories = try configuration.inventories(for: host, uuid: "u", hostname: "n")
        #expect(inventories["CUSTOM_LICENSE"]?.total == 4 && inventories["VCPU"]?.total == 4)
        #expect(configuration.configuredTraits(uuid: "u", hostname: "n") == ["CUSTOM_R"])
        #expect(throws: HostDriverError.self) { try configuration.inventories(for: host, uuid: "u", hostname: "odd") }
    }
}
