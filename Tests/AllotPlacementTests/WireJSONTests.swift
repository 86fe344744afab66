import AllotCore
import Foundation
import Testing

@testable import AllotKeystone
@testable import AllotPlacement
@testable import AllotTracker

/// The wire and file formats outside the core, now written and read by ``JSONCoding``, against Foundation's
/// `JSONEncoder`/`JSONDecoder` as the oracle: the ledger protocol, the agent's Placement bodies, the tokens file,
/// Keystone's token documents and sign-in body, and the tracker's event lines.
@Suite struct WireJSONTests {
    /// Integral floats as integers, so that Foundation's `16` and our `16.0` compare equal.
    static func normalized(_ value: JSONValue) -> JSONValue {
        switch value {
        case .double(let number) where number == number.rounded() && abs(number) < 9e18: return .int(Int(number))
        case .array(let items): return .array(items.map(normalized))
        case .object(let values, let order): return .object(values.mapValues(normalized), order: order)
        default: return value
        }
    }

    /// Ours and Foundation's encodings of `value` hold the same members and values.
    static func sameTree(_ value: some Encodable, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let ours = try JSONValue.parse(try JSONCoding.encode(value, sortedKeys: true))
        let theirs = try JSONValue.parse(try encoder.encode(value))
        #expect(normalized(ours) == normalized(theirs), sourceLocation: sourceLocation)
    }

    /// Both ways: Foundation reads ours, we read Foundation's, and the members are the same.
    static func checkBothWays<T: Codable & Equatable>(
        _ value: T, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(try JSONDecoder().decode(T.self, from: Data(try JSONCoding.encode(value))) == value,
                sourceLocation: sourceLocation)
        #expect(try JSONCoding.decode(T.self, from: try JSONEncoder().encode(value)) == value, sourceLocation: sourceLocation)
        try sameTree(value, sourceLocation: sourceLocation)
    }

    /// A text decodes to the same value with both.
    static func readBoth<T: Decodable & Equatable>(
        _ type: T.Type, _ text: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let theirs = try JSONDecoder().decode(T.self, from: Data(text.utf8))
        #expect(try JSONCoding.decode(T.self, from: Array(text.utf8)) == theirs, sourceLocation: sourceLocation)
    }

    // MARK: Ledger protocol

    static let flavor = Flavor(name: "small", vcpus: 2, memoryMB: 2048, rootGB: 10, extraSpecs: ["trait:CUSTOM_SSD": "required"])
    static let instance = Instance(
        uuid: newUUID(), projectID: "p", userID: "u", flavor: flavor, node: "n1", vmState: .active, taskState: nil,
        osType: "linux", updatedAt: 1_767_225_600.5, pciDevices: ["0000:3b:00.1"])
    static let migration = Migration(
        uuid: newUUID(), instanceUUID: instance.uuid, kind: .liveMigration, status: .running, sourceNode: "n1",
        destNode: "n2", oldFlavor: flavor, newFlavor: Flavor(name: "big", vcpus: 8, memoryMB: 8192), updatedAt: 2.25)
    static let node = ComputeNode(
        uuid: "n1", hostname: "compute-1", host: "compute-1", driver: "linux",
        inventories: ["VCPU": Inventory(total: 16, reserved: 2, allocationRatio: 4), "MEMORY_MB": Inventory(total: 65536)],
        traits: ["COMPUTE_NODE"], stats: ["num_instances": 1], usage: ["VCPU": 2], updatedAt: 3,
        topology: HostTopology(
            cells: [NUMACell(id: 0, cpus: [0, 1], memoryMB: 2048, pages: [2048: 8])],
            devices: [PCIDevice(address: "0000:3b:00.1", vendorID: "10de", productID: "1db4", numaNode: 0)]),
        hostConfig: HostConfig(dedicatedCPUs: [1], pciAliases: [PCIAlias(name: "gpu", vendorID: "10de")]))

