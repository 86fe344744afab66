import Foundation

extension JSONValue {
    /// An object whose keys keep the given order when serialized.
    static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        var values: [String: JSONValue] = [:]
        var order: [String] = []
        for (key, value) in pairs where values[key] == nil {
            values[key] = value
            order.append(key)
        }
        return .object(values, order: order)
    }

    /// An object from a dictionary, keys sorted.
    static func sortedObject(_ values: [String: JSONValue]) -> JSONValue {
        .object(values, order: values.keys.sorted())
    }

    static func stringOrNull(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }

    /// Compact JSON text (Python's `json.dumps` separators: `", "` and `": "`).
    func serialized() -> String {
        String(decoding: serializedBytes(), as: UTF8.self)
    }

    /// Compact JSON as UTF-8 bytes, written in one buffer.
    func serializedBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
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
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.appendLiteral(", ") }
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let values, let order):
            out.append(UInt8(ascii: "{"))
            var first = true
            for key in order {
                guard let value = values[key] else { continue }
                if !first { out.appendLiteral(", ") }
                first = false
                Self.writeString(key, to: &out)
                out.appendLiteral(": ")
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func writeString(_ text: String, to out: inout [UInt8]) {
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
    static func writeInt(_ value: Int, to out: inout [UInt8]) {
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
    @inline(__always) mutating func appendLiteral(_ literal: StaticString) {
        literal.withUTF8Buffer { append(contentsOf: $0) }
    }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral {
    init(integerLiteral value: Int) { self = .int(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}
