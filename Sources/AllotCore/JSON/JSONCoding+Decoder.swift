/// The `Decoder` of ``JSONCoding``: one per value whose `init(from:)` runs, over that value's part of the tree.
struct JSONTreeDecoder: Decoder {
    let value: JSONValue
    let path: JSONCodingPath
    let context: JSONCodingContext

    var codingPath: [any CodingKey] { path.keys }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// Decodes one value at `path`: scalars directly, anything else through its `init(from:)`.
    static func unbox<T: Decodable>(
        _ type: T.Type, from value: JSONValue, at path: JSONCodingPath,
        context: JSONCodingContext
    ) throws -> T {
        if T.self == String.self, let text = try JSONUnbox.string(value, path) as? T { return text }
        if T.self == Int.self, let number = try JSONUnbox.integer(Int.self, value, path) as? T { return number }
        if T.self == Bool.self, let flag = try JSONUnbox.bool(value, path) as? T { return flag }
        if T.self == Double.self, let number = try JSONUnbox.float(Double.self, value, path) as? T { return number }
        if T.self == JSONValue.self, let value = value as? T { return value }
        if let name = context.refusedName(T.self) {
            throw DecodingError.typeMismatch(
                T.self,
                .init(
                    codingPath: path.keys,
                    debugDescription: "JSONCoding does not decode \(name): JSONDecoder reads it in a form of its own."
                ))
        }
        return try T(from: JSONTreeDecoder(value: value, path: path, context: context))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let values, let order) = value else {
            throw JSONUnbox.mismatch([String: Any].self, value, path)
        }
        return KeyedDecodingContainer(
            JSONKeyedDecoding<Key>(values: values, order: order, path: path, context: context))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw JSONUnbox.mismatch([Any].self, value, path) }
        return JSONUnkeyedDecoding(items: items, path: path, context: context)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }
}

extension JSONTreeDecoder: SingleValueDecodingContainer {
    func decodeNil() -> Bool { value == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try JSONUnbox.bool(value, path) }
    func decode(_ type: String.Type) throws -> String { try JSONUnbox.string(value, path) }
    func decode(_ type: Double.Type) throws -> Double { try JSONUnbox.float(type, value, path) }
    func decode(_ type: Float.Type) throws -> Float { try JSONUnbox.float(type, value, path) }
    func decode(_ type: Int.Type) throws -> Int { try JSONUnbox.integer(type, value, path) }
    func decode(_ type: Int8.Type) throws -> Int8 { try JSONUnbox.integer(type, value, path) }
    func decode(_ type: Int16.Type) throws -> Int16 { try JSONUnbox.integer(type, value, path) }
    func decode(_ type: Int32.Type) throws -> Int32 { try JSONUnbox.integer(type, value, path) }
    func decode(_ type: Int64.Type) throws -> Int64 { try JSONUnbox.integer(type, value, path) }
    func decode(_ type: UInt.Type) throws -> UInt { try JSONUnbox.integer(type, value, path) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try JSONUnbox.integer(type, value, path) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try JSONUnbox.integer(type, value, path) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try JSONUnbox.integer(type, value, path) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try JSONUnbox.integer(type, value, path) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try Self.unbox(type, from: value, at: path, context: context)
    }
}

/// Scalars out of JSON values, with `JSONDecoder`'s errors.
enum JSONUnbox {
    static func bool(_ value: JSONValue, _ path: JSONCodingPath) throws -> Bool {
        guard case .bool(let flag) = value else { throw mismatch(Bool.self, value, path) }
        return flag
    }

    static func string(_ value: JSONValue, _ path: JSONCodingPath) throws -> String {
        guard case .string(let text) = value else { throw mismatch(String.self, value, path) }
        return text
    }

    /// An integer; a float only when its value is exactly an integer of the type (`2.0`, `1e2`), as `JSONDecoder`
    /// allows.
    static func integer<I: FixedWidthInteger>(_ type: I.Type, _ value: JSONValue, _ path: JSONCodingPath) throws -> I {
        let result: I?
        switch value {
        case .int(let number): result = I(exactly: number)
        case .double(let number): result = number.isFinite ? I(exactly: number) : nil
        default: throw mismatch(I.self, value, path)
        }
        guard let result else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: path.keys,
                    debugDescription: "Number \(value.numberText) is not representable in \(I.self)."))
        }
        return result
    }

    /// A float from any JSON number; one out of range (`1e400`) is refused, as `JSONDecoder` refuses it.
    static func float<F: BinaryFloatingPoint & LosslessStringConvertible>(
        _ type: F.Type, _ value: JSONValue, _ path: JSONCodingPath
    ) throws -> F {
        let result: F
        switch value {
        case .int(let number): result = F(number)
        case .double(let number): result = F(number)
        default: throw mismatch(F.self, value, path)
        }
        guard result.isFinite else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: path.keys,
                    debugDescription: "Number \(value.numberText) is not representable in \(F.self)."))
        }
        return result
    }

    /// The error for `value` where a `type` was expected: `valueNotFound` for `null`, else `typeMismatch`.
    static func mismatch(_ type: Any.Type, _ value: JSONValue, _ path: JSONCodingPath) -> DecodingError {
        if value == .null {
            return .valueNotFound(
                type,
                .init(
                    codingPath: path.keys,
                    debugDescription: "Cannot get value of type \(type) -- found null value instead"))
        }
        return .typeMismatch(
            type,
            .init(
                codingPath: path.keys,
                debugDescription: "Expected to decode \(type) but found \(value.kindName) instead."))
    }
}

