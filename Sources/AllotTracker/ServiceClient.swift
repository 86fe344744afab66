import AllotCore
public import AsyncHTTPClient
import Foundation
public import NIOCore
public import NIOHTTP1
import NIOSSL

/// A failed call of a ``ServiceClient``: no answer, a TLS failure, an answer outside 2xx (with Placement's error
/// code), or an answer that is not what the protocol requires. Never carries a token, a password or a query.
public struct ServiceClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// No answer came: connection refused, reset, or timed out.
        case unreachable
        /// The TLS handshake failed: an untrusted or expired certificate, a refused client certificate, …
        case tls
        /// The service answered with a status outside 2xx.
        case status
        /// The answer is not what the protocol requires (not JSON, or a required field is missing).
        case malformed
    }

    public var kind: Kind
    /// The HTTP status, or 0 when no answer came.
    public var status: Int
    /// Placement's error code (`placement.concurrent_update`, …) when it gave one.
    public var code: String?
    public var detail: String
    /// The method and the redacted URL of the call.
    public var request: String

    /// An error of `kind`.
    public init(kind: Kind, status: Int, code: String? = nil, detail: String, request: String) {
        self.kind = kind
        self.status = status
        self.code = code
        self.detail = detail
        self.request = request
    }

    /// An answer with `status` (or, with status 0, no answer at all).
    public init(status: Int, code: String?, detail: String, request: String) {
        self.init(kind: status == 0 ? .unreachable : .status, status: status, code: code, detail: detail, request: request)
    }

    public var description: String {
        switch kind {
        case .unreachable: "\(request): \(detail)"
        case .tls: "\(request): TLS failed: \(detail)"
        case .status: "\(request): HTTP \(status) \(code ?? ""): \(detail)"
        case .malformed: "\(request): HTTP \(status): \(detail)"
        }
    }

    /// The service saw the request and said no (so nothing of it was applied).
    public var isRefusal: Bool { kind == .status && (400..<500).contains(status) }
    /// A generation conflict: read again and retry.
    public var isGenerationConflict: Bool { status == 409 && code == "placement.concurrent_update" }
    /// A failure that may pass by itself (the service is down or restarting): worth retrying later.
    public var isTransient: Bool { kind == .unreachable || (kind == .status && status >= 500) }
}

/// The one HTTP client of the agent and the CLI: JSON requests to one service with a token, TLS configured in one
/// place (``ClientTLS``), typed answers, and ``ServiceClientError`` for every failure.
public final class ServiceClient: Sendable {
    /// The service's URL, without a trailing slash (may hold userinfo: never log it, log ``redactedURL``).
    public let baseURL: String
    /// ``baseURL`` fit for logs.
    public let redactedURL: RedactedURL
    let token: String?
    let http: HTTPClient
    let ownsHTTP: Bool
    let timeout: TimeAmount

    /// The client of plain HTTP calls: connection attempts give up after 5 s (the pool retries a refused
    /// connection until the request's own deadline, so a claim against a server that is down would hang for its
    /// whole timeout). A process-wide constant, never shut down.
    public static let plainHTTP: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Makes a client of the service at `url`. An `https://` URL, a configured `tls` or `dedicated` get an HTTP
    /// client of their own (call ``shutdown()`` when done) whose failed connections fail the call at once: a
    /// refused certificate or a server that is down is reported, not retried until the deadline (callers retry
    /// with ``Retry`` where it makes sense). Plain HTTP otherwise shares ``plainHTTP``.
    /// - Parameters:
    ///   - token: sent as `X-Auth-Token`.
    ///   - timeout: the deadline of each call, default 30 s.
    ///   - dedicated: an HTTP client of its own even for plain HTTP, default `false`.
    ///   - connections: the most HTTP/1 connections to the service at once (implies `dedicated`); default
    ///     AsyncHTTPClient's (8), which would queue a burst of more concurrent calls behind them.
    /// - Throws: ``TLSFileError`` when a file of `tls` cannot be used.
    public init(
        url: String, token: String?, tls: ClientTLS = ClientTLS(), timeout: TimeAmount = .seconds(30),
        dedicated: Bool = false, connections: Int? = nil
    ) throws(TLSFileError) {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        baseURL = base
        redactedURL = RedactedURL(base)
        self.token = token
        self.timeout = timeout
        if !dedicated && connections == nil && tls.isDefault && !base.lowercased().hasPrefix("https:") {
            http = Self.plainHTTP
            ownsHTTP = false
        } else {
            var configuration = HTTPClient.Configuration()
            configuration.tlsConfiguration = try tls.configuration()
            configuration.timeout = .init(connect: .seconds(5))
            configuration.connectionPool.retryConnectionEstablishment = false
            if let connections { configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections }
            http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            ownsHTTP = true
        }
    }

    /// Closes the client's connections (nothing for plain HTTP, whose client is shared).
    public func shutdown() async throws {
        if ownsHTTP { try await http.shutdown() }
    }

    /// What a call got back.
    public struct Answer: Sendable {
        public var status: Int
        public var bytes: [UInt8]
    }

    /// The method and redacted URL of a call, for messages.
    public func label(_ method: HTTPMethod, _ path: String) -> String {
        "\(method.rawValue) \(RedactedURL(baseURL + path))"
    }

