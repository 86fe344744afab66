/// Which devices may be assigned to instances (Nova's `[pci] device_spec`): every given field must match; a
/// device matching no spec is never tracked.
public struct PCIDeviceSpec: Hashable, Sendable, Codable {
    /// Four hex digits or `*`.
    public var vendorID: String?
    public var productID: String?
    /// A PCI address pattern: `*` per part, e.g. `0000:3b:*.*` or `*:3b:02.*`.
    public var address: String?
    /// Tags given to matching devices (`physical_network`, `trusted`, anything else), which aliases and pools see.
    public var tags: [String: String]

    public init(vendorID: String? = nil, productID: String? = nil, address: String? = nil, tags: [String: String] = [:]) {
        self.vendorID = vendorID?.lowercased()
        self.productID = productID?.lowercased()
        self.address = address?.lowercased()
        self.tags = tags
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Nova's form: `{"vendor_id": "8086", "product_id": "154c", "address": "0000:3b:*.*",
    /// "physical_network": "physnet1", …}`; every key besides the first three is a tag (values as strings).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        var tags: [String: String] = [:]
        for key in c.allKeys where !["vendor_id", "product_id", "address"].contains(key.stringValue) {
            if let text = try? c.decode(String.self, forKey: key) {
                tags[key.stringValue] = text
            } else if let flag = try? c.decode(Bool.self, forKey: key) {
                tags[key.stringValue] = flag ? "true" : "false"
            } else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: c, debugDescription: "tag values must be strings or booleans")
            }
        }
        self.init(
            vendorID: try c.decodeIfPresent(String.self, forKey: Key(stringValue: "vendor_id")),
            productID: try c.decodeIfPresent(String.self, forKey: Key(stringValue: "product_id")),
            address: try c.decodeIfPresent(String.self, forKey: Key(stringValue: "address")), tags: tags)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encodeIfPresent(vendorID, forKey: Key(stringValue: "vendor_id"))
        try c.encodeIfPresent(productID, forKey: Key(stringValue: "product_id"))
        try c.encodeIfPresent(address, forKey: Key(stringValue: "address"))
        for (key, value) in tags { try c.encode(value, forKey: Key(stringValue: key)) }
    }

    public func matches(_ device: PCIDevice) -> Bool {
        Self.field(vendorID, device.vendorID) && Self.field(productID, device.productID)
            && (address.map { Self.addressMatches($0, device.address) } ?? true)
    }

    static func field(_ pattern: String?, _ value: String) -> Bool {
        guard let pattern, pattern != "*" else { return true }
        return pattern == value
    }

    /// `dddd:bb:ss.f` against a pattern of the same shape where any part (or the function) may be `*`; a pattern
    /// without the domain (`bb:ss.f`) matches any domain.
    static func addressMatches(_ pattern: String, _ address: String) -> Bool {
        func parts(_ text: String) -> [Substring] {
            let colon = text.split(separator: ":", omittingEmptySubsequences: false)
            guard let last = colon.last else { return [] }
            let dot = last.split(separator: ".", omittingEmptySubsequences: false)
            return Array(colon.dropLast()) + dot
        }
        var want = parts(pattern)
        let have = parts(address)
        if want.count == 3 { want.insert("*", at: 0) }
        guard want.count == 4, have.count == 4 else { return false }
        return zip(want, have).allSatisfy { $0 == "*" || $0 == $1 }
    }

    /// The first thing wrong with this spec, or `nil`.
    public var problem: String? {
        for (name, value) in [("vendor_id", vendorID), ("product_id", productID)] {
            if let value, value != "*", !(value.count == 4 && value.allSatisfy(\.isHexDigit)) {
                return "\(name) must be four hex digits or *, not '\(value)'"
            }
        }
        if let address, !Self.isAddressPattern(address) {
            return "address '\(address)' is not a PCI address pattern (e.g. 0000:3b:*.*)"
        }
        return nil
    }

    /// `[domain:]bus:slot.function`, each part hex digits or `*`.
    private static func isAddressPattern(_ text: String) -> Bool {
        let colon = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(colon.count), let last = colon.last else { return false }
        let dot = last.split(separator: ".", omittingEmptySubsequences: false)
        guard dot.count == 2 else { return false }
        return (Array(colon.dropLast()) + dot).allSatisfy { $0 == "*" || (!$0.isEmpty && $0.allSatisfy(\.isHexDigit)) }
    }
}

/// A name flavors ask devices by (Nova's `[pci] alias`), with the device type and NUMA policy of the request.
public struct PCIAlias: Hashable, Sendable, Codable {
    public var name: String
    public var vendorID: String?
    public var productID: String?
    /// `type-PCI`, `type-PF` or `type-VF`; any when `nil`.
    public var deviceType: PCIDeviceKind?
    public var numaPolicy: PCINUMAPolicy
    /// Tags a device must carry (from its spec), e.g. `physical_network`.
    public var tags: [String: String]

