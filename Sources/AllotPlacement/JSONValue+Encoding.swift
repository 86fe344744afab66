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

    /// Compact JSON text.
    func serialized() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .double(let value):
            if value.isFinite, value == value.rounded(), abs(value) < 1e15 {
                out += String(format: "%.1f", value)
            } else {
                out += value.isFinite ? String(value) : "null"
            }
        case .string(let value): Self.writeString(value, to: &out)
        case .array(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += ", " }
                value.write(to: &out)
            }
            out += "]"
        case .object(let values, let order):
            out += "{"
            var first = true
            for key in order {
                guard let value = values[key] else { continue }
                if !first { out += ", " }
                first = false
                Self.writeString(key, to: &out)
                out += ": "
                value.write(to: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}
