import AllotCore
import AllotPlacement
import AllotTracker
import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1

/// Where the operator commands find the API, and with which token (`allot top` and the commands of
/// ``ClientOptions``).
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The Allot API (env ALLOT_URL).")
    var url: String = env("ALLOT_URL") ?? "http://127.0.0.1:8778"

    @Option(help: "API token (env ALLOT_TOKEN or OS_TOKEN; default: the admin token beside --database, else 'admin' for noauth).")
    var token: String = env("ALLOT_TOKEN") ?? env("OS_TOKEN") ?? ""

    @Option(help: "The database `allot serve` uses, to find its token file (env ALLOT_DATABASE).")
    var database: String = env("ALLOT_DATABASE") ?? "./allot.sqlite"

    @OptionGroup(title: "TLS")
    var tls: ClientTLSOptions

    /// The token to send: given, else the first-start admin token beside the database (while its file exists),
    /// else `admin` (noauth).
    func resolvedToken() -> String {
        Self.resolveToken(token, database: database)
    }

    /// `token` when given, else the first-start admin token beside `database` (while its file exists), else `admin`.
    static func resolveToken(_ token: String, database: String) -> String {
        if !token.isEmpty { return token }
        let path = TokenFile.firstStartPath(for: TokenFile.defaultPath(forDatabase: database))
        if let data = FileManager.default.contents(atPath: path) {
            let admin = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !admin.isEmpty { return admin }
        }
        return "admin"
    }
}

/// The options of the operator commands that print an answer: the connection, and `--json`.
struct ClientOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    var url: String { connection.url }
    var tls: ClientTLSOptions { connection.tls }

    /// See ``ConnectionOptions/resolvedToken()``.
    func resolvedToken() -> String { connection.resolvedToken() }
}

/// A small JSON client for the operator commands, over the one ``ServiceClient`` (TLS from ``ClientTLSOptions``).
struct APIClient {
    let options: ClientOptions

    /// Sends a request (with `body` as JSON) and returns the API's JSON answer (`{}` for an empty one).
    /// - Throws: ``ServiceClientError`` with the API's error detail and code for a non-2xx status; a
    ///   `ValidationError` naming the (redacted) URL when the API cannot be reached or its TLS fails, or when the
    ///   answer is not JSON.
    func call(_ method: HTTPMethod, _ path: String, body: (any Encodable)? = nil) async throws -> JSONValue {
        let client: ServiceClient
        do {
            client = try ServiceClient(
                url: options.url, token: options.resolvedToken(), tls: options.tls.clientTLS, timeout: .seconds(120),
                dedicated: true)
        } catch {
            throw ValidationError(error.description)
        }
        let bytes = try body.map { try JSONCoding.encode($0) }
        let answer: ServiceClient.Answer
        do {
            answer = try await client.exchange(method, path, body: bytes)
        } catch {
            try await client.shutdown()
            throw ValidationError("cannot reach the Allot API at \(client.redactedURL): \(error.detail)")
        }
        try await client.shutdown()
        guard (200..<300).contains(answer.status) else { throw client.failure(answer, client.label(method, path)) }
        if answer.bytes.isEmpty { return .object([:], order: []) }
        do {
            return try JSONValue.parse(answer.bytes)
        } catch {
            throw ValidationError("the answer to \(client.label(method, path)) is not JSON: \(error.message)")
        }
    }

    /// Reads an answer as the type a command prints (``APIAnswers``).
    /// - Throws: `ValidationError` naming the field that is missing or of the wrong type.
    static func read<T: Decodable>(_ type: T.Type, _ answer: JSONValue) throws -> T {
        do {
            return try JSONCoding.decode(type, from: answer)
        } catch {
            throw ValidationError("unexpected answer from the Allot API: \(ServiceClient.describe(error))")
        }
    }

    /// Prints JSON as the API gave it, keys sorted, indented by two spaces.
    static func printJSON(_ answer: JSONValue) {
        print(String(decoding: answer.sortingKeys().serializedBytes(.indented), as: UTF8.self))
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

/// `VCPU 2, MEMORY_MB 2048` from a class → amount map; `-` when there is none.
func amounts(_ map: [String: Int]?) -> String {
    guard let map, !map.isEmpty else { return "-" }
    return map.keys.sorted().map { "\($0) \(map[$0] ?? 0)" }.joined(separator: ", ")
}
