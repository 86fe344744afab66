/// A parsed JSON document that keeps the distinction between integers, floats and booleans, and the order of
/// each object's members (the order written, or parsed).
///
/// Allot's one JSON tree: ``JSONParser`` reads it, the writer (``serializedBytes(_:)``) writes it, and
/// ``JSONCoding`` maps `Codable` types to and from it.
package enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue], order: [String])

    /// Parses a JSON text (a request body, a file).
    /// - Throws: `JSONParseError` with the parser's message when the text is not JSON.
    package static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        try JSONParser.parse(Array(bytes))
    }

    package subscript(key: String) -> JSONValue? {
        if case .object(let values, _) = self { return values[key] }
        return nil
    }

    package var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer value, also of a float with an integral value in range (`2.0`, which the schemas accept as an
    /// integer).
    package var intValue: Int? {
        if case .int(let value) = self { return value }
        if case .double(let value) = self, value == value.rounded(), abs(value) < 9.2e18 { return Int(value) }
        return nil
    }

    package var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// An object's members in document order.
    package var orderedMembers: [(String, JSONValue)]? {
        guard case .object(let values, let order) = self else { return nil }
        return order.compactMap { key in values[key].map { (key, $0) } }
    }

    package var objectValue: [String: JSONValue]? {
        if case .object(let values, _) = self { return values }
        return nil
    }

    package var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }
}

/// A text that is not JSON: the message says what and where, as Python's `json` module does
/// (`Expecting value: line 1 column 9 (char 8)`).
package struct JSONParseError: Error, Sendable {
    package var message: String

    package init(message: String) { self.message = message }
}

/// A tree inside a `Codable` type: ``JSONCoding`` hands the tree over as it is; other coders (Foundation's, in tests)
/// go value by value, an object's keys in the order the container gives them.
extension JSONValue: Codable {
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    package init(from decoder: any Decoder) throws {
        if let tree = decoder as? JSONTreeDecoder {
            self = tree.value
        } else if let container = try? decoder.container(keyedBy: Key.self) {
            var values: [String: JSONValue] = [:]
            for key in container.allKeys { values[key.stringValue] = try container.decode(JSONValue.self, forKey: key) }
            self = .object(values, order: container.allKeys.map(\.stringValue))
        } else if var container = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !container.isAtEnd { items.append(try container.decode(JSONValue.self)) }
            self = .array(items)
        } else {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let flag = try? container.decode(Bool.self) {
                self = .bool(flag)
            } else if let number = try? container.decode(Int.self) {
                self = .int(number)
            } else if let number = try? container.decode(Double.self) {
                self = .double(number)
            } else {
                self = .string(try container.decode(String.self))
            }
        }
    }

    package func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let flag):
            var container = encoder.singleValueContainer()
            try container.encode(flag)
        case .int(let number):
            var container = encoder.singleValueContainer()
            try container.encode(number)
        case .double(let number):
            var container = encoder.singleValueContainer()
            try container.encode(number)
        case .string(let text):
            var container = encoder.singleValueContainer()
            try container.encode(text)
        case .array(let items):
            var container = encoder.unkeyedContainer()
            for item in items { try container.encode(item) }
        case .object(let values, let order):
            var container = encoder.container(keyedBy: Key.self)
            for key in order { if let value = values[key] { try container.encode(value, forKey: Key(stringValue: key)) } }
        }
    }
}
