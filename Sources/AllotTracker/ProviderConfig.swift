public import AllotCore
import Foundation
import Yams

/// Extra inventories and traits for compute nodes, from Nova's provider config files (`*.yaml` in a directory,
/// read once at start-up):
///
/// ```yaml
/// meta:
///   schema_version: '1.0'
/// providers:
///   - identification:
///       uuid: '$COMPUTE_NODE'      # every node of this agent; or a node's uuid, or `name: HOSTNAME`
///     inventories:
///       additional:
///         - CUSTOM_LICENSE:
///             total: 4
///             allocation_ratio: 1.0
///     traits:
///       additional:
///         - CUSTOM_RACK_7
/// ```
///
/// As in Nova, only `CUSTOM_` classes and traits may be added; a node named by uuid or name takes its own entry
/// instead of the `$COMPUTE_NODE` one; naming one node twice, or a file that does not parse, is an error.
public struct ProviderConfig: Sendable, Equatable {
    public enum Target: Sendable, Hashable, CustomStringConvertible {
        case everyNode
        case uuid(String)
        case name(String)

        public var description: String {
            switch self {
            case .everyNode: "$COMPUTE_NODE"
            case .uuid(let uuid): "uuid \(uuid)"
            case .name(let name): "name \(name)"
            }
        }
    }

    public var target: Target
    public var inventories: [String: Inventory]
    public var traits: Set<String>
    /// The file it came from (for messages).
    public var source: String

    public init(target: Target, inventories: [String: Inventory] = [:], traits: Set<String> = [], source: String = "") {
        self.target = target
        self.inventories = inventories
        self.traits = traits
        self.source = source
    }

    /// Why a provider config file was refused.
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public var source: String
        public var reason: String
        public var description: String { "provider config \(source): \(reason)" }
    }

    /// Reads every `*.yaml` file in `directory`, in name order.
    /// - Throws: ``Problem`` for the first file or entry that is wrong.
    public static func load(directory: String) throws -> [ProviderConfig] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        } catch {
            throw Problem(source: directory, reason: "cannot read the directory (\(error.localizedDescription))")
        }
        var result: [ProviderConfig] = []
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Problem(source: path, reason: "cannot read the file")
            }
            result += try parse(String(decoding: data, as: UTF8.self), source: path)
        }
        try checkTargets(result)
        return result
    }

    /// The entries of one file.
    public static func parse(_ text: String, source: String) throws -> [ProviderConfig] {
        func fail(_ reason: String) -> Problem { Problem(source: source, reason: reason) }
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw fail("not YAML: \(error)")
        }
        guard let root = document as? [String: Any] else { throw fail("the document must be a mapping") }
        guard let meta = root["meta"] as? [String: Any], let version = meta["schema_version"].map({ "\($0)" }) else {
            throw fail("meta.schema_version is missing")
        }
        guard version == "1.0" || version == "1" else { throw fail("schema_version \(version) is not supported (1.0 is)") }
        guard let providers = root["providers"] as? [Any] else { throw fail("'providers' must be a list") }
        var result: [ProviderConfig] = []
        for (index, item) in providers.enumerated() {
            let at = "providers[\(index)]"
            guard let entry = item as? [String: Any], let identification = entry["identification"] as? [String: Any] else {
                throw fail("\(at).identification is missing")
            }
            let target: Target
            switch (identification["uuid"] as? String, identification["name"] as? String) {
            case ("$COMPUTE_NODE", nil): target = .everyNode
            case (let uuid?, nil):
                guard let normalized = UUID(uuidString: uuid)?.uuidString.lowercased() else {
                    throw fail("\(at).identification.uuid '\(uuid)' is neither a uuid nor $COMPUTE_NODE")
                }
                target = .uuid(normalized)
            case (nil, let name?) where !name.isEmpty: target = .name(name)
            default: throw fail("\(at).identification needs exactly one of uuid and name")
            }
            var config = ProviderConfig(target: target, source: source)
            for item in ((entry["inventories"] as? [String: Any])?["additional"] as? [Any]) ?? [] {
                guard let classes = item as? [String: Any] else { throw fail("\(at).inventories.additional: entries are mappings") }
                for (name, value) in classes {
                    guard ResourceClass.isCustomName(name) else {
                        throw fail("\(at): only CUSTOM_ resource classes may be added, not \(name)")
                    }
                    guard let fields = value as? [String: Any], let total = fields["total"] as? Int else {
                        throw fail("\(at): \(name) needs a total")
                    }
                    let inventory = Inventory(
                        total: total, reserved: fields["reserved"] as? Int ?? 0, minUnit: fields["min_unit"] as? Int ?? 1,
                        maxUnit: fields["max_unit"] as? Int ?? total, stepSize: fields["step_size"] as? Int ?? 1,
                        allocationRatio: (fields["allocation_ratio"] as? Double) ?? Double(fields["allocation_ratio"] as? Int ?? 1))
                    if inventory.validationProblem(allowReservedEqualTotal: true) != nil || inventory.reserved > total || total < 1 || inventory.minUnit < 1
                        || inventory.stepSize < 1 || !(inventory.allocationRatio > 0)
                    {
                        throw fail("\(at): the inventory of \(name) makes no sense")
                    }
                    config.inventories[name] = inventory
                }
            }
            for item in ((entry["traits"] as? [String: Any])?["additional"] as? [Any]) ?? [] {
                guard let name = item as? String, Trait.isCustomName(name) else {
                    throw fail("\(at): only CUSTOM_ traits may be added, not \(item)")
                }
                config.traits.insert(name)
            }
            // An entry that adds nothing is ignored, as in Nova.
            if !config.inventories.isEmpty || !config.traits.isEmpty { result.append(config) }
        }
        return result
    }

    /// One entry per target across all files.
    static func checkTargets(_ configs: [ProviderConfig]) throws {
        var seen: [Target: String] = [:]
        for config in configs {
            if let first = seen[config.target] {
                throw Problem(source: config.source, reason: "\(config.target) is also configured in \(first)")
            }
            seen[config.target] = config.source
        }
    }

    /// What a node gets: its own entry (by uuid, else by name), else the `$COMPUTE_NODE` one.
    public static func additions(for uuid: String, hostname: String, in configs: [ProviderConfig]) -> ProviderConfig? {
        configs.first { $0.target == .uuid(uuid) } ?? configs.first { $0.target == .name(hostname) }
            ?? configs.first { $0.target == .everyNode }
    }
}
