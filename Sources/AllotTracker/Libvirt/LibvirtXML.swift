public import AllotCore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A libvirt XML document that does not say what the driver needs.
public struct LibvirtXMLError: Error, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One element of a parsed XML document: name, attributes, child elements and its own text.
struct XMLNode: Sendable {
    var name: String
    var attributes: [String: String]
    var children: [XMLNode] = []
    var text = ""

    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }
    func children(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }
    /// The first element down `path` (child names).
    func find(_ path: String...) -> XMLNode? {
        var node = self
        for name in path {
            guard let next = node.child(name) else { return nil }
            node = next
        }
        return node
    }
    var trimmedText: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// The element written back as XML (attributes sorted, text trimmed).
    var xml: String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "'", with: "&apos;")
                .replacingOccurrences(of: "\"", with: "&quot;")
        }
        let attributes = self.attributes.sorted { $0.key < $1.key }.map { " \($0.key)='\(escape($0.value))'" }.joined()
        let inner = escape(trimmedText) + children.map(\.xml).joined()
        return inner.isEmpty ? "<\(name)\(attributes)/>" : "<\(name)\(attributes)>\(inner)</\(name)>"
    }

    /// Parses a whole document (FoundationXML's `XMLParser`); the root element.
    static func parse(_ text: String) throws(LibvirtXMLError) -> XMLNode {
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            let line = parser.lineNumber
            throw LibvirtXMLError(
                "not well-formed XML (line \(line)): \(parser.parserError.map { "\($0.localizedDescription)" } ?? "no root element")")
        }
        return root
    }

    private final class TreeBuilder: NSObject, XMLParserDelegate {
        var stack: [XMLNode] = []
        var root: XMLNode?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            stack.append(XMLNode(name: elementName, attributes: attributes))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if !stack.isEmpty { stack[stack.count - 1].text += string }
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard let node = stack.popLast() else { return }
            if stack.isEmpty { root = node } else { stack[stack.count - 1].children.append(node) }
        }
    }
}

/// Numbers as libvirt writes them: decimal, or hex with `0x`.
enum LibvirtNumber {
    static func parse(_ text: String?) -> Int? {
        guard let text = text?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
        if text.lowercased().hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
        return Int(text)
    }

    /// A memory figure in KiB from its text and `unit` attribute (libvirt's default unit is KiB).
    static func kibibytes(_ text: String, unit: String?) -> Int? {
        guard let value = parse(text), value >= 0 else { return nil }
        switch (unit ?? "KiB").lowercased() {
        case "b", "bytes": return value / 1024
        case "k", "kib": return value
        case "kb": return value * 1000 / 1024
        case "m", "mib": return value * 1024
        case "mb": return value * 1_000_000 / 1024
        case "g", "gib": return value * 1024 * 1024
        case "gb": return value * 1_000_000_000 / 1024
        case "t", "tib": return value * 1024 * 1024 * 1024
        default: return nil
        }
    }
}

/// What the driver reads from `virConnectGetCapabilities`: the host CPU and the NUMA cells.
public struct LibvirtCapabilities: Sendable, Equatable {
    public var arch: String?
    public var model: String?
    public var vendor: String?
    /// `<feature name=…>` of the host CPU, in document order, except those with `policy='disable'`.
    public var features: [String]
    public var cells: [NUMACell]
    /// The host `<cpu>` element as XML, when it names a model (what `virConnectBaselineCPU` expands).
    public var hostCPUXML: String?

    /// Whether Nova would expand the host CPU's features with `virConnectBaselineCPU(…, EXPAND_FEATURES)`: when
    /// libvirt names a model (then the `<feature>`s are only those beyond the model), except on AArch64.
    public var needsFeatureExpansion: Bool { hostCPUXML != nil && arch != "aarch64" }

    /// The features of a `<cpu>` document (`virConnectBaselineCPU`'s answer), except those with `policy='disable'`.
    public static func cpuFeatures(_ text: String) throws(LibvirtXMLError) -> [String] {
        let root = try XMLNode.parse(text)
        guard root.name == "cpu" else { throw LibvirtXMLError("CPU: root element is <\(root.name)>, not <cpu>") }
        return features(root)
    }

    static func features(_ cpu: XMLNode) -> [String] {
        cpu.children("feature").filter { $0.attributes["policy"] != "disable" }.compactMap { $0.attributes["name"] }
    }

