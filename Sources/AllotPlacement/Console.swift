import AllotCore
import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The operator console (`/ui`, `docs/console.md`): static files, embedded in the binary
/// (``ConsoleAssets``, written by `scripts/embed-console.py`) or read from `--console-dir` while developing it.
/// The files are public, as the version document is: they hold no data. Everything the console shows it asks the
/// API for, with the token the user gave it, so a token sees in the console exactly what its policy lets it read.
struct Console: Sendable {
    /// A directory to read the files from instead of the embedded ones (`--console-dir`); `nil`: embedded.
    let directory: String?
    /// Answers of `GET /ui/session.json`: how the console should authenticate and what this server offers.
    let session: [UInt8]

    init(directory: String?, auth: AuthMode, placement: Bool) {
        self.directory = directory
        let mode = switch auth {
        case .noauth: "noauth"
        case .tokens: "token"
        case .keystone: "keystone"
        }
        session = JSONValue.sortedObject([
            "auth": .string(mode), "placement": .bool(placement),
            "max_version": .string(Microversion.maximum.description),
        ]).serializedBytes()
    }

    /// The policy every console answer carries: scripts, styles and requests from this origin only, no inline
    /// script or style, no framing, no plugins, no forms posting elsewhere.
    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func isConsolePath(_ path: String) -> Bool { path == "/ui" || path.hasPrefix("/ui/") }

    /// The answer for a path under `/ui`.
    func respond(method: HTTPRequest.Method, path: String) async -> Response {
        guard method == .get || method == .head else {
            var response = Self.plain(.methodNotAllowed, "The console's files can only be read (GET).")
            response.headers[.allow] = "GET, HEAD"
            return response
        }
        var name = String(path.dropFirst("/ui".count))
        if name.hasPrefix("/") { name.removeFirst() }
        if name.isEmpty { name = "index.html" }
        if name == "session.json" {
            return Self.answer(.ok, type: "application/json", bytes: method == .head ? [] : session,
                               length: session.count)
        }
        // One flat directory: a name with a slash, a leading dot or a NUL is never a file of the console.
        guard !name.contains("/"), !name.hasPrefix("."), !name.contains("\0"), !name.contains("\\") else {
            return Self.plain(.notFound, "No such file in the console.")
        }
        guard let bytes = await file(name) else { return Self.plain(.notFound, "No such file in the console.") }
        return Self.answer(.ok, type: Self.contentType(name), bytes: method == .head ? [] : bytes, length: bytes.count)
    }

    /// The file's bytes: from the embedded files, or from `directory` (read off the event loop).
    func file(_ name: String) async -> [UInt8]? {
        guard let directory else { return ConsoleAssets.files[name].map { Array($0.utf8) } }
        let path = (directory as NSString).appendingPathComponent(name)
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: FileManager.default.contents(atPath: path).map { Array($0) })
            }
        }
    }

    static func contentType(_ name: String) -> String {
        switch name.split(separator: ".").last {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "json": "application/json"
        case "png": "image/png"
        default: "application/octet-stream"
        }
    }

    /// Headers every console answer carries (the files, `session.json` and refusals alike).
    static func addSecurityHeaders(to headers: inout HTTPFields) {
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[.xFrameOptions] = "DENY"
        headers[.referrerPolicy] = "no-referrer"
        headers[.cacheControl] = "no-cache"
    }

    static func answer(_ status: HTTPResponse.Status, type: String, bytes: [UInt8], length: Int) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.contentLength] = String(length)
        addSecurityHeaders(to: &headers)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        let bytes = Array((text + "\n").utf8)
        return answer(status, type: "text/plain; charset=utf-8", bytes: bytes, length: bytes.count)
    }

    /// Whether a `GET /` comes from a browser: it prefers HTML to JSON and names no microversion (API clients get
    /// the version document as before).
    static func wantsConsole(_ headers: HTTPFields) -> Bool {
        guard headers[.openStackAPIVersion] == nil, let accept = headers[.accept], !accept.isEmpty else { return false }
        return ErrorFormat.quality(of: "text/html", in: accept) > ErrorFormat.quality(of: "application/json", in: accept)
    }
}

extension HTTPField.Name {
    static let xFrameOptions = HTTPField.Name("x-frame-options")!
    static let referrerPolicy = HTTPField.Name("referrer-policy")!
}
