import Foundation
import Testing

@testable import AllotCore

/// ``JSONCoding`` against Foundation's `JSONEncoder` and `JSONDecoder` as the oracle: every stored and wire type of
/// the core decodes from Foundation's text and Foundation decodes ours to the same value, with the same members;
/// the semantics the code relies on (key order, omitted nils, optionals, exact numbers) and the errors match.
@Suite struct JSONCodingTests {
    // MARK: Helpers

    /// Integral floats written as integers, so that Foundation's `2` and our `2.0` compare equal.
    static func normalized(_ value: JSONValue) -> JSONValue {
        switch value {
        case .double(let number) where number == number.rounded() && abs(number) < 9e18: return .int(Int(number))
        case .array(let items): return .array(items.map(normalized))
        case .object(let values, let order): return .object(values.mapValues(normalized), order: order)
        default: return value
        }
    }

    /// Checks `value` both ways against Foundation, unsorted and sorted.
    static func checkBothWays<T: Codable & Equatable>(
        _ value: T, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let ours = try JSONCoding.encode(value)
        let theirs = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(T.self, from: Data(ours)) == value, "Foundation reads ours", sourceLocation: sourceLocation)
        #expect(try JSONCoding.decode(T.self, from: theirs) == value, "we read Foundation's", sourceLocation: sourceLocation)
        #expect(try JSONCoding.decode(T.self, from: ours) == value, "we read ours", sourceLocation: sourceLocation)
        // The same members and values, in the same (sorted) order.
        let sortingEncoder = JSONEncoder()
        sortingEncoder.outputFormatting = .sortedKeys
        let sortedOurs = try JSONValue.parse(try JSONCoding.encode(value, sortedKeys: true))
        let sortedTheirs = try JSONValue.parse(try sortingEncoder.encode(value))
        #expect(normalized(sortedOurs) == normalized(sortedTheirs), sourceLocation: sourceLocation)
        #expect(normalized(try JSONValue.parse(ours).sortingKeys()) == normalized(sortedTheirs), sourceLocation: sourceLocation)
        // Pretty text holds the same document.
        #expect(try JSONValue.parse(try JSONCoding.encode(value, sortedKeys: true, pretty: true)) == sortedOurs,
                sourceLocation: sourceLocation)
    }

    /// A decoding error as its kind and coding path (`typeMismatch .a[1]`).
    static func shape(_ error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error as? DecodingError {
        case .typeMismatch(_, let context)?: return "typeMismatch \(path(context))"
        case .valueNotFound(_, let context)?: return "valueNotFound \(path(context))"
        case .keyNotFound(let key, let context)?: return "keyNotFound \(key.stringValue) at \(path(context))"
        // Foundation gives no path for a number out of range ("not valid JSON"): compare the kind only.
        case .dataCorrupted?: return "dataCorrupted"
        default: return "not a DecodingError: \(error)"
        }
    }

    /// Decodes `text` with both; both succeed with the same value, or both fail with the same kind and path.
    static func decodeBoth<T: Decodable & Equatable>(
        _ type: T.Type, _ text: String, sourceLocation: SourceLocation = #_sourceLocation
    ) -> String {
        let theirs = Result { try JSONDecoder().decode(T.self, from: Data(text.utf8)) }
        let ours = Result { try JSONCoding.decode(T.self, from: Array(text.utf8)) }
        switch (theirs, ours) {
        case (.success(let a), .success(let b)):
            #expect(a == b, "\(text)", sourceLocation: sourceLocation)
            return "ok"
        case (.failure(let a), .failure(let b)):
            #expect(shape(a) == shape(b), "\(text)", sourceLocation: sourceLocation)
            return shape(b)
        case (.success(let a), .failure(let b)):
            Issue.record("\(text): Foundation read \(a), we failed: \(b)", sourceLocation: sourceLocation)
            return "differs"
        case (.failure(let a), .success(let b)):
            Issue.record("\(text): Foundation failed (\(a)), we read \(b)", sourceLocation: sourceLocation)
            return "differs"
        }
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    // MARK: Semantics

    struct Ordered: Codable, Equatable {
        var zulu: Int
        var alpha: String?
        var mike: [Double]
        var nested: [String: Int]?
    }

    @Test func keysInEncodingOrderOrSorted() throws {
        let value = Ordered(zulu: 1, alpha: "a", mike: [0.5, 2], nested: ["b": 2, "a": 1])
        let ours = try JSONValue.parse(try JSONCoding.encode(value))
        #expect(ours.orderedMembers?.map(\.0) == ["zulu", "alpha", "mike", "nested"])
        #expect(Self.text(try JSONCoding.encode(value, sortedKeys: true))
                == #"{"alpha":"a","mike":[0.5,2.0],"nested":{"a":1,"b":2},"zulu":1}"#)
        try Self.checkBothWays(value)
    }

    @Test func nilIsLeftOutAndOptionalsDecodeFromMissingOrNull() throws {
        let value = Ordered(zulu: 1, alpha: nil, mike: [], nested: nil)
        #expect(Self.text(try JSONCoding.encode(value)) == #"{"zulu":1,"mike":[]}"#)
        #expect(Self.decodeBoth(Ordered.self, #"{"zulu": 1, "alpha": null, "mike": [], "nested": null}"#) == "ok")
        #expect(Self.decodeBoth(Ordered.self, #"{"zulu": 1, "mike": []}"#) == "ok")
        try Self.checkBothWays(value)
    }

    struct NestedOptionals: Codable, Equatable {
        var twice: String??
        var list: [Int?]
        var map: [String: String?]
    }

    @Test func nestedOptionals() throws {
        for value in [
            NestedOptionals(twice: .some(nil), list: [1, nil, 3], map: ["a": nil, "b": "x"]),
            NestedOptionals(twice: "x", list: [], map: [:]), NestedOptionals(twice: nil, list: [nil], map: ["": ""]),
        ] {
            // Foundation reads `.some(nil)` back as `nil`: so do we.
            let ours = try JSONCoding.decode(NestedOptionals.self, from: try JSONCoding.encode(value))
            #expect(ours == (try JSONDecoder().decode(NestedOptionals.self, from: try JSONEncoder().encode(value))))
            let sortingEncoder = JSONEncoder()
            sortingEncoder.outputFormatting = .sortedKeys
            let theirs = Self.text(Array(try sortingEncoder.encode(value)))
            #expect(Self.text(try JSONCoding.encode(value, sortedKeys: true)) == theirs)
        }
        #expect(Self.decodeBoth(NestedOptionals.self, #"{"twice": null, "list": [null, 2], "map": {"k": null}}"#) == "ok")
    }

    struct Numbers: Codable, Equatable {
        var int: Int
        var double: Double
        var small: Int8?
        var unsigned: UInt32?
        var float: Float?
    }

    @Test(arguments: [Int.max, Int.min, 0, -1, 1 << 53 + 1, 9_007_199_254_740_993])
    func integersStayExact(_ number: Int) throws {
        try Self.checkBothWays(Numbers(int: number, double: 0))
        #expect(Self.text(try JSONCoding.encode([number])) == "[\(number)]")
    }

    @Test(arguments: [0.1, 1e-7, 1e300, -2.5, 5e-324, 1.7976931348623157e308, 1_767_225_600.123456, 16, 1e15, 1e16])
    func doublesStayExact(_ number: Double) throws {
        try Self.checkBothWays(Numbers(int: 0, double: number, small: -3, unsigned: 7, float: 0.1))
        #expect(try JSONCoding.decode([Double].self, from: try JSONCoding.encode([number])) == [number])
    }

    @Test func numbersDecodeAsFoundationDecodesThem() {
        // A float with an integral value is an integer, as Foundation allows; other floats and out-of-range numbers
        // are not.
        #expect(Self.decodeBoth(Numbers.self, #"{"int": 2.0, "double": 1}"#) == "ok")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": 1e2, "double": -0}"#) == "ok")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": -0.0, "double": 1E+2}"#) == "ok")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": 1.5, "double": 1}"#) == "dataCorrupted")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": 1e30, "double": 1}"#) == "dataCorrupted")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": 9223372036854775808, "double": 1}"#) == "dataCorrupted")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": 1, "double": 1e400}"#) == "dataCorrupted")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": 1, "double": 1, "small": 300}"#) == "dataCorrupted")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": 1, "double": 1, "unsigned": -1}"#) == "dataCorrupted")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": 1, "double": 9223372036854775807}"#) == "ok")
    }

    @Test func wrongTypesAreErrorsWithTheirPath() {
        #expect(Self.decodeBoth(Numbers.self, #"{"int": "1", "double": 1}"#) == "typeMismatch .int")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": true, "double": 1}"#) == "typeMismatch .int")
        #expect(Self.decodeBoth(Numbers.self, #"{"int": null, "double": 1}"#) == "valueNotFound .int")
        #expect(Self.decodeBoth(Numbers.self, #"{"double": 1}"#) == "keyNotFound int at ")
        #expect(Self.decodeBoth(Numbers.self, #"[1]"#) == "typeMismatch ")
        #expect(Self.decodeBoth(Ordered.self, #"{"zulu": 1, "alpha": 5, "mike": []}"#) == "typeMismatch .alpha")
        #expect(Self.decodeBoth(Ordered.self, #"{"zulu": 1, "mike": [1, "x"]}"#) == "typeMismatch .mike[1]")
        #expect(Self.decodeBoth(Ordered.self, #"{"zulu": 1, "mike": [1, null]}"#) == "valueNotFound .mike[1]")
        #expect(Self.decodeBoth(Ordered.self, #"{"zulu": 1, "mike": {}}"#) == "typeMismatch .mike")
        #expect(Self.decodeBoth(Ordered.self, #"{"zulu": 1, "mike": [], "nested": {"a": false}}"#)
                == "typeMismatch .nested.a")
        #expect(Self.decodeBoth([Bool].self, #"[true, 0]"#) == "typeMismatch [1]")
        #expect(Self.decodeBoth([String: [Int: Int]].self, #"{"x": {"a": 1}}"#) == "typeMismatch .x.a")
        #expect(Self.decodeBoth([String].self, #"["a", "b"#) == "dataCorrupted")
    }

    @Test func notJSONIsDataCorruptedWithTheParsersMessage() throws {
        do {
            _ = try JSONCoding.decode([Int].self, from: Array("[1, 2".utf8))
            Issue.record("decoded a truncated text")
        } catch DecodingError.dataCorrupted(let context) {
            #expect(context.codingPath.isEmpty)
            #expect(context.debugDescription.contains("Expecting ',' delimiter: line 1 column 6 (char 5)"))
            #expect(context.underlyingError is JSONParseError)
        }
    }

    @Test(arguments: [
        "plain", "", "quote \" backslash \\ slash /", "controls \u{0} \u{1} \u{8} \u{C} \u{1F} \n\r\t",
        "é ü ß 中文 😀 \u{2028} \u{2029} \u{FEFF}", "emoji 👩‍👩‍👧 flags 🇫🇷", String(repeating: "x", count: 5000),
    ])
    func stringsAndEscapes(_ text: String) throws {
        try Self.checkBothWays([text: text])
        try Self.checkBothWays(Ordered(zulu: 0, alpha: text, mike: []))
    }

    @Test func escapedTextDecodesAsFoundationDecodesIt() {
        #expect(Self.decodeBoth([String].self, #"["\ud83d\ude00", "\u00e9\/\b\f\n\r\t\"\\", "\u0000"]"#) == "ok")
        #expect(Self.decodeBoth([String: String].self, #"{"\u00e9": "\u4e2d"}"#) == "ok")
    }

    @Test func dictionariesWithIntegerKeys() throws {
        try Self.checkBothWays([2048: 512, 1_048_576: 2, 4: 1])
        #expect(Self.decodeBoth([Int: Int].self, #"{"2048": 3}"#) == "ok")
        #expect(Self.decodeBoth([Int: Int].self, #"{"x": 3}"#) == "typeMismatch .x")
    }

    @Test func enumsWithPayloads() throws {
        try Self.checkBothWays([NUMARequest.PageSize.small, .large, .any, .kb(2048)])
        #expect(Self.text(try JSONCoding.encode([NUMARequest.PageSize.small, .kb(4)])) == #"[{"small":{}},{"kb":{"_0":4}}]"#)
    }

    /// A subclass encoding its superclass through `superEncoder()` (no Allot type does; kept to Foundation's form).
    class Base: Codable, Equatable {
        var id: Int
        init(id: Int) { self.id = id }
        static func == (a: Base, b: Base) -> Bool { a.id == b.id && type(of: a) == type(of: b) && a.same(b) }
        func same(_ other: Base) -> Bool { true }
    }

    final class Derived: Base {
        var name: String
        private enum CodingKeys: String, CodingKey { case name }
        init(id: Int, name: String) {
            self.name = name
            super.init(id: id)
        }
        required init(from decoder: any Decoder) throws {
            name = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .name)
            try super.init(from: decoder.container(keyedBy: CodingKeys.self).superDecoder())
        }
        override func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try super.encode(to: container.superEncoder())
        }
        override func same(_ other: Base) -> Bool { (other as? Derived)?.name == name }
    }

    @Test func superEncoderAndDecoder() throws {
        let value = Derived(id: 7, name: "seven")
        #expect(Self.text(try JSONCoding.encode(value)) == #"{"name":"seven","super":{"id":7}}"#)
        #expect(try JSONCoding.decode(Derived.self, from: try JSONEncoder().encode(value)) == value)
        #expect(try JSONDecoder().decode(Derived.self, from: Data(try JSONCoding.encode(value))) == value)
    }

    @Test func refusesWhatJSONCannotHold() throws {
        #expect(throws: EncodingError.self) { try JSONCoding.encode([Double.nan]) }
        #expect(throws: EncodingError.self) { try JSONCoding.encode(Numbers(int: 0, double: .infinity)) }
        #expect(throws: EncodingError.self) { try JSONCoding.encode([UInt64.max]) }
        #expect(try JSONCoding.encode([UInt64(Int.max)]) == Array("[9223372036854775807]".utf8))
        struct Nothing: Encodable { func encode(to encoder: any Encoder) throws {} }
        #expect(throws: EncodingError.self) { try JSONCoding.encode(Nothing()) }
        #expect((try? JSONCoding.encode(["k": Nothing()])) == Array(#"{"k":{}}"#.utf8))
    }

    /// `JSONEncoder` writes these in forms of its own (base64, a URL's text, a decimal number): refused by name.
    @Test func refusesFoundationTypesByName() {
        func message(_ body: () throws -> Any) -> String {
            do {
                _ = try body()
                return "no error"
            } catch EncodingError.invalidValue(_, let context) {
                return context.debugDescription
            } catch DecodingError.typeMismatch(_, let context) {
                return context.debugDescription
            } catch {
                return "\(error)"
            }
        }
        #expect(message { try JSONCoding.encode(["d": Data([1, 2])]) }.contains(".Data"))
        #expect(message { try JSONCoding.encode([URL(fileURLWithPath: "/")]) }.contains(".URL"))
        #expect(message { try JSONCoding.encode([Date()]) }.contains(".Date"))
        #expect(message { try JSONCoding.encode([Decimal(1)]) }.contains(".Decimal"))
        #expect(message { try JSONCoding.decode([Date].self, from: Array("[1]".utf8)) }.contains(".Date"))
        #expect(message { try JSONCoding.decode([Data].self, from: Array(#"["AQI="]"#.utf8)) }.contains(".Data"))
    }

    @Test func layouts() throws {
        let value = JSONValue.object(["a": [1, 2], "b": .object([:], order: []), "c": [], "d": .object(["e": .null])])
        #expect(value.serialized() == #"{"a": [1, 2], "b": {}, "c": [], "d": {"e": null}}"#)
        #expect(Self.text(value.serializedBytes(.compact)) == #"{"a":[1,2],"b":{},"c":[],"d":{"e":null}}"#)
        #expect(Self.text(value.serializedBytes(.indented)) == """
            {
              "a": [
                1,
                2
              ],
              "b": {},
              "c": [],
              "d": {
                "e": null
              }
            }
            """)
        #expect(Self.text(try JSONCoding.encode(value, sortedKeys: true)) == Self.text(value.serializedBytes(.compact)))
        let unsorted = JSONValue.object(["z": .object(["y": 1, "x": 2]), "a": [.object(["c": 1, "b": 2])]])
        #expect(Self.text(try JSONCoding.encode(unsorted, sortedKeys: true)) == #"{"a":[{"b":2,"c":1}],"z":{"x":2,"y":1}}"#)
        #expect(Self.text(try JSONCoding.encode(unsorted)) == #"{"z":{"y":1,"x":2},"a":[{"c":1,"b":2}]}"#)
    }

    // MARK: The core's stored and wire types

    static let flavor = Flavor(
        name: "m1.large \"é\"", vcpus: 4, memoryMB: 8192, rootGB: 40, ephemeralGB: 1, swapMB: 512,
        extraSpecs: ["hw:cpu_policy": "dedicated", "resources1:CUSTOM_GPU": "1", "trait:HW_CPU_X86_AVX2": "required"])
    static let placement = NUMAPlacement(cells: [
        .init(guestCell: 0, hostCell: 1, pinning: [0: 4, 1: 6, 10: 12], reservedCPUs: [5, 7], sharedVCPUs: 0,
              memoryMB: 4096, pageSizeKB: 2048),
        .init(guestCell: 1, hostCell: 0, pinning: [:], reservedCPUs: [], sharedVCPUs: 2, memoryMB: 1024, pageSizeKB: 4),
    ])
    static let instance = Instance(
        uuid: "8c1e7a4e-6d8f-4a57-9d53-1c0c2b1e9a01", projectID: "proj", userID: "user", flavor: flavor,
        bootFromVolume: true, node: "node-1", vmState: .active, taskState: "resize_prep", osType: nil,
        updatedAt: 1_767_225_600.25, numa: placement, pciDevices: ["0000:3b:00.1"],
        childAllocations: ["pci-child": ["CUSTOM_PCI_10DE_1DB4": 1]])
    static let migration = Migration(
        uuid: "m-1", instanceUUID: instance.uuid, kind: .resize, status: .migrating, sourceNode: "node-1",
        destNode: "node-2", oldFlavor: flavor, newFlavor: Flavor(name: "small", vcpus: 1, memoryMB: 512),
        updatedAt: 12, oldNUMA: placement, newNUMA: nil, oldPCIDevices: ["0000:3b:00.1"], newPCIDevices: [],
        oldChildAllocations: ["c": ["VCPU": 2]], newChildAllocations: [:])
    static let topology = HostTopology(
        cells: [
            NUMACell(id: 0, cpus: [0, 1, 2, 3], siblings: [[0, 2], [1, 3]], memoryMB: 8192, pages: [2048: 1024], socket: 0),
            NUMACell(id: 1, cpus: [4, 5], memoryMB: 4096, pages: [2048: 16, 1_048_576: 2]),
        ],
        devices: [
            PCIDevice(address: "0000:3b:00.0", vendorID: "8086", productID: "154D", classCode: "020000", numaNode: 0,
                      kind: .pf, driver: "ixgbe"),
            PCIDevice(address: "0000:3b:10.0", vendorID: "8086", productID: "10ed", numaNode: 0, kind: .vf,
                      parentAddress: "0000:3b:00.0"),
            PCIDevice(address: "0000:af:00.0", vendorID: "10de", productID: "1db4"),
        ])
    static let hostConfig = HostConfig(
        dedicatedCPUs: [2, 3], sharedCPUs: [0, 1], strategy: .spread,
        pciSpecs: [
            PCIDeviceSpec(vendorID: "8086", address: "0000:3b:*.*", tags: ["physical_network": "physnet1", "trusted": "true"]),
            PCIDeviceSpec(productID: "1db4"),
        ],
        pciAliases: [
            PCIAlias(name: "gpu", vendorID: "10de", productID: "1db4", deviceType: .pci, numaPolicy: .preferred),
            PCIAlias(name: "vf", tags: ["physical_network": "physnet1"]),
        ],
        pciInPlacement: true,
        numaInPlacement: .init(cpuAllocationRatio: 4, ramAllocationRatio: 1.5, reservedCPUs: 1, reservedMemoryMB: 512))
    static let node = ComputeNode(
        uuid: "node-1", hostname: "compute-1.example", host: "compute-1", driver: "fake",
        inventories: ["VCPU": Inventory(total: 8, reserved: 1, allocationRatio: 16), "MEMORY_MB": Inventory(total: 16384),
                      "DISK_GB": Inventory(total: 100, minUnit: 2, maxUnit: 50, stepSize: 2, allocationRatio: 1.5)],
        traits: ["COMPUTE_NODE", "CUSTOM_GOLD"], stats: ["num_instances": 2], usage: ["VCPU": 3], disabled: true,
        updatedAt: 1_767_225_600.123456, topology: topology, hostConfig: hostConfig)

    @Test func computeRecords() throws {
        try Self.checkBothWays(Self.flavor)
        try Self.checkBothWays(Self.instance)
        try Self.checkBothWays(Self.migration)
        try Self.checkBothWays(Self.node)
        try Self.checkBothWays(ComputeNode(uuid: "n", hostname: "h", host: "h", driver: "linux", inventories: [:]))
        try Self.checkBothWays(Self.topology)
        try Self.checkBothWays(Self.hostConfig)
        try Self.checkBothWays(HostConfig())
        try Self.checkBothWays(Self.placement)
        try Self.checkBothWays(HostClaim(numa: Self.placement, pciDevices: ["a"], childAllocations: ["n": ["VCPU": 1]]))
        try Self.checkBothWays(HostClaim(numa: nil, pciDevices: []))
    }

    @Test func ledgerValues() throws {
        let records = LedgerRecords(instance: Self.instance, migration: Self.migration)
        let change = ComputeChange(before: LedgerRecords(instance: nil, migration: nil), after: records)
        try Self.checkBothWays(change)
        try Self.checkBothWays(CommitResult(
            change: change, generations: ["node-1": 7, "node-2": 0],
            providers: ["node-1": ProviderView(
                providerID: 3, generation: 9, usage: ["VCPU": 2], inventories: Self.node.inventories,
                traits: ["COMPUTE_NODE"], disabled: false, isNode: true)]))
        try Self.checkBothWays(NodeSave(
            savedNode: true, createdProvider: false, changedInventories: true, changedTraits: false,
            changedPCIProviders: true, reshapedConsumers: ["c1", "c2"]))
        try Self.checkBothWays([Reconciled.consistent, .repaired, .cleared])
    }

    static let operations: [ComputeOperation] = [
        .build(instance), .abortBuild(instance: "i"), .move(migration), .progress(migration: "m", status: .postMigrating),
        .finish(migration: "m"), .confirm(migration: "m"), .revert(migration: "m"), .rollback(migration: "m"),
        .delete(instance: "i"), .update(instance: "i", vmState: .stopped, taskState: .some(nil), osType: "linux"),
        .update(instance: "i", vmState: nil, taskState: .some("powering-off"), osType: nil),
        .update(instance: "i", vmState: nil, taskState: nil, osType: nil),
    ]

    @Test(arguments: operations)
    func operationsBothWays(_ operation: ComputeOperation) throws {
        try Self.checkBothWays(operation)
    }

    @Test func refusalsBothWays() throws {
        let errors: [ComputeError] = [
            .invalidFlavor("f"), .invalidRequest("r"), .nodeNotFound("n"), .instanceNotFound("i"),
            .migrationNotFound("m"), .doesNotFit(node: "n", resourceClass: "VCPU", requested: 4, free: 2),
            .unitRule(node: "n", resourceClass: "DISK_GB", requested: 3, rule: "step_size 2"),
            .noInventory(node: "n", resourceClass: "PCPU"), .missingTrait(node: "n", trait: "T"),
            .forbiddenTrait(node: "n", trait: "T"), .conflictingRequest("c"), .illegalTransition("t"),
            .concurrentUpdate("u"), .nodeDisabled("n"), .topologyDoesNotFit(node: "n", reason: "no 1G pages"),
            .placementRefused(reason: "409", nodes: ["a", "b"]),
        ]
        try Self.checkBothWays(errors)
        #expect(Self.decodeBoth(ComputeOperation.self, #"{"op": "explode", "uuid": "x"}"#) == "dataCorrupted")
        #expect(Self.decodeBoth(ComputeOperation.self, #"{"op": "abort"}"#) == "keyNotFound uuid at ")
        #expect(Self.decodeBoth(ComputeOperation.self, #"{"op": "build", "instance": {"uuid": 1}}"#)
                == "typeMismatch .instance.uuid")
    }

    @Test func nodeFileTopologyForms() {
        // What node files and `--pci-device-spec` give: fields left out take their defaults.
        #expect(Self.decodeBoth(NUMACell.self, #"{"id": 0, "cpus": [1, 0], "memory_mb": 1024}"#) == "ok")
        #expect(Self.decodeBoth(PCIDevice.self, #"{"address": "0000:00:01.0", "vendor_id": "8086", "product_id": "1"}"#)
                == "ok")
        #expect(Self.decodeBoth(PCIDeviceSpec.self, #"{"vendor_id": "8086", "trusted": true, "physical_network": "p"}"#)
                == "ok")
        #expect(Self.decodeBoth(PCIDeviceSpec.self, #"{"vendor_id": "8086", "trusted": 1}"#) == "dataCorrupted")
        #expect(Self.decodeBoth(PCIAlias.self, #"{"name": "a", "device_type": "type-XX"}"#) == "dataCorrupted")
        #expect(Self.decodeBoth([NUMACell].self, #"[{"id": 0, "cpus": [0], "memory_mb": 1, "pages": {"2048": "x"}}]"#)
                == "typeMismatch [0].pages[2048]")
    }
}
