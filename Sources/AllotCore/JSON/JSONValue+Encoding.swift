/// How ``JSONValue/serializedBytes(_:)`` lays a document out. Every layout writes the same values in the same order;
/// only the white space between them differs.
package enum JSONLayout: Sendable {
    /// One line, `", "` between members and `": "` after keys: Python's `json.dumps`, which is how upstream
    /// Placement writes its bodies.
    case spaced
    /// One line, no spaces: what Foundation's `JSONEncoder` wrote (ledger protocol, stored columns, token bodies).
    case compact
    /// Two spaces of indentation per level, one member or element per line, `"key": value` (Python's
    /// `json.dumps(indent=2)`); empty objects and arrays stay `{}` and `[]`.
    case indented
}

extension JSONValue {
    /// An object whose keys keep the given order when serialized.
    package static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        var values: [String: JSONValue] = [:]
        var order: [String] = []
        for (key, value) in pairs where values[key] == nil {
            values[key] = value
            order.append(key)
        }
        return .object(values, order: order)
    }

    /// An object from a dictionary, keys sorted.
    package static func sortedObject(_ values: [String: JSONValue]) -> JSONValue {
        .object(values, order: values.keys.sorted())
    }

    package static func stringOrNull(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }

    /// The same document with every object's keys sorted (by Unicode code point, as `JSONEncoder`'s
    /// `.sortedKeys` and Python's `sort_keys` do).
    package func sortingKeys() -> JSONValue {
        switch self {
        case .array(let values): return .array(values.map { $0.sortingKeys() })
        case .object(let values, _): return .object(values.mapValues { $0.sortingKeys() }, order: values.keys.sorted())
        case .null, .bool, .int, .double, .string: return self
        }
    }

    /// Compact JSON text (Python's `json.dumps` separators: `", "` and `": "`).
    package func serialized() -> String {
        String(decoding: serializedBytes(), as: UTF8.self)
    }

    /// JSON as UTF-8 bytes, written in one buffer; by default on one line with Python's separators (``JSONLayout/spaced``).
    /// A non-finite float is written `null` (``JSONCoding`` refuses to encode one).
    package func serializedBytes(_ layout: JSONLayout = .spaced) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        switch layout {
        case .spaced: write(to: &out)
        case .compact: writeCompact(to: &out)
        case .indented: writeIndented(to: &out, depth: 0)
        }
        return out
    }

    /// One line: Placement's layout (`spaced`, Python's `", "` and `": "`) or without spaces (`compact`).
    private func write(to out: inout [UInt8]) { writeLine(to: &out, comma: ", ", colon: ": ") }

    private func writeCompact(to out: inout [UInt8]) { writeLine(to: &out, comma: ",", colon: ":") }

    private func writeLine(to out: inout [UInt8], comma: StaticString, colon: StaticString) {
        switch self {
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.appendLiteral(comma) }
                value.writeLine(to: &out, comma: comma, colon: colon)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let values, let order):
            out.append(UInt8(ascii: "{"))
            var first = true
            for key in order {
                guard let value = values[key] else { continue }
                if !first { out.appendLiteral(comma) }
                first = false
                Self.writeString(key, to: &out)
                out.appendLiteral(colon)
                value.writeLine(to: &out, comma: comma, colon: colon)
            }
            out.append(UInt8(ascii: "}"))
        case .null, .bool, .int, .double, .string: writeScalar(to: &out)
        }
    }

    private func writeIndented(to out: inout [UInt8], depth: Int) {
        func newline(_ depth: Int) {
            out.append(UInt8(ascii: "\n"))
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * depth))
        }
        switch self {
        case .array(let values):
            out.append(UInt8(ascii: "["))
            guard !values.isEmpty else {
                out.append(UInt8(ascii: "]"))
                return
            }
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                newline(depth + 1)
                value.writeIndented(to: &out, depth: depth + 1)
            }
            newline(depth)
            out.append(UInt8(ascii: "]"))
        case .object(let values, let order):
            out.append(UInt8(ascii: "{"))
            var first = true
            for key in order {
                guard let value = values[key] else { continue }
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                newline(depth + 1)
                Self.writeString(key, to: &out)
                out.appendLiteral(": ")
                value.writeIndented(to: &out, depth: depth + 1)
            }
            if !first { newline(depth) }
            out.append(UInt8(ascii: "}"))
        case .null, .bool, .int, .double, .string: writeScalar(to: &out)
        }
    }

    /// A value that is neither an array nor an object: the same in every layout.
    private func writeScalar(to out: inout [UInt8]) {
        switch self {
        case .null: out.appendLiteral("null")
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): Self.writeInt(value, to: &out)
        case .double(let value):
            if value.isFinite, value == value.rounded(), abs(value) < 1e15 {
                out.append(contentsOf: String(Int(value)).utf8)
                out.appendLiteral(".0")
            } else {
                out.append(contentsOf: (value.isFinite ? String(value) : "null").utf8)
            }
        case .string(let value): Self.writeString(value, to: &out)
        case .array, .object: writeCompact(to: &out)
        }
    }

    @usableFromInline static let hexDigits = Array("0123456789abcdef".utf8)

    /// Writes a JSON string (quotes, escapes). Inlinable, as the allocation-candidates renderer calls it per value.
    @inlinable package static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings (UUIDs, class and trait names) need no escaping: copy them in one go.
        let copied = text.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                return false
            }
            out.append(contentsOf: bytes)
            return true
        }
        if copied == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.appendLiteral("\\\"")
            case UInt8(ascii: "\\"): out.appendLiteral("\\\\")
            case UInt8(ascii: "\n"): out.appendLiteral("\\n")
            case UInt8(ascii: "\r"): out.appendLiteral("\\r")
            case UInt8(ascii: "\t"): out.appendLiteral("\\t")
            case 0..<0x20:
                out.appendLiteral("\\u00")
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    /// Writes a decimal integer without going through `String`.
    @inlinable package static func writeInt(_ value: Int, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            if value == .min {
                out.append(contentsOf: String(value).utf8.dropFirst())
                return
            }
        }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[(20 - count)...]))
        }
    }
}

extension [UInt8] {
    /// Appends a literal's bytes (a plain copy, unlike appending a `String`'s UTF-8 view).
    @inlinable @inline(__always) package mutating func appendLiteral(_ literal: StaticString) {
        literal.withUTF8Buffer { append(contentsOf: $0) }
    }
}

extension JSONValue: ExpressibleByStringLiteral {
    package init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral {
    package init(integerLiteral value: Int) { self = .int(value) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    package init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}