    public init(
        name: String, vendorID: String? = nil, productID: String? = nil, deviceType: PCIDeviceKind? = nil,
        numaPolicy: PCINUMAPolicy = .legacy, tags: [String: String] = [:]
    ) {
        self.name = name
        self.vendorID = vendorID?.lowercased()
        self.productID = productID?.lowercased()
        self.deviceType = deviceType
        self.numaPolicy = numaPolicy
        self.tags = tags
    }

    private enum CodingKeys: String, CodingKey {
        case name, vendorID = "vendor_id", productID = "product_id", deviceType = "device_type"
        case numaPolicy = "numa_policy", tags
    }

    /// Nova's form: `{"name": "a1", "vendor_id": "10de", "product_id": "1db4", "device_type": "type-PCI",
    /// "numa_policy": "preferred"}`; `tags` (an object) is Allot's addition.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name), vendorID: try c.decodeIfPresent(String.self, forKey: .vendorID),
            productID: try c.decodeIfPresent(String.self, forKey: .productID),
            deviceType: try c.decodeIfPresent(PCIDeviceKind.self, forKey: .deviceType),
            numaPolicy: try c.decodeIfPresent(PCINUMAPolicy.self, forKey: .numaPolicy) ?? .legacy,
            tags: try c.decodeIfPresent([String: String].self, forKey: .tags) ?? [:])
    }

    public func matches(_ record: PCIDeviceRecord) -> Bool {
        PCIDeviceSpec.field(vendorID, record.device.vendorID) && PCIDeviceSpec.field(productID, record.device.productID)
            && (deviceType.map { $0 == record.device.kind } ?? true)
            && tags.allSatisfy { record.tags[$0.key] == $0.value }
    }
}

/// One request of a flavor: `count` devices of alias `alias`.
public struct PCIRequest: Hashable, Sendable, Codable {
    public var alias: String
    public var count: Int

    public init(alias: String, count: Int) {
        self.alias = alias
        self.count = count
    }

    /// `pci_passthrough:alias` = `name:count[,name:count…]` (`name` alone means one).
    /// - Throws: ``ComputeError/invalidFlavor(_:)`` when malformed or naming an alias that is not configured.
    public static func from(_ flavor: Flavor, aliases: [String: PCIAlias]) throws(ComputeError) -> [PCIRequest] {
        guard let text = flavor.extraSpecs["pci_passthrough:alias"] else { return [] }
        var result: [PCIRequest] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
            guard (1...2).contains(parts.count), !parts[0].isEmpty else {
                throw .invalidFlavor("pci_passthrough:alias must be name:count[,name:count], not '\(text)'")
            }
            let count = parts.count == 2 ? Int(parts[1]) : 1
            guard let count, count >= 1, count <= 64 else {
                throw .invalidFlavor("pci_passthrough:alias count must be between 1 and 64 in '\(item)'")
            }
            guard aliases[parts[0]] != nil else {
                throw .invalidFlavor("pci_passthrough:alias names '\(parts[0])', which is not a configured alias")
            }
            if let index = result.firstIndex(where: { $0.alias == parts[0] }) {
                result[index].count += count
            } else {
                result.append(PCIRequest(alias: parts[0], count: count))
            }
        }
        return result
    }
}

/// Where a tracked device stands. `available → claimed → allocated → available`; a device is `unavailable`
/// while its PF or one of its VFs is in use, and `removed` when it vanished from the host while an instance still
/// held it (kept until that instance lets go).
public enum PCIDeviceStatus: String, Hashable, Sendable, Codable, CaseIterable {
    case available, claimed, allocated, unavailable, removed
}

/// A device as the PCI tracker keeps it.
public struct PCIDeviceRecord: Hashable, Sendable, Codable {
    public var device: PCIDevice
    public var status: PCIDeviceStatus
    /// The consumer (instance or migration uuid) that claimed or holds it.
    public var consumer: String?
    /// Tags from the matching spec.
    public var tags: [String: String]

    public init(device: PCIDevice, status: PCIDeviceStatus = .available, consumer: String? = nil, tags: [String: String] = [:]) {
        self.device = device
        self.status = status
        self.consumer = consumer
        self.tags = tags
    }
}

/// A group of interchangeable free devices: same vendor, product, kind, NUMA cell and tags.
public struct PCIPool: Hashable, Sendable, Codable {
    public var vendorID: String
    public var productID: String
    public var kind: PCIDeviceKind
    public var numaNode: Int?
    public var tags: [String: String]
    public var count: Int
}

