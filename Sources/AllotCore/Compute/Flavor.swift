/// What an instance asks of a compute node: Nova's flavor, with the extra specs Allot honours.
///
/// Extra specs understood here: `resources[N]:CLASS=AMOUNT` (replace or add a class; `0` removes it),
/// `trait[N]:NAME=required|forbidden`, the NUMA ones of ``NUMARequest`` (`hw:cpu_policy=dedicated` asks for PCPU
/// instead of VCPU) and `pci_passthrough:alias` (read with the node's aliases when claiming). Others are kept.
public struct Flavor: Hashable, Sendable, Codable {
    public var name: String
    public var vcpus: Int
    public var memoryMB: Int
    public var rootGB: Int
    public var ephemeralGB: Int
    public var swapMB: Int
    public var extraSpecs: [String: String]

    public init(
        name: String, vcpus: Int, memoryMB: Int, rootGB: Int = 0, ephemeralGB: Int = 0, swapMB: Int = 0,
        extraSpecs: [String: String] = [:]
    ) {
        self.name = name
        self.vcpus = vcpus
        self.memoryMB = memoryMB
        self.rootGB = rootGB
        self.ephemeralGB = ephemeralGB
        self.swapMB = swapMB
        self.extraSpecs = extraSpecs
    }

    /// The first thing wrong with this flavor, or `nil`.
    public var problem: ComputeError? {
        if name.isEmpty || name.utf8.count > 255 || Self.hasControlCharacters(name) {
            return .invalidFlavor("name must have 1 to 255 bytes and no control characters")
        }
        for (field, value) in [("vcpus", vcpus), ("memory_mb", memoryMB)] where value < 1 || value > Limits.maxInt {
            return .invalidFlavor("\(field) must be between 1 and \(Limits.maxInt), not \(value)")
        }
        for (field, value) in [("root_gb", rootGB), ("ephemeral_gb", ephemeralGB), ("swap", swapMB)]
        where value < 0 || value > Limits.maxInt {
            return .invalidFlavor("\(field) must be between 0 and \(Limits.maxInt), not \(value)")
        }
        for (key, value) in extraSpecs {
            if key.isEmpty || key.utf8.count > 255 || value.utf8.count > 255 || key.contains("=")
                || Self.hasControlCharacters(key) || Self.hasControlCharacters(value)
            {
                return .invalidFlavor("extra spec keys and values have up to 255 bytes, no control characters, no '=' in keys")
            }
            if let spec = Self.resourceSpec(key) {
                guard ResourceClass.validated(spec) != nil else {
                    return .invalidFlavor("extra spec \(key): no such resource class name \(spec)")
                }
                guard let amount = Int(value), amount >= 0, amount <= Limits.maxInt else {
                    return .invalidFlavor("extra spec \(key): amount must be an integer from 0, not \(value)")
                }
            } else if let trait = Self.traitSpec(key) {
                guard Trait.isCustomName(trait) || Trait.standardSet.contains(trait) else {
                    return .invalidFlavor("extra spec \(key): no such trait \(trait)")
                }
                guard value == "required" || value == "forbidden" else {
                    return .invalidFlavor("extra spec \(key): value must be required or forbidden, not \(value)")
                }
            }
        }
        do {
            _ = try NUMARequest.from(self)
        } catch {
            return error
        }
        return nil
    }