extension JSONValue {
    /// What kind of value this is, for error messages (`a string`, `a number`, …).
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "bool"
        case .int, .double: return "number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "a dictionary"
        }
    }

    /// A number as Swift prints it, for error messages.
    var numberText: String {
        switch self {
        case .int(let number): return String(number)
        case .double(let number): return String(number)
        case .null, .bool, .string, .array, .object: return kindName
        }
    }
}

struct JSONKeyedDecoding<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let values: [String: JSONValue]
    let order: [String]
    let path: JSONCodingPath
    let context: JSONCodingContext

    var codingPath: [any CodingKey] { path.keys }
    var allKeys: [Key] { order.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { values[key.stringValue] != nil }

    private func value(_ key: Key) throws -> JSONValue {
        guard let value = values[key.stringValue] else {
            throw DecodingError.keyNotFound(
                key,
                .init(
                    codingPath: path.keys,
                    debugDescription: "No value associated with key \(key) (\"\(key.stringValue)\")."))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try value(key) == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try JSONUnbox.bool(value(key), path.appending(key))
    }
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try JSONUnbox.string(value(key), path.appending(key))
    }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try float(type, key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try float(type, key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(type, key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(type, key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(type, key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(type, key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(type, key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(type, key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(type, key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(type, key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(type, key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(type, key) }

    private func integer<I: FixedWidthInteger>(_ type: I.Type, _ key: Key) throws -> I {
        try JSONUnbox.integer(type, value(key), path.appending(key))
    }

    private func float<F: BinaryFloatingPoint & LosslessStringConvertible>(_ type: F.Type, _ key: Key) throws -> F {
        try JSONUnbox.float(type, value(key), path.appending(key))
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONTreeDecoder.unbox(type, from: value(key), at: path.appending(key), context: context)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try JSONTreeDecoder(value: value(key), path: path.appending(key), context: context).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONTreeDecoder(value: value(key), path: path.appending(key), context: context).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        JSONTreeDecoder(value: values["super"] ?? .null, path: path.appending(JSONSuperKey()), context: context)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        JSONTreeDecoder(value: values[key.stringValue] ?? .null, path: path.appending(key), context: context)
    }
}

struct JSONUnkeyedDecoding: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let path: JSONCodingPath
    let context: JSONCodingContext
    private(set) var currentIndex = 0

    init(items: [JSONValue], path: JSONCodingPath, context: JSONCodingContext) {
        self.items = items
        self.path = path
        self.context = context
    }

    var codingPath: [any CodingKey] { path.keys }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    /// The next element and its path; the index moves on only when `read` succeeds (as with `JSONDecoder`).
    private mutating func next<T>(_ type: T.Type, _ read: (JSONValue, JSONCodingPath) throws -> T) throws -> T {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                type,
                .init(
                    codingPath: path.appending(index: currentIndex).keys,
                    debugDescription: "Unkeyed container is at end."))
        }
        let result = try read(items[currentIndex], path.appending(index: currentIndex))
        currentIndex += 1
        return result
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                Any?.self,
                .init(
                    codingPath: path.appending(index: currentIndex).keys,
                    debugDescription: "Unkeyed container is at end."))
        }
        guard items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type, JSONUnbox.bool) }
    mutating func decode(_ type: String.Type) throws -> String { try next(type, JSONUnbox.string) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(type) { try JSONUnbox.float(type, $0, $1) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(type) { try JSONUnbox.float(type, $0, $1) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    private mutating func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        try next(type) { try JSONUnbox.integer(type, $0, $1) }
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let context = context
        return try next(type) { try JSONTreeDecoder.unbox(type, from: $0, at: $1, context: context) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        let context = context
        return try next(KeyedDecodingContainer<NestedKey>.self) {
            try JSONTreeDecoder(value: $0, path: $1, context: context).container(keyedBy: type)
        }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let context = context
        return try next((any UnkeyedDecodingContainer).self) {
            try JSONTreeDecoder(value: $0, path: $1, context: context).unkeyedContainer()
        }
    }

    mutating func superDecoder() throws -> any Decoder {
        let context = context
        return try next((any Decoder).self) { JSONTreeDecoder(value: $0, path: $1, context: context) }
    }
}
