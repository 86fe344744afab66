import AllotCore
import Foundation

/// How upstream Placement (Python) shows JSON values in its validation messages.
extension JSONValue {
    /// The value as Python's `repr` prints it, which is how upstream's validation messages show instances.
    var pythonRepr: String {
        switch self {
        case .null: return "None"
        case .bool(let value): return value ? "True" : "False"
        case .int(let value): return String(value)
        case .double(let value):
            if value == value.rounded(), abs(value) < 1e16 { return String(format: "%.1f", value) }
            return String(value)
        case .string(let value): return Self.pythonQuoted(value)
        case .array(let values): return "[" + values.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let values, let order):
            return "{" + order.compactMap { key in values[key].map { "\(Self.pythonQuoted(key)): \($0.pythonRepr)" } }
                .joined(separator: ", ") + "}"
        }
    }

    static func pythonQuoted(_ text: String) -> String {
        if text.contains("'") && !text.contains("\"") { return "\"\(text)\"" }
        return "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
}

