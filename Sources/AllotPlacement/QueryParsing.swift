import AllotCore

/// Parsers for Placement's query-string mini-languages, with upstream's error wording.
enum QueryParsing {
    static let resourcesForm = "Badly formed resources parameter. Expected resources query string parameter in form: "
        + "?resources=VCPU:2,MEMORY_MB:1024. Got: "

    /// `resources=VCPU:2,MEMORY_MB:1024` (a repeated class: the last amount wins).
    static func resources(_ text: String) throws -> [String: Int] {
        guard !text.trimmingSpaces().isEmpty else {
            throw PlacementError.badRequest(resourcesForm + "empty string.")
        }
        var result: [String: Int] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw PlacementError.badRequest(resourcesForm + "\(item).") }
            let name = parts[0].trimmingCharacters()
            let amountText = parts[1].trimmingCharacters()
            guard let amount = Int(amountText) else {
                throw PlacementError.badRequest(
                    "Requested resource \(name) expected positive integer amount. Got: \(amountText).")
            }
            guard amount >= 1 else {
                throw PlacementError.badRequest("Requested resource \(name) requires amount >= 1. Got: \(amount).")
            }
            result[name] = amount
        }
        return result
    }

    /// `required=A,!B` (forbidden from 1.22) and `required=in:C,D` (from 1.39, where repeats add up;
    /// before 1.39 only the last parameter counts).
    /// - Returns: any-of groups (single traits are groups of one) and forbidden traits.
    static func required(_ values: [String], version: Microversion) throws -> (groups: [[String]], forbidden: [String]) {
        let anyOf = version.isAtLeast(1, 39)
        let used = anyOf ? values : Array(values.suffix(1))
        let form = version.isAtLeast(1, 22) ? "HW_CPU_X86_VMX,!CUSTOM_MAGIC" : "HW_CPU_X86_VMX,CUSTOM_MAGIC"
        let prefix = "Invalid query string parameters: "
        var groups: [[String]] = []
        var forbidden: [String] = []
        for value in used {
            if value.hasPrefix("in:") {
                guard anyOf else {
                    throw PlacementError.badRequest(prefix
                        + "The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since microversion 1.39. Got: \(value)")
                }
                let names = value.dropFirst(3).split(separator: ",", omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters() }
                if names.contains(where: \.isEmpty) {
                    throw PlacementError.badRequest(prefix + "Expected 'required' parameter value of the form: "
                        + "in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: \(value)")
                }
                if names.contains(where: { $0.hasPrefix("!") }) {
                    throw PlacementError.badRequest(prefix + "The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not "
                        + "support forbidden traits. Got: \(value)")
                }
                groups.append(names)
                continue
            }
            for raw in value.split(separator: ",", omittingEmptySubsequences: false) {
                let item = raw.trimmingCharacters()
                let name = String(item.drop(while: { $0 == "!" }))
                if name.isEmpty {
                    throw PlacementError.badRequest(prefix + "Expected 'required' parameter value of the form: \(form). "
                        + "Got an empty trait in: \(value)")
                }
                if item.hasPrefix("!") {
                    guard version.isAtLeast(1, 22) else {
                        throw PlacementError.badRequest(prefix + "Expected 'required' parameter value of the form: "
                            + "\(form). Got: \(value)")
                    }
                    forbidden.append(name)
                } else {
                    groups.append([name])
                }
            }
        }
        return (groups, forbidden)
    }

    /// `member_of=UUID`, `in:UUID,UUID`, `!UUID`, `!in:UUID,UUID` (forbidden forms from 1.32; repeats from 1.24).
    static func memberOf(_ values: [String], version: Microversion) throws -> (groups: [[String]], forbidden: [String]) {
        if values.count > 1, !version.isAtLeast(1, 24) {
            throw PlacementError.badRequest("Multiple member_of parameters are not supported")
        }
        var groups: [[String]] = []
        var forbidden: [String] = []
        for value in values {
            var text = Substring(value)
            let negate = text.hasPrefix("!")
            if negate { text = text.dropFirst() }
            let isList = text.hasPrefix("in:")
            if isList {
                text = text.dropFirst(3)
            } else if text.contains(",") {
                throw PlacementError.badRequest("Multiple values for 'member_of' must be prefixed with the 'in:' or "
                    + "'!in:' keyword using the valid microversion. Got: \(value)")
            }
            var uuids: [String] = []
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let uuid = UUIDText.normalized(String(item)) else {
                    throw PlacementError.badRequest("Invalid query string parameters: Expected 'member_of' parameter "
                        + "to contain valid UUID(s). Got: \(item)")
                }
                uuids.append(uuid)
            }
            if negate {
                guard version.isAtLeast(1, 32) else {
                    throw PlacementError.badRequest(
                        "Forbidden member_of parameters are not supported in the specified microversion")
                }
                forbidden += uuids
            } else {
                groups.append(uuids)
            }
        }
        return (groups, forbidden)
    }
}