/// Why devices could not be claimed.
public enum PCIClaimError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownAlias(String)
    case notEnough(alias: String, requested: Int, free: Int)
    case alreadyHeld(consumer: String)

    public var description: String {
        switch self {
        case .unknownAlias(let name): "no PCI alias '\(name)'"
        case .notEnough(let alias, let requested, let free):
            "\(requested) device(s) of PCI alias '\(alias)' requested, \(free) free where allowed"
        case .alreadyHeld(let consumer): "\(consumer) already holds PCI devices on this node"
        }
    }
}

/// A node's assignable PCI devices (those matching a device spec), with Nova's rules: statuses, parent–child
/// blocking between PFs and their VFs, pools, claims and frees per consumer, and reconciliation with what the
/// host reports.
public struct PCITracker: Hashable, Sendable, Codable {
    /// By address.
    public private(set) var records: [String: PCIDeviceRecord]

    public init(records: [String: PCIDeviceRecord] = [:]) {
        self.records = records
    }

    /// Tracks the devices of `topology` that match a spec (the first matching spec gives the tags).
    public init(devices: [PCIDevice], specs: [PCIDeviceSpec]) {
        records = [:]
        for device in devices {
            guard let spec = specs.first(where: { $0.matches(device) }) else { continue }
            records[device.address] = PCIDeviceRecord(device: device, tags: spec.tags)
        }
        refreshFamilies()
    }

    /// What changed when the host was read again.
    public struct Reconciliation: Hashable, Sendable {
        public var appeared: [String] = []
        /// Gone and free: dropped.
        public var vanished: [String] = []
        /// Gone while held: kept as `removed` until its consumer lets go; reported.
        public var removedWhileHeld: [String: String] = [:]
    }

    /// Takes the devices the host reports now: new matching ones are added, free vanished ones dropped, held
    /// vanished ones kept as `removed` (never silently dropped).
    public mutating func reconcile(devices: [PCIDevice], specs: [PCIDeviceSpec]) -> Reconciliation {
        var report = Reconciliation()
        var present = Set<String>()
        for device in devices {
            guard let spec = specs.first(where: { $0.matches(device) }) else { continue }
            present.insert(device.address)
            if var record = records[device.address] {
                record.device = device
                record.tags = spec.tags
                if record.status == .removed { record.status = record.consumer == nil ? .available : .allocated }
                records[device.address] = record
            } else {
                records[device.address] = PCIDeviceRecord(device: device, tags: spec.tags)
                report.appeared.append(device.address)
            }
        }
        for (address, record) in records where !present.contains(address) {
            if let consumer = record.consumer {
                records[address]?.status = .removed
                report.removedWhileHeld[address] = consumer
            } else {
                records[address] = nil
                report.vanished.append(address)
            }
        }
        refreshFamilies()
        report.appeared.sort()
        report.vanished.sort()
        return report
    }

    /// Free devices grouped into pools.
    public var pools: [PCIPool] {
        var counts: [PCIPool: Int] = [:]
        for record in records.values where record.status == .available {
            let key = PCIPool(vendorID: record.device.vendorID, productID: record.device.productID, kind: record.device.kind,
                              numaNode: record.device.numaNode, tags: record.tags, count: 0)
            counts[key, default: 0] += 1
        }
        return counts.map { pool, count in
            var pool = pool
            pool.count = count
            return pool
        }.sorted { ($0.vendorID, $0.productID, $0.kind.rawValue, $0.numaNode ?? -1) < ($1.vendorID, $1.productID, $1.kind.rawValue, $1.numaNode ?? -1) }
    }

    /// Free devices of an alias by NUMA cell (`nil`: devices without one), for NUMA fitting.
    public func freeByCell(_ alias: PCIAlias) -> [Int?: Int] {
        var result: [Int?: Int] = [:]
        for record in records.values where record.status == .available && alias.matches(record) {
            result[record.device.numaNode, default: 0] += 1
        }
        return result
    }

    /// Devices a consumer holds (claimed, allocated or removed), by address.
    public func held(by consumer: String) -> [String] {
        records.values.filter { $0.consumer == consumer }.map(\.device.address).sorted()
    }

