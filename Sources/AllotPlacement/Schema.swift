import AllotCore

/// A JSON schema, reduced to the keywords Placement's request schemas use.
///
/// Validation failures are worded as Python's `jsonschema` words them, because upstream's clients and tests
/// match those messages.
indirect enum Schema: Sendable {
    case object(ObjectRules)
    case string(StringRules)
    case integer(minimum: Int?, maximum: Int?)
    case number(minimum: Double?, maximum: Double?)
    case array(items: Schema?, minItems: Int?, uniqueItems: Bool)
    case boolean
    case null
    /// Any of several types (`"type": ["string", "null"]`); rules of the matching alternative apply.
    /// A list of types (`"type": ["integer", "null"]`).
    case anyOf([Schema])
    /// jsonschema's `anyOf`: valid when one of the schemas validates.
    case anyOfSchemas([Schema])
    /// Anything.
    case any

    struct ObjectRules: Sendable {
        var properties: [(String, Schema)] = []
        var patternProperties: [(String, @Sendable (String) -> Bool, Schema)] = []
        var required: [String] = []
        var additionalProperties: Bool = true
        var minProperties: Int?
        /// Upstream's schema lists `additionalProperties` before `required` (its unknown member is reported first).
        var additionalBeforeRequired = false
    }

    struct StringRules: Sendable {
        var minLength: Int?
        var maxLength: Int?
        /// The pattern's text (for messages) and its test.
        var pattern: (String, @Sendable (String) -> Bool)?
        var format: String?
        var enumValues: [String]?
    }

    var typeName: String {
        switch self {
        case .object: return "object"
        case .string: return "string"
        case .integer: return "integer"
        case .number: return "number"
        case .array: return "array"
        case .boolean: return "boolean"
        case .null: return "null"
        case .anyOf(let alternatives), .anyOfSchemas(let alternatives):
            return alternatives.map(\.typeName).joined(separator: ", ")
        case .any: return "any"
        }
    }

    func matchesType(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.object, .object), (.string, .string), (.integer, .int), (.number, .int), (.number, .double),
            (.array, .array), (.boolean, .bool), (.null, .null), (.any, _):
            return true
        case (.integer, .double(let number)):
            // As upstream's jsonschema (draft 6 and later): any float with an integral value is an integer.
            return number.isFinite && number == number.rounded()
        case (.anyOf(let alternatives), _):
            return alternatives.contains { $0.matchesType(value) }
        case (.anyOfSchemas, _):
            return true
        default:
            return false
        }
    }

    /// Validates `value`.
    /// - Throws: a 400 `PlacementError` with upstream's "JSON does not validate: …" wording.
    func validate(_ value: JSONValue) throws(PlacementError) {
        if let failure = firstFailure(value, schemaPath: "", instancePath: "") {
            throw PlacementError.badRequest(
                "JSON does not validate: \(failure.message)\n\nFailed validating '\(failure.keyword)' in "
                    + "schema\(failure.schemaPath):\n\nOn instance\(failure.instancePath):\n    \(failure.instance)")
        }
    }

    struct Failure {
        var message: String
        var keyword: String
        var schemaPath: String
        var instancePath: String
        var instance: String
        /// How deep in the document the failing instance is.
        var depth: Int { pathKey.count }
        /// The instance path as Python compares it: keys by code point, indexes as numbers.
        var pathKey: [PathComponent] {
            var components: [PathComponent] = []
            var rest = Substring(instancePath)
            while rest.hasPrefix("[") {
                if rest.hasPrefix("['") {
                    let body = rest.dropFirst(2)
                    var end = body.startIndex
                    while end < body.endIndex, !body[end...].hasPrefix("']") { end = body.index(after: end) }
                    components.append(.key(body[..<end].unicodeScalars.map(\.value)))
                    rest = body[end...].dropFirst(2)
                } else if let end = rest.firstIndex(of: "]") {
                    components.append(.index(Int(rest[rest.index(after: rest.startIndex)..<end]) ?? 0))
                    rest = rest[rest.index(after: end)...]
                } else {
                    break
                }
            }
            return components
        }
    }

    enum PathComponent: Comparable {
        case index(Int)
        case key([UInt32])

        static func < (lhs: Self, rhs: Self) -> Bool {
            switch (lhs, rhs) {
            case (.index(let a), .index(let b)): return a < b
            case (.key(let a), .key(let b)): return a.lexicographicallyPrecedes(b)
            case (.index, .key): return true
            case (.key, .index): return false
            }
        }
    }

    /// The failure jsonschema's `best_match` would pick among sibling failures (`relevance`): the least deep, then
    /// the one with the greatest instance path, then the first of those.
    static func shallowest(_ failures: [Failure?]) -> Failure? {
        var best: Failure?
        for case let failure? in failures {
            guard let current = best else { best = failure; continue }
            if failure.depth < current.depth
                || failure.depth == current.depth && failure.pathKey.lexicographicallyPrecedes(current.pathKey) == false
                    && failure.pathKey != current.pathKey
            {
                best = failure
            }
        }
        return best
    }

    private func fail(_ message: String, _ keyword: String, _ schemaPath: String, _ instancePath: String,
                      _ value: JSONValue) -> Failure {
        Failure(message: message, keyword: keyword, schemaPath: schemaPath, instancePath: instancePath,
                instance: value.pythonRepr)
    }

    func firstFailure(_ value: JSONValue, schemaPath: String, instancePath: String) -> Failure? {
        guard matchesType(value) else {
            let expected: String
            if case .anyOf(let alternatives) = self {
                expected = alternatives.map { "'\($0.typeName)'" }.joined(separator: ", ")
            } else {
                expected = "'\(typeName)'"
            }
            return fail("\(value.pythonRepr) is not of type \(expected)", "type", schemaPath, instancePath, value)
        }
        switch (self, value) {
        case (.anyOf(let alternatives), _):
            let match = alternatives.first { $0.matchesType(value) }!
            return match.firstFailure(value, schemaPath: schemaPath, instancePath: instancePath)
        case (.anyOfSchemas(let alternatives), _):
            let failures = alternatives.map { $0.firstFailure(value, schemaPath: schemaPath, instancePath: instancePath) }
            if failures.contains(where: { $0 == nil }) { return nil }
            // best_match descends into the anyOf: when exactly the alternatives whose type the value has fail
            // for another reason, the first of those is reported; otherwise the anyOf itself.
            let typed = alternatives.indices.filter { alternatives[$0].matchesType(value) }
            if typed.count == 1 { return failures[typed[0]] }
            return fail("\(value.pythonRepr) is not valid under any of the given schemas", "anyOf", schemaPath,
                        instancePath, value)
        case (.string(let rules), .string(let text)):
            if let enumValues = rules.enumValues, !enumValues.contains(text) {
                let list = "[" + enumValues.map { JSONValue.pythonQuoted($0) }.joined(separator: ", ") + "]"
                return fail("\(value.pythonRepr) is not one of \(list)", "enum", schemaPath, instancePath, value)
            }
            if let minLength = rules.minLength, text.count < minLength {
                let message = minLength == 1 ? "should be non-empty" : "is too short"
                return fail("\(value.pythonRepr) \(message)", "minLength", schemaPath, instancePath, value)
            }
            if let maxLength = rules.maxLength, text.count > maxLength {
                return fail("\(value.pythonRepr) is too long", "maxLength", schemaPath, instancePath, value)
            }
            if let (pattern, test) = rules.pattern, !test(text) {
                return fail("\(value.pythonRepr) does not match \(JSONValue.pythonQuoted(pattern))", "pattern",
                            schemaPath, instancePath, value)
            }
            if rules.format == "uuid", UUIDText.normalized(text) == nil {
                return fail("\(value.pythonRepr) is not a 'uuid'", "format", schemaPath, instancePath, value)
            }
            return nil
        case (.integer(let minimum, let maximum), _):
            let number = value.doubleValue ?? 0
            if let minimum, number < Double(minimum) {
                return fail("\(value.pythonRepr) is less than the minimum of \(minimum)", "minimum", schemaPath,
                            instancePath, value)
            }
            if let maximum, number > Double(maximum) {
                return fail("\(value.pythonRepr) is greater than the maximum of \(maximum)", "maximum", schemaPath,
                            instancePath, value)
            }
            return nil
        case (.number(let minimum, let maximum), _):
            let number = value.doubleValue ?? 0
            if let minimum, number < minimum {
                return fail("\(value.pythonRepr) is less than the minimum of \(JSONValue.double(minimum).pythonRepr)",
                            "minimum", schemaPath, instancePath, value)
            }
            if let maximum, number > maximum {
                return fail("\(value.pythonRepr) is greater than the maximum of \(JSONValue.double(maximum).pythonRepr)",
                            "maximum", schemaPath, instancePath, value)
            }
            return nil
        case (.array(let items, let minItems, let uniqueItems), .array(let values)):
            if let minItems, values.count < minItems {
                let message = minItems == 1 ? "should be non-empty" : "is too short"
                return fail("\(value.pythonRepr) \(message)", "minItems", schemaPath, instancePath, value)
            }
            if uniqueItems {
                for (index, item) in values.enumerated() where values[..<index].contains(item) {
                    return fail("\(value.pythonRepr) has non-unique elements", "uniqueItems", schemaPath,
                                instancePath, value)
                }
            }
            if let items {
                return Self.shallowest(values.enumerated().map { index, item in
                    items.firstFailure(item, schemaPath: schemaPath + "['items']", instancePath: instancePath + "[\(index)]")
                })
            }
            return nil
        case (.object(let rules), .object(let values, let order)):
            return objectFailure(rules, values, order, value, schemaPath, instancePath)
        default:
            return nil
        }
    }

    private func objectFailure(
        _ rules: ObjectRules, _ values: [String: JSONValue], _ order: [String], _ value: JSONValue,
        _ schemaPath: String, _ instancePath: String
    ) -> Failure? {
        if let minProperties = rules.minProperties, values.count < minProperties {
            let message = minProperties == 1 ? "should be non-empty" : "does not have enough properties"
            return fail("\(value.pythonRepr) \(message)", "minProperties", schemaPath, instancePath, value)
        }
        let missing = rules.required.first { values[$0] == nil }.map {
            fail("'\($0)' is a required property", "required", schemaPath, instancePath, value)
        }
        if !rules.additionalBeforeRequired, let missing { return missing }
        // In jsonschema's order: `properties` in the schema's order, then each pattern over the members in the
        // document's order; members matching neither are extras.
        var childFailures: [Failure?] = []
        for (key, schema) in rules.properties {
            guard let item = values[key] else { continue }
            childFailures.append(schema.firstFailure(
                item, schemaPath: schemaPath + "['properties']['\(key)']", instancePath: instancePath + "['\(key)']"))
        }
        for (pattern, test, schema) in rules.patternProperties {
            for key in order where test(key) && !rules.properties.contains(where: { $0.0 == key }) {
                guard let item = values[key] else { continue }
                childFailures.append(schema.firstFailure(
                    item, schemaPath: schemaPath + "['patternProperties']['\(pattern)']",
                    instancePath: instancePath + "['\(key)']"))
            }
        }
        let extras = order.filter { key in
            values[key] != nil && !rules.properties.contains(where: { $0.0 == key })
                && !rules.patternProperties.contains(where: { $0.1(key) })
        }
        // jsonschema's best_match reports the least deep error: this object's own before any of its members'.
        if rules.additionalProperties || extras.isEmpty {
            if let missing { return missing }
            if let child = Self.shallowest(childFailures) { return child }
        }
        if !rules.additionalProperties, !extras.isEmpty, !rules.patternProperties.isEmpty {
            let names = extras.sorted().map { JSONValue.pythonQuoted($0) }.joined(separator: ", ")
            let patterns = rules.patternProperties.map { JSONValue.pythonQuoted($0.0) }.joined(separator: ", ")
            let verb = extras.count == 1 ? "does" : "do"
            return fail("\(names) \(verb) not match any of the regexes: \(patterns)", "additionalProperties",
                        schemaPath, instancePath, value)
        }
        if !rules.additionalProperties, !extras.isEmpty {
            let names = extras.sorted().map { JSONValue.pythonQuoted($0) }.joined(separator: ", ")
            let verb = extras.count == 1 ? "was" : "were"
            return fail("Additional properties are not allowed (\(names) \(verb) unexpected)", "additionalProperties",
                        schemaPath, instancePath, value)
        }
        return nil
    }
}
