import Foundation

/// A parsed JSON document that keeps the distinction between integers, floats and booleans.
enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue], order: [String])

    /// Parses a request body.
    /// - Throws: `JSONParseError` with the parser's message when the body is not JSON.
    static func parse(_ data: Data) throws(JSONParseError) -> JSONValue {
        try JSONParser.parse(Array(data))
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let values, _) = self { return values[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer value, also of a float with an integral value in range (`2.0`, which the schemas accept as an
    /// integer).
    public var intValue: Int? {
        if case .int(let value) = self { return value }
        if case .double(let value) = self, value == value.rounded(), abs(value) < 9.2e18 { return Int(value) }
        return nil
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// An object's members in document order.
    var orderedMembers: [(String, JSONValue)]? {
        guard case .object(let values, let order) = self else { return nil }
        return order.compactMap { key in values[key].map { (key, $0) } }
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let values, _) = self { return values }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// The value as Python's `repr` prints it, which is how upstream's validation messages show instances.
    public var pythonRepr: String {
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

/// A body that is not JSON.
struct JSONParseError: Error, Sendable {
    var message: String
}