    /// Claims devices for `requests`, all or none: for each request, free devices of its alias whose cell `allowed`
    /// accepts (by default any), lowest address first. Returns the addresses claimed.
    /// - Throws: ``PCIClaimError`` and changes nothing when a request cannot be met.
    public mutating func claim(
        _ requests: [PCIRequest], aliases: [String: PCIAlias], consumer: String,
        allowed: (PCIAlias, Int?) -> Bool = { _, _ in true }
    ) throws(PCIClaimError) -> [String] {
        guard held(by: consumer).isEmpty else { throw .alreadyHeld(consumer: consumer) }
        var next = self
        var claimed: [String] = []
        for request in requests {
            guard let alias = aliases[request.alias] else { throw .unknownAlias(request.alias) }
            let candidates = next.records.values
                .filter { $0.status == .available && alias.matches($0) && allowed(alias, $0.device.numaNode) }
                .map(\.device.address).sorted()
            guard candidates.count >= request.count else {
                throw .notEnough(alias: request.alias, requested: request.count, free: candidates.count)
            }
            // One at a time: claiming a PF makes its VFs unavailable and the reverse, which can shrink the rest.
            var taken = 0
            for address in candidates where taken < request.count {
                guard next.records[address]?.status == .available else { continue }
                next.records[address]?.status = .claimed
                next.records[address]?.consumer = consumer
                next.refreshFamilies()
                claimed.append(address)
                taken += 1
            }
            guard taken == request.count else {
                throw .notEnough(alias: request.alias, requested: request.count, free: taken)
            }
        }
        self = next
        return claimed
    }

    /// Claimed devices of a consumer become allocated (the instance is running with them).
    public mutating func allocate(consumer: String) {
        for (address, record) in records where record.consumer == consumer && record.status == .claimed {
            records[address]?.status = .allocated
        }
    }

    /// Everything a consumer holds goes back: available again, or dropped if it had vanished from the host.
    /// - Returns: the addresses freed.
    @discardableResult
    public mutating func free(consumer: String) -> [String] {
        var freed: [String] = []
        for (address, record) in records where record.consumer == consumer {
            if record.status == .removed {
                records[address] = nil
            } else {
                records[address]?.status = .available
                records[address]?.consumer = nil
            }
            freed.append(address)
        }
        refreshFamilies()
        return freed.sorted()
    }

    /// Marks devices as held by a consumer (rebuilding the tracker from the ledger's claims); a held device the
    /// host no longer reports is kept as `removed`.
    public mutating func hold(_ addresses: [String], consumer: String, allocated: Bool = false) {
        for address in addresses {
            if records[address] == nil {
                records[address] = PCIDeviceRecord(
                    device: PCIDevice(address: address, vendorID: "0000", productID: "0000"), status: .removed,
                    consumer: consumer)
            } else {
                records[address]?.status = allocated ? .allocated : .claimed
                records[address]?.consumer = consumer
            }
        }
        refreshFamilies()
    }

    /// Hands what one consumer holds to another (a move's claim passing from migration to instance).
    public mutating func transfer(from old: String, to new: String) {
        for (address, record) in records where record.consumer == old { records[address]?.consumer = new }
    }

    /// PF–VF blocking: a PF is unavailable while any of its VFs is held, VFs are unavailable while their PF is
    /// held; devices blocked by nothing any more are available again.
    mutating func refreshFamilies() {
        func busy(_ record: PCIDeviceRecord) -> Bool {
            record.status == .claimed || record.status == .allocated || record.status == .removed
        }
        var blocked = Set<String>()
        for record in records.values where busy(record) {
            switch record.device.kind {
            case .pf:
                for child in records.values where child.device.parentAddress == record.device.address {
                    blocked.insert(child.device.address)
                }
            case .vf:
                if let parent = record.device.parentAddress { blocked.insert(parent) }
            case .pci: break
            }
        }
        for (address, record) in records where !busy(record) {
            records[address]?.status = blocked.contains(address) ? .unavailable : .available
        }
    }

    /// Every consumer's devices, and the invariants the property tests check: no device held by two consumers,
    /// none held without a consumer, no VF held under a held PF.
    public var problem: String? {
        for record in records.values {
            let held = record.status == .claimed || record.status == .allocated || record.status == .removed
            if held != (record.consumer != nil) {
                return "device \(record.device.address) is \(record.status.rawValue) with consumer \(record.consumer ?? "none")"
            }
            if held, record.device.kind == .vf, let parent = record.device.parentAddress, let pf = records[parent],
                pf.consumer != nil
            {
                return "VF \(record.device.address) and its PF \(parent) are both held"
            }
        }
        return nil
    }
}

extension PCINUMAPolicy {
    /// Whether a device on `cell` (`nil`: the device reports none) may serve an instance whose NUMA cells are
    /// `cells` (`nil`: the instance has no NUMA topology, so any device may). `preferred` answers as `required`:
    /// the caller tries again without cells when nothing fits.
    public func allows(cell: Int?, instanceCells cells: Set<Int>?, socketOf: (Int) -> Int? = { _ in nil }) -> Bool {
        guard let cells else { return true }
        switch self {
        case .required, .preferred: return cell.map(cells.contains) ?? false
        case .legacy: return cell.map(cells.contains) ?? true
        case .socket:
            guard let cell, let socket = socketOf(cell) else { return false }
            return cells.contains { socketOf($0) == socket }
        }
    }
}