    @Test func ledgerRequestsBothWays() throws {
        var request = LedgerRequest()
        try Self.checkBothWays(request)
        request.uuid = "u"
        request.uuids = ["a", "b"]
        request.host = "compute-1"
        request.node = "n1"
        request.computeNode = Self.node
        request.operation = .update(instance: "i", vmState: nil, taskState: .some(nil), osType: "windows")
        request.consumer = "c"
        request.since = 42
        request.includeDeleted = true
        request.inProgressOnly = false
        try Self.checkBothWays(request)
        // A request with a field of the wrong type is an error naming the field.
        #expect(throws: DecodingError.self) {
            try JSONCoding.decode(LedgerRequest.self, from: Array(#"{"since": "yesterday"}"#.utf8))
        }
    }

    @Test func ledgerAnswersBothWays() throws {
        let change = ComputeChange(
            before: LedgerRecords(instance: nil, migration: nil),
            after: LedgerRecords(instance: Self.instance, migration: Self.migration))
        var answer = LedgerAnswer()
        try Self.checkBothWays(answer)
        answer.refusal = .doesNotFit(node: "n1", resourceClass: "VCPU", requested: 4, free: 1)
        answer.node = Self.node
        answer.generation = 7
        answer.nodes = [Self.node]
        answer.ledgers = ["n1": WireNodeLedger(instances: [Self.instance], migrations: [Self.migration], generation: 3)]
        answer.generations = ["n1": 3, "n2": 0]
        answer.save = NodeSave(savedNode: true, createdProvider: true, changedInventories: false, changedTraits: true)
        answer.commit = CommitResult(change: change, generations: ["n1": 4])
        answer.reconciled = .repaired
        answer.consumers = ["c": ["n1": ["VCPU": 2, "MEMORY_MB": 2048]]]
        answer.sequence = 99
        answer.providers = ["n1"]
        answer.traits = ["CUSTOM_SSD", "COMPUTE_NODE"]
        answer.instance = Self.instance
        answer.migration = Self.migration
        answer.instances = [Self.instance]
        answer.migrations = [Self.migration]
        try Self.checkBothWays(answer)
    }

    // MARK: The agent's Placement bodies

    @Test func placementBodies() throws {
        try Self.sameTree(PlacementWire.NewProvider(uuid: "u", name: "n", parent: nil))
        try Self.sameTree(PlacementWire.NewProvider(uuid: "u", name: "n", parent: "p"))
        try Self.sameTree(PlacementWire.ProviderName(name: "compute-1 \"é\""))
        let inventories = PlacementWire.Inventories(
            generation: 5, ["VCPU": Inventory(total: 8, allocationRatio: 16), "DISK_GB": Inventory(total: 100, allocationRatio: 1.5)])
        try Self.checkBothWays(inventories)
        try Self.checkBothWays(PlacementWire.Traits(generation: 1, traits: ["COMPUTE_NODE", "CUSTOM_GOLD"]))
        let consumer = PlacementWire.ConsumerAllocations(
            allocations: ["n1": PlacementWire.Resources(resources: ["VCPU": 2])], projectID: "p", userID: "u",
            generation: nil, consumerType: "INSTANCE")
        try Self.sameTree(consumer)
        // A new consumer's generation is sent as null, not left out.
        #expect(try JSONValue.parse(try JSONCoding.encode(consumer))["consumer_generation"] == .null)
        try Self.sameTree(PlacementWire.Reshape(inventories: ["n1": inventories], allocations: ["c": consumer]))
        try Self.readBoth(PlacementWire.VersionDocument.self, #"{"versions": [{"id": "v1.0", "max_version": "1.39"}]}"#)
        try Self.readBoth(PlacementWire.ProviderList.self, """
            {"resource_providers": [{"uuid": "u", "name": "n", "generation": 3, "parent_provider_uuid": null,
             "links": []}, {"uuid": "v", "name": "w", "generation": 0, "parent_provider_uuid": "u"}]}
            """)
        try Self.readBoth(PlacementWire.ProviderAllocations.self, #"{"allocations": {"c": {"resources": {"VCPU": 1}}}}"#)
        try Self.readBoth(PlacementWire.ConsumerAllocationsRead.self, #"{"allocations": {}}"#)
        try Self.readBoth(PlacementWire.ConsumerAllocationsRead.self, #"{"allocations": {}, "consumer_generation": 2}"#)
        try Self.readBoth(PlacementWire.Inventories.self, """
            {"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 8, "reserved": 0, "min_unit": 1,
             "max_unit": 8, "step_size": 1, "allocation_ratio": 16.0}}}
            """)
        // A missing generation is an error, not 0.
        #expect(throws: DecodingError.self) {
            try JSONCoding.decode(PlacementWire.Traits.self, from: Array(#"{"traits": []}"#.utf8))
        }
    }

    // MARK: Tokens file

    @Test func tokensFileBothWays() throws {
        let contents = TokenFile.Contents(tokens: [
            TokenFile.StoredRecord(
                token: nil, digest: String(repeating: "ab", count: 32), name: "compute-1", user: "nova",
                project: "service", roles: ["service"], hosts: ["compute-1", "compute/2"]),
            TokenFile.StoredRecord(token: nil, digest: String(repeating: "0", count: 64), name: nil, user: "ops",
                                   project: nil, roles: ["reader", "admin"], hosts: nil),
        ])
        try Self.checkBothWays(contents)
        // What `write` puts in the file: sorted keys, indented, read back the same by both.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(newUUID()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = [TokenRecord(token: "0123456789abcdef0123", user: "admin", project: "admin", roles: ["admin"],
                                   name: "admin")]
        try TokenFile.write(records, to: path)
        let data = try #require(FileManager.default.contents(atPath: path))
        #expect(try TokenFile.parse(data, origin: path) == records)
        #expect(try JSONDecoder().decode(TokenFile.Contents.self, from: data).tokens.map(\.digest) == records.map(\.digest))
        #expect(String(decoding: data, as: UTF8.self) == """
            {
              "tokens": [
                {
                  "digest": "\(records[0].digest)",
                  "name": "admin",
                  "project": "admin",
                  "roles": [
                    "admin"
                  ],
                  "user": "admin"
                }
              ]
            }
            """)
        // Older files (Foundation's `"key" : value`, escaped slashes) still read.
        let older = #"{"tokens" : [{"token" : "0123456789abcdef0123", "user" : "a\/b", "roles" : []}]}"#
        #expect(try TokenFile.parse(Data(older.utf8), origin: "env").map(\.user) == ["a/b"])
    }

    // MARK: Keystone

    static let tokenDocument = """
        {"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"}, "id": "u1",
         "name": "nova", "password_expires_at": null}, "audit_ids": ["x"], "expires_at": "2026-12-03T21:00:00.000000Z",
         "issued_at": "2026-12-03T20:00:00.000000Z", "project": {"domain": {"id": "default", "name": "Default"},
         "id": "p1", "name": "service"}, "is_domain": false, "is_admin_project": false,
         "roles": [{"id": "r1", "name": "service"}, {"id": "r2", "name": "reader"}],
         "system": {"all": true}, "catalog": [{"endpoints": [], "type": "identity", "id": "c", "name": "keystone"}]}}
        """

    @Test func keystoneBodies() throws {
        try Self.readBoth(KeystoneToken.Body.self, Self.tokenDocument)
        try Self.readBoth(KeystoneToken.Body.self, #"{"token": {"user": {"id": "u"}, "expires_at": "2026-01-01T00:00:00Z"}}"#)
        let token = try KeystoneToken.decode(Data(Self.tokenDocument.utf8))
        #expect(token.userID == "u1" && token.projectID == "p1" && token.roles == ["service", "reader"])
        #expect(token.systemScope == "all" && !token.isAdminProject)
        #expect(throws: KeystoneError.self) { try KeystoneToken.decode(Data(#"{"token": {"user": {}}}"#.utf8)) }
        try Self.sameTree(PasswordSignIn(
            user: "allot", password: "pa\"ss/wörd\\", userDomain: "Default", project: "service", projectDomain: "Default"))
    }

    // MARK: Tracker events

    /// The event line as it was written before the JSON writer wrote it (the oracle: the same bytes).
    static func formerJSON(_ event: TrackerEvent) -> String {
        func quote(_ text: String) -> String {
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
                }
            }
            return out + "\""
        }
        var members = [
            "\"sequence\":\(event.sequence)", "\"time\":\(event.time)", "\"type\":\(quote(event.type))",
            "\"node\":\(event.node.map(quote) ?? "null")",
        ]
        let body = event.fields.sorted { $0.key < $1.key }.map { key, value in
            let text = switch value {
            case .string(let s): quote(s)
            case .int(let i): String(i)
            case .double(let d): d.isFinite ? String(d) : "null"
            case .bool(let b): b ? "true" : "false"
            }
            return "\(quote(key)):\(text)"
        }
        members.append("\"fields\":{\(body.joined(separator: ","))}")
        return "{" + members.joined(separator: ",") + "}"
    }

    @Test(arguments: [
        TrackerEvent(sequence: 1, time: 1_767_225_600.123, type: "claim.build", node: "n1", fields: [:]),
        TrackerEvent(sequence: 2, time: 1_767_225_600, type: "audit.node", node: nil, fields: [
            "instance": .string("i\"1\\ \n\t\u{1}\u{1F} é 😀"), "count": .int(-3), "ratio": .double(0.25),
            "whole": .double(16), "huge": .double(1e300), "gone": .double(.nan), "ok": .bool(true), "no": .bool(false),
        ]),
        TrackerEvent(sequence: 3, time: 1e16, type: "compute.metrics.update", node: "n\u{7F}", fields: ["load.1": .double(0.5)]),
    ])
    func eventLinesAreWhatTheyWere(_ event: TrackerEvent) throws {
        #expect(event.json == Self.formerJSON(event))
        #expect(try JSONValue.parse(Array(event.json.utf8))["sequence"] == .int(event.sequence))
    }
}
