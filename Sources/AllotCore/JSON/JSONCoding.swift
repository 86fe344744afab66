/// `Codable` over Allot's one JSON path: values are encoded into a ``JSONValue`` and written by its writer, and
/// decoded from what ``JSONParser`` reads.
///
/// It keeps the semantics of Foundation's `JSONEncoder` and `JSONDecoder` with their default strategies that
/// Allot's types rely on: an object's keys in the order they were encoded (or sorted), `encodeIfPresent(nil)`
/// leaves the key out, optionals decode from a missing key or `null`, integers stay integers (a float decodes as
/// an integer only when its value is exactly one, as Foundation allows `2.0` and `1e2`), and a decoding error is a
/// `DecodingError` whose context holds the coding path. Foundation's `Date`, `Data`, `URL` and `Decimal` are
/// refused with an error naming them: `JSONEncoder` gives them special forms no Allot type uses.
package enum JSONCoding {
    /// Encodes `value` as JSON text.
    /// - Parameters:
    ///   - sortedKeys: every object's keys in code-point order (stable text for stored columns), instead of the
    ///     order they were encoded in.
    ///   - pretty: indented (``JSONLayout/indented``) instead of one line without spaces (``JSONLayout/compact``).
    /// - Returns: UTF-8 bytes.
    /// - Throws: `EncodingError.invalidValue` for a non-finite float, an unsigned integer above `Int.max`, a
    ///   refused Foundation type, or a value that encodes nothing at the top level.
    package static func encode(_ value: some Encodable, sortedKeys: Bool = false, pretty: Bool = false) throws
        -> [UInt8]
    {
        try self.value(of: value, sortedKeys: sortedKeys).serializedBytes(pretty ? .indented : .compact)
    }

    /// Encodes `value` as a JSON tree (to place inside a larger document).
    /// - Throws: as ``encode(_:sortedKeys:pretty:)``.
    package static func value(of value: some Encodable, sortedKeys: Bool = false) throws -> JSONValue {
        try JSONTreeEncoder.encodeTopLevel(value, sortedKeys: sortedKeys)
    }

    /// Decodes a `T` from JSON text.
    /// - Throws: `DecodingError.dataCorrupted` (empty coding path, the parser's message, the ``JSONParseError``
    ///   as underlying error) when the text is not JSON; otherwise as decoding from a ``JSONValue``.
    package static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: [], debugDescription: "The given data was not valid JSON: \(error.message)",
                    underlyingError: error))
        }
        return try decode(type, from: value)
    }

    /// Decodes a `T` from a JSON tree.
    /// - Throws: `DecodingError`: `keyNotFound` for a missing required key, `valueNotFound` for a `null` where a
    ///   value is required, `typeMismatch` for a value of the wrong JSON type, `dataCorrupted` for a number the
    ///   type cannot hold (or what the type's own `init(from:)` throws), each with the coding path.
    package static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try JSONTreeDecoder.unbox(T.self, from: value, at: .root, context: JSONCodingContext())
    }
}

/// What one encode or decode call remembers: which types were found not to be refused Foundation types.
final class JSONCodingContext {
    private var refused: [ObjectIdentifier: String?] = [:]

    /// The name of `type` when it is one of Foundation's types that `JSONEncoder` encodes in a form of its own
    /// (`Date`, `Data`, `URL`, `Decimal`), so that encoding it here would silently give another text; else `nil`.
    /// The core does not import Foundation, so the type is known by its name (once per type and call).
    func refusedName(_ type: Any.Type) -> String? {
        if let known = refused[ObjectIdentifier(type)] { return known }
        let name = String(reflecting: type)
        var found: String?
        for module in ["Foundation.", "FoundationEssentials."] where name.hasPrefix(module) {
            let base = name.dropFirst(module.count)
            if ["Date", "Data", "URL", "Decimal"].contains(base) { found = name }
        }
        refused[ObjectIdentifier(type)] = found
        return found
    }
}

/// A coding path kept as a chain from the root, so that building it costs nothing until an error needs it.
indirect enum JSONCodingPath {
    case root
    case key(any CodingKey, parent: JSONCodingPath)

    func appending(_ key: some CodingKey) -> JSONCodingPath { .key(key, parent: self) }

    func appending(index: Int) -> JSONCodingPath { .key(JSONIndexKey(index), parent: self) }

    var keys: [any CodingKey] {
        var result: [any CodingKey] = []
        var node = self
        while case .key(let key, let parent) = node {
            result.append(key)
            node = parent
        }
        return result.reversed()
    }
}

/// The key of an array element in a coding path (`Index 3`, as Foundation names it).
struct JSONIndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }

    init(_ index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

/// The key of `superEncoder()` and `superDecoder()`.
struct JSONSuperKey: CodingKey {
    var stringValue: String { "super" }
    var intValue: Int? { nil }

    init() {}
    init?(stringValue: String) { guard stringValue == "super" else { return nil } }
    init?(intValue: Int) { nil }
}
