import AllotCore
import Foundation
import HTTPTypes

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
    /// A plain-text body instead of JSON (`/metrics`).
    var text: String? = nil
    /// A body already rendered to bytes (large JSON documents).
    var raw: [UInt8]? = nil

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
    /// RFC 7231 date, e.g. `Sun, 22 Nov 2026 04:20:00 GMT`.
    static func format(_ seconds: Double) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: Date(timeIntervalSince1970: seconds.rounded(.down)))
    }
}