    /// Parses a capabilities document.
    /// - Throws: ``LibvirtXMLError`` when it is not XML, has no `<host>`, or a cell is malformed (a missing or
    ///   repeated id, a CPU id or memory that is not a number, a `<cpus num>` that does not match its CPUs).
    public static func parse(_ text: String) throws(LibvirtXMLError) -> LibvirtCapabilities {
        let root = try XMLNode.parse(text)
        guard root.name == "capabilities", let host = root.child("host") else {
            throw LibvirtXMLError("capabilities: no <capabilities><host> element")
        }
        let cpu = host.child("cpu")
        let features = cpu.map(Self.features) ?? []
        var cells: [NUMACell] = []
        for cell in host.find("topology", "cells")?.children("cell") ?? [] {
            cells.append(try Self.cell(cell))
        }
        return LibvirtCapabilities(
            arch: cpu?.child("arch")?.trimmedText, model: cpu?.child("model")?.trimmedText,
            vendor: cpu?.child("vendor")?.trimmedText, features: features, cells: cells.sorted { $0.id < $1.id },
            hostCPUXML: cpu?.child("model") != nil ? cpu?.xml : nil)
    }

    private static func cell(_ node: XMLNode) throws(LibvirtXMLError) -> NUMACell {
        guard let id = LibvirtNumber.parse(node.attributes["id"]), id >= 0 else {
            throw LibvirtXMLError("capabilities: a NUMA cell has no id")
        }
        var memoryKiB = 0
        if let memory = node.child("memory") {
            guard let kib = LibvirtNumber.kibibytes(memory.trimmedText, unit: memory.attributes["unit"]) else {
                throw LibvirtXMLError("capabilities: NUMA cell \(id) memory '\(memory.trimmedText)' is not a size")
            }
            memoryKiB = kib
        }
        // Pages by size; the smallest size is the base page, which is what huge pages leave, not a huge page.
        var pageCounts: [Int: Int] = [:]
        for page in node.children("pages") {
            guard let size = LibvirtNumber.kibibytes(page.attributes["size"] ?? "", unit: page.attributes["unit"]),
                size > 0, let count = LibvirtNumber.parse(page.trimmedText), count >= 0
            else { throw LibvirtXMLError("capabilities: NUMA cell \(id) has a malformed <pages> element") }
            pageCounts[size] = count
        }
        if let base = pageCounts.keys.min() { pageCounts[base] = nil }
        let pages = pageCounts.filter { $0.value > 0 }

        var cpus: [Int] = []
        var siblingLists: [Int: [Int]] = [:]
        var socket: Int?
        let cpusNode = node.child("cpus")
        for cpu in cpusNode?.children("cpu") ?? [] {
            guard let cpuID = LibvirtNumber.parse(cpu.attributes["id"]), cpuID >= 0 else {
                throw LibvirtXMLError("capabilities: NUMA cell \(id) has a CPU without a numeric id")
            }
            cpus.append(cpuID)
            if let text = cpu.attributes["siblings"] {
                guard let list = CPUList.parse(text), list.exclude.isEmpty else {
                    throw LibvirtXMLError("capabilities: CPU \(cpuID) siblings '\(text)' is not a CPU list")
                }
                siblingLists[cpuID] = list.include
            }
            if socket == nil { socket = LibvirtNumber.parse(cpu.attributes["socket_id"]) }
        }
        if let num = cpusNode?.attributes["num"] {
            guard LibvirtNumber.parse(num) == cpus.count else {
                throw LibvirtXMLError("capabilities: NUMA cell \(id) says \(num) CPUs but lists \(cpus.count)")
            }
        }
        // Thread siblings per core, restricted to this cell's CPUs (a CPU without a list is a core of its own).
        let cellCPUs = Set(cpus)
        var cores: [[Int]] = []
        var placed = Set<Int>()
        for cpu in cpus.sorted() where !placed.contains(cpu) {
            var core = (siblingLists[cpu] ?? [cpu]).filter { cellCPUs.contains($0) && !placed.contains($0) }
            if !core.contains(cpu) { core.append(cpu) }
            placed.formUnion(core)
            cores.append(core.sorted())
        }
        return NUMACell(id: id, cpus: cpus, siblings: cores, memoryMB: memoryKiB / 1024, pages: pages, socket: socket)
    }
}

