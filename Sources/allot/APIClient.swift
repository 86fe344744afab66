import AllotPlacement
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOFoundationCompat

/// Where the operator commands find the API, and with which token.
struct ClientOptions: ParsableArguments {
    @Option(help: "The Allot API (env ALLOT_URL).")
    var url: String = env("ALLOT_URL") ?? "http://127.0.0.1:8778"

    @Option(help: "API token (env ALLOT_TOKEN or OS_TOKEN; default: the admin token beside --database, else 'admin' for noauth).")
    var token: String = env("ALLOT_TOKEN") ?? env("OS_TOKEN") ?? ""

    @Option(help: "The database `allot serve` uses, to find its token file (env ALLOT_DATABASE).")
    var database: String = env("ALLOT_DATABASE") ?? "./allot.sqlite"

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    /// The token to send: given, else the first-start admin token beside the database (while its file exists),
    /// else `admin` (noauth).
    func resolvedToken() -> String {
        if !token.isEmpty { return token }
        let path = TokenFile.firstStartPath(for: TokenFile.defaultPath(forDatabase: database))
        if let data = FileManager.default.contents(atPath: path) {
            let admin = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !admin.isEmpty { return admin }
        }
        return "admin"
    }
}

/// A failed API call, with the server's own explanation.
struct APIError: Error, CustomStringConvertible {
    var status: Int
    var message: String
    var description: String { "HTTP \(status): \(message)" }
}

/// A small JSON client for the operator commands.
struct APIClient {
    let options: ClientOptions

    /// Sends a request and returns the decoded JSON answer.
    /// - Throws: ``APIError`` with the API's error detail for a non-2xx status; a clear error when the API is down.
    func call(_ method: HTTPMethod, _ path: String, body: [String: Any]? = nil) async throws -> Any {
        let base = options.url.hasSuffix("/") ? String(options.url.dropLast()) : options.url
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "X-Auth-Token", value: options.resolvedToken())
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
        }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        } catch {
            throw ValidationError("cannot reach the Allot API at \(base): \(error)")
        }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let data = Data(buffer: bytes)
        let object = data.isEmpty ? [String: Any]() : try JSONSerialization.jsonObject(with: data)
        guard (200..<300).contains(Int(response.status.code)) else {
            let detail = ((object as? [String: Any])?["errors"] as? [[String: Any]])?.first
            let text = (detail?["detail"] as? String)?.components(separatedBy: "\n\n ").last?
                .trimmingCharacters(in: .whitespaces) ?? String(decoding: data, as: UTF8.self)
            let code = detail?["code"] as? String
            throw APIError(status: Int(response.status.code), message: code.map { "\(text) (\($0))" } ?? text)
        }
        return object
    }

    /// Prints JSON as the API gave it (sorted keys, indented).
    static func printJSON(_ object: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// Prints rows as a left-aligned table with a header.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, cell in
            i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}

/// `VCPU 2, MEMORY_MB 2048` from a class → amount map.
func amounts(_ object: Any?) -> String {
    guard let map = object as? [String: Any], !map.isEmpty else { return "-" }
    return map.keys.sorted().map { "\($0) \(map[$0].map { "\($0)" } ?? "")" }.joined(separator: ", ")
}