    /// Sends one request and returns whatever came back.
    /// - Throws: ``ServiceClientError`` (`.unreachable` or `.tls`) only when no answer came.
    public func exchange(
        _ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []
    ) async throws(ServiceClientError) -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "accept", value: "application/json")
        if let token { request.headers.add(name: "x-auth-token", value: token) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await http.execute(request, timeout: timeout)
            var bytes = try await response.body.collect(upTo: 64 << 20)
            return Answer(status: Int(response.status.code), bytes: bytes.readBytes(length: bytes.readableBytes) ?? [])
        } catch {
            throw Self.noAnswer(error, label(method, path))
        }
    }

    /// Sends a GET whose answer is read as a stream (server-sent events), with the token and TLS of the others.
    /// - Returns: the 2xx response, its body unread.
    /// - Throws: ``ServiceClientError``: no answer, or a status outside 2xx.
    public func stream(_ path: String, accept: String, timeout: TimeAmount) async throws(ServiceClientError)
        -> HTTPClientResponse
    {
        var request = HTTPClientRequest(url: baseURL + path)
        request.headers.add(name: "accept", value: accept)
        if let token { request.headers.add(name: "x-auth-token", value: token) }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            throw Self.noAnswer(error, label(.GET, path))
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            var bytes = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            throw failure(
                Answer(status: Int(response.status.code), bytes: bytes.readBytes(length: bytes.readableBytes) ?? []),
                label(.GET, path))
        }
        return response
    }

    /// The error of a call that got no answer: a TLS failure or an unreachable service.
    static func noAnswer(_ error: any Error, _ request: String) -> ServiceClientError {
        let tls = error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
        return ServiceClientError(kind: tls ? .tls : .unreachable, status: 0, detail: "\(error)", request: request)
    }

    /// Sends one JSON request and decodes the answer as `Response`.
    /// - Parameter allow: statuses besides 2xx that mean "none" (e.g. 404): the call then returns `nil`.
    /// - Throws: ``ServiceClientError``: no answer, a status outside 2xx and `allow`, or an answer that does not
    ///   decode (a required field missing is an error, never a default).
    public func send<Response: Decodable>(
        _ method: HTTPMethod, _ path: String, body: (any Encodable)? = nil, headers: [(String, String)] = [],
        allow: Set<Int> = [], as type: Response.Type
    ) async throws(ServiceClientError) -> Response? {
        let answer = try await exchange(method, path, body: try encode(body, method, path), headers: headers)
        if allow.contains(answer.status) { return nil }
        guard (200..<300).contains(answer.status) else { throw failure(answer, label(method, path)) }
        return try Self.decode(Response.self, from: answer.bytes, status: answer.status, request: label(method, path))
    }

    /// Sends one JSON request whose answer's body does not matter.
    /// - Returns: the status (2xx, or one of `allow`).
    /// - Throws: ``ServiceClientError``: no answer, or a status outside 2xx and `allow`.
    @discardableResult
    public func send(
        _ method: HTTPMethod, _ path: String, body: (any Encodable)? = nil, headers: [(String, String)] = [],
        allow: Set<Int> = []
    ) async throws(ServiceClientError) -> Int {
        let answer = try await exchange(method, path, body: try encode(body, method, path), headers: headers)
        guard (200..<300).contains(answer.status) || allow.contains(answer.status) else {
            throw failure(answer, label(method, path))
        }
        return answer.status
    }

    private func encode(_ body: (any Encodable)?, _ method: HTTPMethod, _ path: String) throws(ServiceClientError)
        -> [UInt8]?
    {
        guard let body else { return nil }
        do {
            return try JSONCoding.encode(body)
        } catch {
            throw ServiceClientError(kind: .malformed, status: 0, detail: "cannot encode the request: \(error)",
                                     request: label(method, path))
        }
    }

    /// Decodes an answer's JSON.
    /// - Throws: ``ServiceClientError`` `.malformed`, naming the missing or wrong field.
    public static func decode<T: Decodable>(
        _ type: T.Type, from bytes: [UInt8], status: Int, request: String
    ) throws(ServiceClientError) -> T {
        do {
            return try JSONCoding.decode(T.self, from: bytes)
        } catch {
            throw ServiceClientError(kind: .malformed, status: status, detail: describe(error), request: request)
        }
    }

    /// A decoding error in a line: the field and what is wrong with it.
    package static func describe(_ error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?:
            return "the answer lacks the required field '\(key.stringValue)' at '\(path(context))'"
        case .valueNotFound(_, let context)?, .typeMismatch(_, let context)?:
            return "the answer's field '\(path(context))' is missing or of the wrong type"
        case .dataCorrupted(let context)?:
            return "the answer is not valid JSON (\(context.debugDescription))"
        default:
            return "the answer cannot be read: \(error)"
        }
    }

    /// The error an answer outside 2xx stands for, with Placement's code and the specific part of its detail.
    public func failure(_ answer: Answer, _ request: String) -> ServiceClientError {
        struct Document: Decodable {
            struct Entry: Decodable {
                var detail: String?
                var code: String?
            }
            var errors: [Entry]
        }
        let first = (try? JSONCoding.decode(Document.self, from: answer.bytes))?.errors.first
        // Placement's details open with a generic paragraph for the status ("There was a conflict when trying
        // to complete your request."): keep what follows it.
        var detail = first?.detail ?? String(decoding: answer.bytes.prefix(300), as: UTF8.self)
        if let range = detail.range(of: "\n\n") { detail = String(detail[range.upperBound...]) }
        return ServiceClientError(
            status: answer.status, code: first?.code,
            detail: detail.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: " "),
            request: request)
    }
}