/// A node device document (`virNodeDeviceGetXMLDesc`) as a PCI device.
public enum LibvirtNodeDevice {
    /// The PCI device `text` describes, or `nil` when it is not a PCI device.
    /// - Throws: ``LibvirtXMLError`` when it is not XML or its PCI capability lacks an address or ids.
    public static func parse(_ text: String) throws(LibvirtXMLError) -> PCIDevice? {
        let root = try XMLNode.parse(text)
        guard root.name == "device" else { throw LibvirtXMLError("node device: root element is <\(root.name)>, not <device>") }
        let name = root.child("name")?.trimmedText ?? "?"
        guard let pci = root.children("capability").first(where: { $0.attributes["type"] == "pci" }) else { return nil }
        func field(_ key: String) -> Int? { LibvirtNumber.parse(pci.child(key)?.trimmedText) }
        guard let domain = field("domain"), let bus = field("bus"), let slot = field("slot"), let function = field("function")
        else { throw LibvirtXMLError("node device \(name): PCI capability without domain/bus/slot/function") }
        guard let address = Self.address(domain: domain, bus: bus, slot: slot, function: function) else {
            throw LibvirtXMLError("node device \(name): PCI address out of range")
        }
        func hexID(_ key: String, digits: Int) throws(LibvirtXMLError) -> String {
            guard let value = LibvirtNumber.parse(pci.child(key)?.attributes["id"]), value >= 0 else {
                throw LibvirtXMLError("node device \(name): no \(key) id")
            }
            return Self.hex(value, digits: digits)
        }
        let vendor = try hexID("vendor", digits: 4)
        let product = try hexID("product", digits: 4)
        let classCode = LibvirtNumber.parse(pci.child("class")?.trimmedText).map { Self.hex($0, digits: 6) } ?? "000000"
        let numa = LibvirtNumber.parse(pci.child("numa")?.attributes["node"]).flatMap { $0 >= 0 ? $0 : nil }
        var kind = PCIDeviceKind.pci
        var parent: String?
        for capability in pci.children("capability") {
            switch capability.attributes["type"] {
            case "virt_functions":
                // Nova: a device with the virt_functions capability is a PF (libvirt writes it when the device can
                // have VFs, listing the enabled ones).
                kind = .pf
            case "phys_function":
                if let attributes = capability.child("address")?.attributes,
                    let address = Self.address(
                        domain: LibvirtNumber.parse(attributes["domain"]) ?? -1, bus: LibvirtNumber.parse(attributes["bus"]) ?? -1,
                        slot: LibvirtNumber.parse(attributes["slot"]) ?? -1,
                        function: LibvirtNumber.parse(attributes["function"]) ?? -1)
                {
                    kind = .vf
                    parent = address
                }
            default: break
            }
            if kind == .vf { break }
        }
        let driver = root.find("driver", "name")?.trimmedText
        return PCIDevice(
            address: address, vendorID: vendor, productID: product, classCode: classCode, numaNode: numa, kind: kind,
            parentAddress: parent, driver: driver?.isEmpty == false ? driver : nil)
    }

    /// `dddd:bb:ss.f`, or `nil` when a part is out of range.
    static func address(domain: Int, bus: Int, slot: Int, function: Int) -> String? {
        guard (0...0xffff).contains(domain), (0...0xff).contains(bus), (0...0x1f).contains(slot), (0...7).contains(function)
        else { return nil }
        return "\(hex(domain, digits: 4)):\(hex(bus, digits: 2)):\(hex(slot, digits: 2)).\(String(function, radix: 16))"
    }

