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
