import Yams

/// Reader for oslo.policy policy files: a YAML (or JSON, which is read as
/// YAML, as oslo.policy does) mapping of rule name to check string.
///
/// ```yaml
/// "placement:resource_providers:list": "rule:admin_api"
/// "cloud_admin": "role:admin and system_scope:all"
/// ```
///
/// Stricter than upstream, which would accept or crash on them later:
/// a value that is not a string (a number, a list — oslo.policy's legacy
/// list-of-lists syntax —, null, which upstream reads as "allow all"), a
/// non-string key, a top level that is not a mapping and duplicate keys are
/// refused, naming the line, and so is an unquoted empty value such as
/// `"rule": !` (YAML reads a bare `!` as a tag on an empty string, which
/// would allow everyone).
public enum PolicyFile {
    /// Parses `text` into `name -> check string`.
    public static func parse(_ text: String, fileName: String) throws(PolicyError) -> [String: String] {
        var result: [String: String] = [:]
        for entry in try entries(text, fileName: fileName) {
            result[entry.name] = entry.checkString
        }
        return result
    }

    /// Parses `text` into entries in file order, each with its line.
    public static func entries(_ text: String, fileName: String) throws(PolicyError) -> [PolicyOverride] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw malformed(error, fileName: fileName)
        } catch {
            throw .malformedFile(file: fileName, line: nil, reason: "\(error)")
        }
        guard let root else { return [] }  // empty document: no rules
        if root.tagName == .null { return [] }
        guard case let .mapping(mapping) = root else {
            throw .invalidEntry(file: fileName, line: root.mark?.line,
                                reason: "a policy file must be a mapping of rule names to check strings")
        }
        var seen: [String: Int] = [:]
        var entries: [PolicyOverride] = []
        for (key, value) in mapping {
            let line = key.mark?.line
            guard case let .scalar(keyScalar) = key, key.tagName == .str else {
                throw .invalidEntry(file: fileName, line: line,
                                    reason: "rule names must be strings, found \(describe(key))")
            }
            let name = keyScalar.string
            guard case let .scalar(valueScalar) = value, value.tagName == .str else {
                throw .invalidEntry(
                    file: fileName, line: value.mark?.line ?? line,
                    reason: "the check of \"\(name)\" must be a string, found \(describe(value))"
                        + " (quote it; use \"\" to allow everyone, \"!\" to deny)")
            }
            // `"rule": !` is YAML for an empty string with the `!` tag:
            // an operator who wrote it meant "deny", not "allow everyone".
            if valueScalar.string.isEmpty, valueScalar.style == .plain {
                throw .invalidEntry(
                    file: fileName, line: value.mark?.line ?? line,
                    reason: "the check of \"\(name)\" is an unquoted empty value"
                        + " (a bare ! is a YAML tag: write \"!\" to deny, \"\" to allow everyone)")
            }
            if let first = seen[name] {
                throw .invalidEntry(file: fileName, line: line,
                                    reason: "rule \"\(name)\" is defined twice (first on line \(first))")
            }
            seen[name] = line ?? 0
            entries.append(PolicyOverride(name: name, checkString: valueScalar.string, line: line))
        }
        return entries
    }

    private static func describe(_ node: Node) -> String {
        switch node {
        case let .scalar(scalar):
            switch node.tagName {
            case .null: return "null"
            case .bool: return "a boolean (\(scalar.string))"
            case .int, .float: return "a number (\(scalar.string))"
            default: return "a \(node.tagName.rawValue) value (\(scalar.string))"
            }
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    private static func malformed(_ error: YamlError, fileName: String) -> PolicyError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            let reason = context.map { "\($0.text): \(problem)" } ?? problem
            return .malformedFile(file: fileName, line: mark.line, reason: reason)
        case let .reader(problem, _, _, _):
            return .malformedFile(file: fileName, line: nil, reason: problem)
        case let .duplicatedKeysInMapping(duplicates, context):
            return .invalidEntry(file: fileName, line: context.mark.line,
                                 reason: "rule \(duplicates.map { "\"\($0)\"" }.joined(separator: ", ")) is defined more than once")
        default:
            return .malformedFile(file: fileName, line: nil, reason: "\(error)")
        }
    }
}

extension Node {
    /// The resolved tag's name (Yams keeps `Tag.name` internal).
    fileprivate var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
