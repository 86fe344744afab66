import AllotCore
import Foundation
import HTTPTypes
import Hummingbird

/// One API call as a handler sees it: parsed version, parameters, query, body and caller.
struct Call: Sendable {
    var version: Microversion
    var parameters: [String]
    var query: [(String, String)]
    var headers: HTTPFields
    var body: Data
    var identity: Identity?
    var method: HTTPRequest.Method
    /// `http://host:port` from the request, for absolute `Location` headers.
    var baseURL: String

    func atLeast(_ major: Int, _ minor: Int) -> Bool { version.isAtLeast(major, minor) }

    /// All values of a query parameter, in order.
    func queryValues(_ name: String) -> [String] { query.filter { $0.0 == name }.map(\.1) }

    /// The single value of a query parameter.
    func queryValue(_ name: String) -> String? { query.last { $0.0 == name }?.1 }

    /// The path parameter at `index` as a UUID, in canonical form.
    /// - Throws: 400 when it is not a UUID.
    func uuidParameter(_ index: Int) throws -> String {
        guard let uuid = UUIDText.normalized(parameters[index]) else {
            throw PlacementError.badRequest("'\(parameters[index])' is not a valid UUID.")
        }
        return uuid
    }

    /// Refuses query parameters the version does not know.
    /// - Throws: 400 naming them, with upstream's jsonschema wording.
    func rejectUnknownQuery(allowed: Set<String>) throws {
        var unknown: [String] = []
        for (name, _) in query where !allowed.contains(name) && !unknown.contains(name) { unknown.append(name) }
        guard unknown.isEmpty else {
            let names = unknown.sorted().map { "'\($0)'" }.joined(separator: ", ")  // jsonschema sorts them
            throw PlacementError.badRequest(
                "Invalid query string parameters: Additional properties are not allowed (\(names) "
                    + "\(unknown.count == 1 ? "was" : "were") unexpected)")
        }
    }

    /// The body as JSON, checked against `schema`.
    /// - Throws: 400 with upstream's wording for malformed JSON or a schema violation.
    func json(_ schema: Schema) throws -> JSONValue {
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch {
            throw PlacementError.badRequest("Malformed JSON: \(error.message)")
        }
        try schema.validate(value)
        return value
    }
}

/// What a handler answers.
struct Reply: Sendable {
    var status: HTTPResponse.Status
    var body: JSONValue?
    var headers: [(HTTPField.Name, String)] = []
    /// A body already rendered to bytes (`/metrics` text, large JSON documents).
    var raw: [UInt8]? = nil
    /// A streamed body (Server-Sent Events).
    var stream: ResponseBody? = nil

    static func json(_ body: JSONValue, status: HTTPResponse.Status = .ok) -> Reply {
        Reply(status: status, body: body)
    }

    static let noContent = Reply(status: .noContent, body: nil)

    /// Adds `last-modified` and `cache-control: no-cache` (microversion 1.15 and later).
    func cacheHeaders(_ call: Call, lastModified: Double?, omitLastModified: Bool = false) -> Reply {
        guard call.atLeast(1, 15) else { return self }
        var reply = self
        if !omitLastModified {
            reply.headers.append((.lastModified, HTTPDate.format(lastModified ?? Date().timeIntervalSince1970)))
        }
        reply.headers.append((.cacheControl, "no-cache"))
        return reply
    }
}

enum HTTPDate {
    private static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// RFC 7231 date, e.g. `Sun, 22 Nov 2026 04:20:00 GMT` (computed directly: no formatter per request).
    static func format(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.down))
        let dayNumber = total >= 0 ? total / 86_400 : (total - 86_399) / 86_400
        let secondOfDay = total - dayNumber * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = dayNumber + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = days[((dayNumber % 7) + 7) % 7]
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        return "\(weekday), \(two(day)) \(months[month - 1]) \(year) \(two(secondOfDay / 3600)):"
            + "\(two(secondOfDay % 3600 / 60)):\(two(secondOfDay % 60)) GMT"
    }
}
