import Foundation

/// A parsed JSON document that keeps the distinction between integers, floats and booleans.
enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue], order: [String])

    public init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !array.isAtEnd { items.append(try array.decode(JSONValue.self)) }
            self = .array(items)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            var values: [String: JSONValue] = [:]
            for key in object.allKeys { values[key.stringValue] = try object.decode(JSONValue.self, forKey: key) }
            self = .object(values, order: object.allKeys.map(\.stringValue))
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let value = try? single.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? single.decode(Int.self) {
            self = .int(value)
        } else if let value = try? single.decode(Double.self) {
            self = .double(value)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    /// Parses a request body.
    /// - Throws: `JSONParseError` with the parser's message when the body is not JSON.
    static func parse(_ data: Data) throws(JSONParseError) -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch let DecodingError.dataCorrupted(context) {
            throw JSONParseError(message: (context.underlyingError as? NSError)?.localizedDescription
                ?? context.debugDescription)
        } catch {
            throw JSONParseError(message: "\(error)")
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let values, _) = self { return values[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var intValue: Int? {
        if case .int(let value) = self { return value }
        return nil
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let values, _) = self { return values }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var isNull: Bool { self == .null }

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

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