    static func hex(_ value: Int, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

/// A guest as its domain XML describes it.
public struct LibvirtDomain: Sendable, Equatable {
    public var name: String
    public var uuid: String
    public var vcpus: Int
    /// `<currentMemory>` when present, else `<memory>`, in MiB.
    public var memoryMB: Int
    /// `<cputune><vcpupin vcpu=N cpuset=…>`: host CPUs by guest vCPU.
    public var pinning: [Int: [Int]]

    public static func parse(_ text: String) throws(LibvirtXMLError) -> LibvirtDomain {
        let root = try XMLNode.parse(text)
        guard root.name == "domain" else { throw LibvirtXMLError("domain: root element is <\(root.name)>, not <domain>") }
        let name = root.child("name")?.trimmedText ?? ""
        guard let uuid = root.child("uuid")?.trimmedText, !uuid.isEmpty else {
            throw LibvirtXMLError("domain \(name): no <uuid>")
        }
        guard let vcpus = LibvirtNumber.parse(root.child("vcpu")?.trimmedText), vcpus >= 0 else {
            throw LibvirtXMLError("domain \(name): no <vcpu> count")
        }
        guard let memory = root.child("currentMemory") ?? root.child("memory"),
            let kib = LibvirtNumber.kibibytes(memory.trimmedText, unit: memory.attributes["unit"])
        else { throw LibvirtXMLError("domain \(name): no memory size") }
        var pinning: [Int: [Int]] = [:]
        for pin in root.child("cputune")?.children("vcpupin") ?? [] {
            guard let vcpu = LibvirtNumber.parse(pin.attributes["vcpu"]), let set = pin.attributes["cpuset"],
                let list = CPUList.parse(set, allowExclusions: true)
            else { throw LibvirtXMLError("domain \(name): malformed <vcpupin>") }
            pinning[vcpu] = list.include.filter { !list.exclude.contains($0) }
        }
        return LibvirtDomain(name: name, uuid: uuid.lowercased(), vcpus: vcpus, memoryMB: kib / 1024, pinning: pinning)
    }
}

/// Host CPU features → os-traits, as Nova's libvirt driver maps them (`nova/virt/libvirt/utils.py`
/// `CPU_TRAITS_MAPPING` and `cpu_features_to_traits`): libvirt feature names from its `cpu_map`.
public enum LibvirtCPUTraits {
    public static let mapping: [String: [String]] = [
        "3dnow": ["HW_CPU_X86_3DNOW"],
        "abm": ["HW_CPU_X86_ABM"],
        "aes": ["HW_CPU_X86_AESNI"],
        "avx": ["HW_CPU_X86_AVX"],
        "avx2": ["HW_CPU_X86_AVX2"],
        "avx512bw": ["HW_CPU_X86_AVX512BW"],
        "avx512cd": ["HW_CPU_X86_AVX512CD"],
        "avx512dq": ["HW_CPU_X86_AVX512DQ"],
        "avx512er": ["HW_CPU_X86_AVX512ER"],
        "avx512f": ["HW_CPU_X86_AVX512F"],
        "avx512pf": ["HW_CPU_X86_AVX512PF"],
        "avx512vl": ["HW_CPU_X86_AVX512VL"],
        "avx512vnni": ["HW_CPU_X86_AVX512VNNI"],
        "avx512vbmi": ["HW_CPU_X86_AVX512VBMI"],
        "avx512ifma": ["HW_CPU_X86_AVX512IFMA"],
        "avx512vbmi2": ["HW_CPU_X86_AVX512VBMI2"],
        "avx512bitalg": ["HW_CPU_X86_AVX512BITALG"],
        "vaes": ["HW_CPU_X86_AVX512VAES"],
        "gfni": ["HW_CPU_X86_AVX512GFNI"],
        "vpclmulqdq": ["HW_CPU_X86_AVX512VPCLMULQDQ"],
        "avx512-vpopcntdq": ["HW_CPU_X86_AVX512VPOPCNTDQ"],
        "bmi1": ["HW_CPU_X86_BMI"],
        "bmi2": ["HW_CPU_X86_BMI2"],
        "pclmuldq": ["HW_CPU_X86_CLMUL"],
        "f16c": ["HW_CPU_X86_F16C"],
        "fma": ["HW_CPU_X86_FMA3"],
        "fma4": ["HW_CPU_X86_FMA4"],
        "mmx": ["HW_CPU_X86_MMX"],
        "mpx": ["HW_CPU_X86_MPX"],
        "sha-ni": ["HW_CPU_X86_SHA"],
        "sse": ["HW_CPU_X86_SSE"],
        "sse2": ["HW_CPU_X86_SSE2"],
        "sse3": ["HW_CPU_X86_SSE3"],
        "sse4.1": ["HW_CPU_X86_SSE41"],
        "sse4.2": ["HW_CPU_X86_SSE42"],
        "sse4a": ["HW_CPU_X86_SSE4A"],
        "ssse3": ["HW_CPU_X86_SSSE3"],
        // Nova keeps reporting the old generic trait next to the vendor-specific one.
        "svm": ["HW_CPU_X86_SVM", "HW_CPU_X86_AMD_SVM"],
        "tbm": ["HW_CPU_X86_TBM"],
        "vmx": ["HW_CPU_X86_VMX", "HW_CPU_X86_INTEL_VMX"],
        "xop": ["HW_CPU_X86_XOP"],
    ]

    /// The traits of `features` (unknown features give none; only traits os-traits has).
    public static func traits(features: some Sequence<String>) -> Set<String> {
        var result = Set<String>()
        for feature in features {
            for trait in mapping[feature] ?? [] where Trait.standardSet.contains(trait) { result.insert(trait) }
        }
        return result
    }
}
