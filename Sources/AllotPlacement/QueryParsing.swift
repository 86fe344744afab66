import AllotCore

/// Parsers for Placement's query-string mini-languages, with upstream's error wording.
enum QueryParsing {
    /// `resources=VCPU:2,MEMORY_MB:1024`
    static func resources(_ text: String) throws -> [String: Int] {
        var result: [String: Int] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw PlacementError.badRequest(
                    "Badly formed resources parameter. Expected resources query string parameter in form: "
                        + "?resources=VCPU:2,MEMORY_MB:1024. Got: \(text).")
            }
            let name = String(parts[0])
            guard let amount = Int(parts[1].trimmingCharacters()), String(parts[1]).trimmingSpacesAndTabs() == String(parts[1]) else {
                throw PlacementError.badRequest(
                    "Requested resource \(name) expected positive integer amount. Got: \(parts[1]).")
            }
            guard amount >= 1 else {
                throw PlacementError.badRequest("Requested resource \(name) requires amount >= 1. Got: \(amount).")
            }
            if result[name] != nil {
                throw PlacementError.badRequest(
                    "Badly formed resources parameter. Expected resources query string parameter in form: "
                        + "?resources=VCPU:2,MEMORY_MB:1024. Got: \(text).")
            }
            result[name] = amount
        }
        return result
    }

    /// `required=A,!B,in:C,D` (forbidden from 1.22, `in:` from 1.39); several parameters add up.
    /// - Returns: any-of groups (single traits are groups of one) and forbidden traits.
    static func required(_ values: [String], version: Microversion) throws -> (groups: [[String]], forbidden: [String]) {
        var groups: [[String]] = []
        var forbidden: [String] = []
        let allowForbidden = version.isAtLeast(1, 22)
        let form = allowForbidden ? "HW_CPU_X86_VMX,!CUSTOM_MAGIC" : "HW_CPU_X86_VMX,CUSTOM_MAGIC"
        for value in values {
            if version.isAtLeast(1, 39), value.hasPrefix("in:") {
                let names = value.dropFirst(3).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                if names.contains(where: { $0.isEmpty || $0.hasPrefix("!") }) {
                    throw PlacementError.badRequest(
                        "Invalid query string parameters: Expected 'required' parameter value of the form: "
                            + "in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait name or a forbidden trait in: \(value)")
                }
                groups.append(names)
                continue
            }
            let names = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if names.contains(where: { $0.isEmpty || $0 == "!" }) {
                throw PlacementError.badRequest(
                    "Invalid query string parameters: Expected 'required' parameter value of the form: \(form). "
                        + "Got: \(value)")
            }
            for name in names {
                if name.hasPrefix("!") {
                    guard allowForbidden else {
                        throw PlacementError.badRequest(
                            "Invalid query string parameters: Expected 'required' parameter value of the form: "
                                + "\(form). Got: \(value)")
                    }
                    forbidden.append(String(name.dropFirst()))
                } else {
                    groups.append([name])
                }
            }
        }
        let required = Set(groups.filter { $0.count == 1 }.map { $0[0] })
        let conflicting = required.intersection(forbidden).sorted()
        if !conflicting.isEmpty {
            throw PlacementError.badRequest(
                "Invalid query string parameters: Conflicting required and forbidden traits found in the "
                    + "following traits keys: required: (\(conflicting.joined(separator: ", ")))")
        }
        return (groups, forbidden)
    }

    /// `member_of=UUID`, `member_of=in:UUID,UUID`, `member_of=!UUID` / `!in:…` (from 1.32).
    static func memberOf(_ values: [String], version: Microversion) throws -> (groups: [[String]], forbidden: [String]) {
        if values.count > 1, !version.isAtLeast(1, 24) {
            throw PlacementError.badRequest(
                "Multiple member_of parameters are not supported until microversion 1.24.")
        }
        var groups: [[String]] = []
        var forbidden: [String] = []
        for value in values {
            var text = Substring(value)
            var negate = false
            if text.hasPrefix("!") {
                guard version.isAtLeast(1, 32) else {
                    throw PlacementError.badRequest(
                        "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: \(value)")
                }
                negate = true
                text = text.dropFirst()
            }
            let isList = text.hasPrefix("in:")
            if isList { text = text.dropFirst(3) }
            var uuids: [String] = []
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let uuid = UUIDText.normalized(String(item)) else {
                    throw PlacementError.badRequest(
                        "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: \(value)")
                }
                uuids.append(uuid)
            }
            if !isList, uuids.count > 1 {
                throw PlacementError.badRequest(
                    "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: \(value)")
            }
            if negate {
                if isList, version.isAtLeast(1, 32) {
                    forbidden += uuids
                } else {
                    forbidden += uuids
                }
            } else {
                groups.append(uuids)
            }
        }
        return (groups, forbidden)
    }
}