    /// The Placement resources this flavor needs on its compute node, as Nova's `resources_from_flavor` counts:
    /// `VCPU`, `MEMORY_MB`, `DISK_GB` (root unless booted from volume, plus ephemeral, plus swap rounded up to
    /// whole GiB), then `resources:` extra specs replace or add classes; zero amounts are left out.
    public func resources(bootFromVolume: Bool) -> [String: Int] {
        let disk = (bootFromVolume ? 0 : rootGB) + ephemeralGB + (swapMB + 1023) / 1024
        var result = [ResourceClass.vcpu.name: vcpus, ResourceClass.memoryMB.name: memoryMB, ResourceClass.diskGB.name: disk]
        if !extraSpecs.isEmpty {
            // Dedicated vCPUs are PCPU in Placement (Nova since Train): all of them, or the mask of a mixed policy.
            if extraSpecs.keys.contains(where: { $0.hasPrefix("hw:") }), let numa = try? NUMARequest.from(self),
                !numa.dedicatedVCPUs.isEmpty
            {
                result[ResourceClass.vcpu.name] = vcpus - numa.dedicatedVCPUs.count
                result["PCPU"] = numa.dedicatedVCPUs.count
            }
            // Unnumbered specs replace the base amounts (one key per class); numbered groups add to them (one
            // provider holds all), after every replacement.
            var added: [(String, Int)] = []
            for (key, value) in extraSpecs where key.hasPrefix("resources") {
                guard let name = Self.resourceSpec(key), let amount = Int(value) else { continue }
                if key.hasPrefix("resources:") { result[name] = amount } else { added.append((name, amount)) }
            }
            for (name, amount) in added { result[name, default: 0] += amount }
        }
        return result.filter { $0.value > 0 }
    }

    /// Traits the node must have (`trait:NAME=required`).
    public var requiredTraits: Set<String> { traits(valued: "required") }
    /// Traits the node must not have (`trait:NAME=forbidden`).
    public var forbiddenTraits: Set<String> { traits(valued: "forbidden") }

    private func traits(valued wanted: String) -> Set<String> {
        Set(extraSpecs.compactMap { key, value in value == wanted ? Self.traitSpec(key) : nil })
    }

    /// The class named by a `resources[N]:CLASS` key.
    static func resourceSpec(_ key: String) -> String? { spec(key, prefix: "resources") }
    /// The trait named by a `trait[N]:NAME` key.
    static func traitSpec(_ key: String) -> String? { spec(key, prefix: "trait") }

    private static func spec(_ key: String, prefix: String) -> String? {
        guard key.hasPrefix(prefix), let colon = key.firstIndex(of: ":") else { return nil }
        let suffix = key[key.index(key.startIndex, offsetBy: prefix.count)..<colon]
        guard suffix.allSatisfy({ $0.isNumber || $0.isLetter || $0 == "_" || $0 == "-" }) else { return nil }
        let name = key[key.index(after: colon)...]
        return name.isEmpty ? nil : String(name)
    }
}

extension Flavor {
    /// The flavor as one line of text for storage: fields separated by U+001F, extra specs as `key=value` pairs
    /// separated by U+001E. Names and specs never hold control characters (``problem`` refuses them).
    public var encoded: String {
        let specs = extraSpecs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1E}")
        return [name, String(vcpus), String(memoryMB), String(rootGB), String(ephemeralGB), String(swapMB), specs]
            .joined(separator: "\u{1F}")
    }

    /// Reads ``encoded`` text back; `nil` when it is not such text.
    public init?(encoded text: String) {
        let fields = text.split(separator: "\u{1F}", omittingEmptySubsequences: false)
        guard fields.count == 7, let vcpus = Int(fields[1]), let memory = Int(fields[2]), let root = Int(fields[3]),
            let ephemeral = Int(fields[4]), let swap = Int(fields[5])
        else { return nil }
        var specs: [String: String] = [:]
        for pair in fields[6].split(separator: "\u{1E}") {
            guard let equals = pair.firstIndex(of: "=") else { return nil }
            specs[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        self.init(
            name: String(fields[0]), vcpus: vcpus, memoryMB: memory, rootGB: root, ephemeralGB: ephemeral, swapMB: swap,
            extraSpecs: specs)
    }

    /// A key that tells apart the same flavor booted from volume (memo tables of resources).
    static func bootFromVolumeKey(_ flavor: Flavor) -> Flavor {
        var key = flavor
        key.name = "\u{1}bfv\u{1}" + flavor.name
        return key
    }

    static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}
