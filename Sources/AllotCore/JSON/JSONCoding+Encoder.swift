/// A value being encoded. Objects and arrays are reference types because a container handed to an `encode(to:)`
/// keeps writing into its parent after the call that made it has returned; ``resolved(sortedKeys:)`` turns the
/// finished tree into a ``JSONValue``.
enum JSONSlot {
    case value(JSONValue)
    case object(JSONObjectBuilder)
    case array(JSONArrayBuilder)
    /// What a `superEncoder()` encodes, read when the tree is resolved.
    case encoder(JSONTreeEncoder)

    func resolved(sortedKeys: Bool) -> JSONValue {
        switch self {
        case .value(let value): return sortedKeys ? value.sortingKeys() : value
        case .object(let object):
            var values = [String: JSONValue](minimumCapacity: object.values.count)
            for (key, slot) in object.values { values[key] = slot.resolved(sortedKeys: sortedKeys) }
            return .object(values, order: sortedKeys ? object.order.sorted() : object.order)
        case .array(let array): return .array(array.items.map { $0.resolved(sortedKeys: sortedKeys) })
        case .encoder(let encoder): return encoder.slotOrEmptyObject.resolved(sortedKeys: sortedKeys)
        }
    }
}

/// An object being encoded: its members in the order first set (a key set again keeps its place, as in
/// `JSONEncoder`).
final class JSONObjectBuilder {
    private(set) var values: [String: JSONSlot] = [:]
    private(set) var order: [String] = []

    func set(_ slot: JSONSlot, for key: String) {
        if values.updateValue(slot, forKey: key) == nil { order.append(key) }
    }
}

/// An array being encoded.
final class JSONArrayBuilder {
    var items: [JSONSlot] = []
}

/// The `Encoder` of ``JSONCoding``: one per value whose `encode(to:)` runs, holding what that value encoded.
final class JSONTreeEncoder: Encoder {
    let path: JSONCodingPath
    let context: JSONCodingContext
    /// What the value encoded; `nil` while it has asked for no container.
    var slot: JSONSlot?

    var codingPath: [any CodingKey] { path.keys }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(path: JSONCodingPath, context: JSONCodingContext) {
        self.path = path
        self.context = context
    }

    /// What was encoded; a value that encoded nothing is an empty object, as with `JSONEncoder`.
    var slotOrEmptyObject: JSONSlot { slot ?? .object(JSONObjectBuilder()) }

    /// - Throws: `EncodingError.invalidValue` when the value encodes nothing at all (as `JSONEncoder` does), or
    ///   what encoding it throws.
    static func encodeTopLevel<T: Encodable>(_ value: T, sortedKeys: Bool) throws -> JSONValue {
        guard let slot = try box(value, at: .root, context: JSONCodingContext()) else {
            throw EncodingError.invalidValue(
                value, .init(codingPath: [], debugDescription: "Top-level \(T.self) did not encode any values."))
        }
        return slot.resolved(sortedKeys: sortedKeys)
    }

    /// Encodes one value at `path`: scalars directly, anything else through its `encode(to:)`.
    /// - Returns: what it encoded, or `nil` when it asked for no container.
    static func box<T: Encodable>(_ value: T, at path: JSONCodingPath, context: JSONCodingContext) throws -> JSONSlot? {
        switch value {
        case let value as String: return .value(.string(value))
        case let value as Int: return .value(.int(value))
        case let value as Bool: return .value(.bool(value))
        case let value as Double: return .value(try JSONScalar.double(value, path))
        case let value as JSONValue: return .value(value)
        default: break
        }
        if let name = context.refusedName(T.self) {
            throw EncodingError.invalidValue(
                value,
                .init(
                    codingPath: path.keys,
                    debugDescription: "JSONCoding does not encode \(name): JSONEncoder gives it a form of its own."
                ))
        }
        let encoder = JSONTreeEncoder(path: path, context: context)
        try value.encode(to: encoder)
        return encoder.slot
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let object: JSONObjectBuilder
        if case .object(let existing)? = slot {
            object = existing
        } else {
            object = JSONObjectBuilder()
            slot = .object(object)
        }
        return KeyedEncodingContainer(JSONKeyedEncoding<Key>(context: context, object: object, path: path))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let array: JSONArrayBuilder
        if case .array(let existing)? = slot {
            array = existing
        } else {
            array = JSONArrayBuilder()
            slot = .array(array)
        }
        return JSONUnkeyedEncoding(context: context, array: array, path: path)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { JSONSingleValueEncoding(encoder: self) }
}

/// Scalars as JSON values, refusing what JSON (or ``JSONValue``) cannot hold as `JSONEncoder` does.
enum JSONScalar {
    static func double(_ value: Double, _ path: JSONCodingPath) throws -> JSONValue {
        guard value.isFinite else {
            throw EncodingError.invalidValue(
                value,
                .init(codingPath: path.keys, debugDescription: "Unable to encode Double.\(value) directly in JSON."))
        }
        return .double(value)
    }

    /// A `Float` as the double its shortest text stands for (`0.1`, not `0.10000000149011612`), as `JSONEncoder`
    /// writes it.
    static func float(_ value: Float, _ path: JSONCodingPath) throws -> JSONValue {
        guard value.isFinite else {
            throw EncodingError.invalidValue(
                value,
                .init(codingPath: path.keys, debugDescription: "Unable to encode Float.\(value) directly in JSON."))
        }
        return .double(Double(String(value)) ?? Double(value))
    }

    static func integer(_ value: some FixedWidthInteger, _ path: JSONCodingPath) throws -> JSONValue {
        guard let integer = Int(exactly: value) else {
            throw EncodingError.invalidValue(
                value,
                .init(
                    codingPath: path.keys,
                    debugDescription: "\(value) is above Int.max, the largest integer a JSONValue holds."))
        }
        return .int(integer)
    }
}

struct JSONKeyedEncoding<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let context: JSONCodingContext
    let object: JSONObjectBuilder
    let path: JSONCodingPath

