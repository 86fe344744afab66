import AllotCore

/// A ``Schema`` written out as a JSON Schema (draft 2020-12, as OpenAPI 3.1 embeds it).
extension Schema {
    /// The schema as JSON Schema keywords; each rule the validator applies appears as the keyword it implements.
    var jsonSchema: JSONValue {
        switch self {
        case .object(let rules): return Self.objectSchema(rules)
        case .string(let rules):
            var members: [(String, JSONValue)] = [("type", "string")]
            if let minLength = rules.minLength { members.append(("minLength", .int(minLength))) }
            if let maxLength = rules.maxLength { members.append(("maxLength", .int(maxLength))) }
            if let (pattern, _) = rules.pattern { members.append(("pattern", .string(pattern))) }
            if let format = rules.format { members.append(("format", .string(format))) }
            if let values = rules.enumValues { members.append(("enum", .array(values.map(JSONValue.string)))) }
            return .ordered(members)
        case .integer(let minimum, let maximum):
            var members: [(String, JSONValue)] = [("type", "integer")]
            if let minimum { members.append(("minimum", .int(minimum))) }
            if let maximum { members.append(("maximum", .int(maximum))) }
            return .ordered(members)
        case .number(let minimum, let maximum):
            var members: [(String, JSONValue)] = [("type", "number")]
            if let minimum { members.append(("minimum", .double(minimum))) }
            if let maximum { members.append(("maximum", .double(maximum))) }
            return .ordered(members)
        case .array(let items, let minItems, let uniqueItems):
            var members: [(String, JSONValue)] = [("type", "array")]
            if let items { members.append(("items", items.jsonSchema)) }
            if let minItems { members.append(("minItems", .int(minItems))) }
            if uniqueItems { members.append(("uniqueItems", .bool(true))) }
            return .ordered(members)
        case .boolean: return .ordered([("type", "boolean")])
        case .null: return .ordered([("type", "null")])
        case .anyOf(let alternatives), .anyOfSchemas(let alternatives):
            return .ordered([("anyOf", .array(alternatives.map(\.jsonSchema)))])
        case .any: return .ordered([])
        }
    }

    private static func objectSchema(_ rules: ObjectRules) -> JSONValue {
        var members: [(String, JSONValue)] = [("type", "object")]
        if !rules.properties.isEmpty {
            members.append(("properties", .ordered(rules.properties.map { ($0.0, $0.1.jsonSchema) })))
        }
        if !rules.patternProperties.isEmpty {
            members.append(("patternProperties", .ordered(rules.patternProperties.map { ($0.0, $0.2.jsonSchema) })))
        }
        if !rules.required.isEmpty { members.append(("required", .array(rules.required.map(JSONValue.string)))) }
        if !rules.additionalProperties { members.append(("additionalProperties", .bool(false))) }
        if let minProperties = rules.minProperties { members.append(("minProperties", .int(minProperties))) }
        return .ordered(members)
    }
}

extension JSONValue {
    /// An object with its members in the given order.
    static func ordered(_ members: [(String, JSONValue)]) -> JSONValue {
        var values: [String: JSONValue] = [:]
        var order: [String] = []
        for (key, value) in members where values.updateValue(value, forKey: key) == nil { order.append(key) }
        return .object(values, order: order)
    }
}