    var codingPath: [any CodingKey] { path.keys }

    private func set(_ value: JSONValue, _ key: Key) { object.set(.value(value), for: key.stringValue) }

    mutating func encodeNil(forKey key: Key) throws { set(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        set(try JSONScalar.double(value, path.appending(key)), key)
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        set(try JSONScalar.float(value, path.appending(key)), key)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(.int(value), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(.int(Int(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(.int(Int(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(.int(Int(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(.int(Int(value)), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws {
        set(try JSONScalar.integer(value, path.appending(key)), key)
    }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(.int(Int(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(.int(Int(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(.int(Int(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws {
        set(try JSONScalar.integer(value, path.appending(key)), key)
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        let slot = try JSONTreeEncoder.box(value, at: path.appending(key), context: context)
        object.set(slot ?? .object(JSONObjectBuilder()), for: key.stringValue)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested: JSONObjectBuilder
        if case .object(let existing)? = object.values[key.stringValue] {
            nested = existing
        } else {
            nested = JSONObjectBuilder()
            object.set(.object(nested), for: key.stringValue)
        }
        return KeyedEncodingContainer(
            JSONKeyedEncoding<NestedKey>(context: context, object: nested, path: path.appending(key)))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested: JSONArrayBuilder
        if case .array(let existing)? = object.values[key.stringValue] {
            nested = existing
        } else {
            nested = JSONArrayBuilder()
            object.set(.array(nested), for: key.stringValue)
        }
        return JSONUnkeyedEncoding(context: context, array: nested, path: path.appending(key))
    }

    mutating func superEncoder() -> any Encoder { superEncoder(JSONSuperKey()) }

    mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder(key) }

    private func superEncoder(_ key: some CodingKey) -> any Encoder {
        let encoder = JSONTreeEncoder(path: path.appending(key), context: context)
        object.set(.encoder(encoder), for: key.stringValue)
        return encoder
    }
}

struct JSONUnkeyedEncoding: UnkeyedEncodingContainer {
    let context: JSONCodingContext
    let array: JSONArrayBuilder
    let path: JSONCodingPath

    var codingPath: [any CodingKey] { path.keys }
    var count: Int { array.items.count }

    private var next: JSONCodingPath { path.appending(index: array.items.count) }
    private func append(_ value: JSONValue) { array.items.append(.value(value)) }

    mutating func encodeNil() throws { append(.null) }
    mutating func encode(_ value: Bool) throws { append(.bool(value)) }
    mutating func encode(_ value: String) throws { append(.string(value)) }
    mutating func encode(_ value: Double) throws { append(try JSONScalar.double(value, next)) }
    mutating func encode(_ value: Float) throws { append(try JSONScalar.float(value, next)) }
    mutating func encode(_ value: Int) throws { append(.int(value)) }
    mutating func encode(_ value: Int8) throws { append(.int(Int(value))) }
    mutating func encode(_ value: Int16) throws { append(.int(Int(value))) }
    mutating func encode(_ value: Int32) throws { append(.int(Int(value))) }
    mutating func encode(_ value: Int64) throws { append(.int(Int(value))) }
    mutating func encode(_ value: UInt) throws { append(try JSONScalar.integer(value, next)) }
    mutating func encode(_ value: UInt8) throws { append(.int(Int(value))) }
    mutating func encode(_ value: UInt16) throws { append(.int(Int(value))) }
    mutating func encode(_ value: UInt32) throws { append(.int(Int(value))) }
    mutating func encode(_ value: UInt64) throws { append(try JSONScalar.integer(value, next)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let slot = try JSONTreeEncoder.box(value, at: next, context: context)
        array.items.append(slot ?? .object(JSONObjectBuilder()))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested = JSONObjectBuilder()
        let path = next
        array.items.append(.object(nested))
        return KeyedEncodingContainer(JSONKeyedEncoding<NestedKey>(context: context, object: nested, path: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = JSONArrayBuilder()
        let path = next
        array.items.append(.array(nested))
        return JSONUnkeyedEncoding(context: context, array: nested, path: path)
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = JSONTreeEncoder(path: next, context: context)
        array.items.append(.encoder(encoder))
        return encoder
    }
}

struct JSONSingleValueEncoding: SingleValueEncodingContainer {
    let encoder: JSONTreeEncoder

    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ value: JSONValue) { encoder.slot = .value(value) }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(try JSONScalar.double(value, encoder.path)) }
    mutating func encode(_ value: Float) throws { set(try JSONScalar.float(value, encoder.path)) }
    mutating func encode(_ value: Int) throws { set(.int(value)) }
    mutating func encode(_ value: Int8) throws { set(.int(Int(value))) }
    mutating func encode(_ value: Int16) throws { set(.int(Int(value))) }
    mutating func encode(_ value: Int32) throws { set(.int(Int(value))) }
    mutating func encode(_ value: Int64) throws { set(.int(Int(value))) }
    mutating func encode(_ value: UInt) throws { set(try JSONScalar.integer(value, encoder.path)) }
    mutating func encode(_ value: UInt8) throws { set(.int(Int(value))) }
    mutating func encode(_ value: UInt16) throws { set(.int(Int(value))) }
    mutating func encode(_ value: UInt32) throws { set(.int(Int(value))) }
    mutating func encode(_ value: UInt64) throws { set(try JSONScalar.integer(value, encoder.path)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        encoder.slot =
            try JSONTreeEncoder.box(value, at: encoder.path, context: encoder.context) ?? .object(JSONObjectBuilder())
    }
}
