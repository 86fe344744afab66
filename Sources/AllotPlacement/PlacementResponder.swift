public import AllotStore
import AllotCore
import AllotTracker
import Foundation
public import Hummingbird
import HTTPTypes
import Logging
import Metrics
import NIOCore
import NIOFoundationCompat

/// Allot's HTTP shell as one Hummingbird responder: routing, authentication, microversions, policy, errors, CORS,
/// request ids, metrics, the version document and the operator endpoints (`/healthcheck`, `/metrics`,
/// `/openapi.json`). The APIs' own handlers are on the routes it holds: ``PlacementRoutes`` and ``ComputeRoutes``.
public struct PlacementResponder: HTTPResponder {
    public typealias Context = BasicRequestContext

    let configuration: PlacementConfiguration
    let metricsText: (@Sendable () async -> String)?
    /// The Placement API; `nil` for `allot agent`, which serves only the compute API.
    let placement: PlacementRoutes?
    /// The compute API and the ledger protocol; `nil` when this server has no compute ledger.
    let compute: ComputeRoutes?
    /// The operator console at `/ui`; `nil` when turned off.
    let console: Console?

    /// - Parameters:
    ///   - store: the Placement API's store; `nil` serves only the compute API (`allot agent`).
    ///   - metricsText: renders `/metrics` (Prometheus text); `nil` answers 404 there.
    ///   - compute: the compute ledger and the embedded agent; `nil` answers 404 on the compute API.
    public init(
        store: SQLPlacementStore?, configuration: PlacementConfiguration,
        metricsText: (@Sendable () async -> String)? = nil, compute: ComputeService? = nil
    ) {
        self.placement = store.map { PlacementRoutes(store: $0, configuration: configuration) }
        self.compute = compute.map { ComputeRoutes(compute: $0, auth: configuration.auth) }
        self.configuration = configuration
        self.metricsText = metricsText
        self.console = configuration.console
            ? Console(directory: configuration.consoleDirectory, auth: configuration.auth, placement: store != nil)
            : nil
    }

    static let agentOnly =
        "This is an Allot agent: it serves the compute API (/compute/v1) only; Placement is a separate service."

    public func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        let requestID = "req-" + randomUUIDString()
        var logger = context.logger
        logger[metadataKey: LogKey.requestID] = .string(requestID)
        var request = request
        var routeLabel = "unmatched"
        var version: Microversion?
        var response: Response
        // Answers from upstream's middleware outside its microversion layer (authentication) carry no version;
        // the microversion middleware adds `Vary` only to answers of its handlers.
        var versioned = true, escaped = false
        do {
            if let preflight = corsPreflight(request) {
                response = preflight
            } else if let console, Console.isConsolePath(request.uri.path) {
                // Outside the API: public files, no microversion; the data the console shows comes from the API.
                versioned = false
                routeLabel = "/ui"
                response = await console.respond(method: request.method, path: request.uri.path)
            } else {
                // Upstream's order: authentication, then the microversion, then the route.
                let identity = try await authenticate(request)
                version = try parseVersion(request.headers)
                let reply = try await dispatch(
                    &request, identity: identity, version: version ?? .minimum, routeLabel: &routeLabel)
                response = render(reply)
            }
        } catch let failure as AuthFailure {
            versioned = false
            response = renderAuthFailure(failure, accept: request.headers[.accept])
        } catch let error as PlacementError {
            escaped = error.escapesHandler
            response = renderError(error, requestID: requestID, version: version, accept: request.headers[.accept])
        } catch let error as ComputeError {
            response = renderError(error.placementError, requestID: requestID, version: .maximum, accept: nil)
        } catch let error as PlacementClientError {
            // An agent's Placement or ledger server did not answer, or answered in a way that is not a refusal.
            // The client learns that the service behind failed and the request id; its address and error text
            // go to the log only.
            logger.error("Upstream service failure", metadata: [LogKey.error: .string(error.description)])
            response = renderError(
                PlacementError(.serviceUnavailable, error.status == 0
                    ? "The Placement or ledger service did not answer; a claim may or may not have been committed: "
                        + "repeat it (claims are idempotent by uuid) or read it back. The server's log has the "
                        + "detail under request \(requestID)."
                    : "The Placement or ledger service failed; the server's log has the detail under request "
                        + "\(requestID)."),
                requestID: requestID, version: version, accept: nil)
        } catch is NIOTooManyBytesError {
            response = renderError(
                PlacementError(.payloadTooLarge, "Request body larger than \(configuration.maxBodyBytes) bytes."),
                requestID: requestID, version: version, accept: nil)
        } catch let error as StoreError {
            // The details (which database, which error) go to the log; the caller learns only what to do.
            logger.error("Database failure", metadata: [LogKey.error: .string(error.description)])
            Counter(label: "allot_db_errors_total").increment()
            let (detail, retryAfter) = Self.storeFailureAnswer(error)
            response = renderError(
                PlacementError(.serviceUnavailable, detail), requestID: requestID, version: version, accept: nil)
            if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        } catch {
            logger.error("Unexpected failure", metadata: [LogKey.error: .string(String(describing: type(of: error)))])
            Counter(label: "allot_db_errors_total").increment()
            response = renderError(
                PlacementError(.serviceUnavailable, "The request could not be completed; it changed nothing."),
                requestID: requestID, version: version, accept: nil)
        }
        response.headers[.openStackRequestID] = requestID
        if let version, versioned {
            response.headers[.openStackAPIVersion] = "placement \(version)"
            if !escaped { response.headers[.vary] = "openstack-api-version" }
        }
        addCORSHeaders(request, to: &response)
        let elapsed = ContinuousClock.now - started
        let dimensions = [("route", routeLabel), ("method", request.method.rawValue),
                          ("status", String(response.status.code))]
        Counter(label: "allot_http_requests_total", dimensions: dimensions).increment()
        Timer(label: "allot_http_request_duration_seconds", dimensions: [("route", routeLabel)])
            .recordNanoseconds(elapsed.nanoseconds)
        logger.info(
            "Request handled",
            metadata: [
                LogKey.httpMethod: .string(request.method.rawValue), LogKey.httpRoute: .string(routeLabel),
                LogKey.httpStatus: .stringConvertible(response.status.code),
            ])
        return response
    }

    /// The `503`'s detail for a database failure, and its `Retry-After` in seconds when waiting may help.
    static func storeFailureAnswer(_ error: StoreError) -> (detail: String, retryAfter: Int?) {
        switch error {
        case .unavailable:
            return ("The database is unavailable; retry later. A write under way when it failed may or may not have "
                + "been committed: read it back (or repeat it when it is idempotent).", 2)
        case .storageFull:
            return ("The database's storage is full: nothing was written. Reads still work; retry once space is "
                + "freed.", 30)
        case .connection, .migration, .corrupt, .unsupportedBind:
            return ("The database could not complete the request.", nil)
        }
    }

    /// Finds the route, checks who is calling and the version, reads the body and runs the handler.
    private func dispatch(
        _ request: inout Request, identity: Identity?, version: Microversion, routeLabel: inout String
    ) async throws -> Reply {
        let path = request.uri.path
        if let length = request.headers[.contentLength], (request.headers[.contentType] ?? "").isEmpty {
            // Upstream's handler checks this before it routes.
            guard let bytes = Int(length) else {
                throw PlacementError.badRequest("content-length header must be an integer").escaping
            }
            if bytes > 0 {
                throw PlacementError.badRequest("content-type header required when content-length > 0").escaping
            }
        }
        if path == "/healthcheck" {
            routeLabel = "/healthcheck"
            return .json(.object(["status": .string("ok")]))
        }
        if path == "/openapi.json" {
            // Public, as the version document: it describes the API, never its data (docs/api.md).
            routeLabel = "/openapi.json"
            return Reply(status: .ok, body: nil, headers: [(.contentType, "application/json")],
                         raw: OpenAPIDocument.bytes)
        }
        if path == "/metrics", let metricsText {
            let text = await metricsText()
            let reply = Reply(status: .ok, body: nil, headers: [(.contentType, "text/plain; version=0.0.4")], raw: Array(text.utf8))
            routeLabel = "/metrics"
            return reply
        }
        let components = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let trimmed = components.count == 1 && components.first == "" ? [] : Array(components)
        guard let (route, parameters) = Route.all.lazy.compactMap({ route in
            route.match(trimmed).map { (route, $0) }
        }).first else {
            throw PlacementError.lookupFailed("")  // webob's bare HTTPNotFound: no detail
        }
        routeLabel = "/" + route.segments.map { if case .literal(let text) = $0 { text } else { "{id}" } }
            .joined(separator: "/")
        guard let endpoint = route.methods.first(where: { $0.0 == request.method })?.1 else {
            let allowed = route.methods.map(\.0.rawValue).joined(separator: ", ")
            throw PlacementError(.methodNotAllowed,
                "The method \(request.method.rawValue) is not allowed for this resource. \n\n "
                    + "The method specified is not allowed for this resource.", allow: allowed)
        }
        // An agent answers only the compute API: neither Placement nor the ledger protocol (the central ledger's,
        // which `allot serve` offers next to Placement).
        if placement == nil, endpoint != .root, !endpoint.isCompute {
            throw PlacementError.notFound(Self.agentOnly)
        }
        // As upstream: authentication (keystonemiddleware or noauth2) first, then the handler's own checks in
        // the order its decorators run (version, Accept, Content-Type), then policy, and only then the body.
        // (check_accept applies to GETs, require_content to writes: their relative order never matters.)
        try Self.checkVersionAndContentType(endpoint, version: version, headers: request.headers)
        if request.method == .get, endpoint != .root, endpoint != .showTrait, endpoint != .computeEvents,
            let accept = request.headers[.accept],
            ErrorFormat.quality(of: "application/json", in: accept) == 0
        {
            throw PlacementError(.notAcceptable, "Only application/json is provided")
        }
        let query = Self.queryPairs(request.uri.query)
        if let identity {
            try authorize(endpoint, identity: identity, query: query)
        } else if endpoint != .root {
            // Fail closed: only the version document is public.
            throw AuthFailure.unauthenticated
        }
        var body = Data()
        if request.method == .put || request.method == .post {
            let buffer = try await request.collectBody(upTo: configuration.maxBodyBytes)
            body = Data(buffer: buffer)
            if !body.isEmpty, request.headers[.contentType] == nil {
                throw PlacementError.badRequest("content-type header required when content-length > 0").escaping
            }
        }
        let host = request.head.authority ?? "127.0.0.1"
        let call = Call(
            version: version, parameters: parameters, query: query,
            headers: request.headers, body: body, identity: identity, method: request.method,
            baseURL: "http://\(host)")
        return try await handle(endpoint, call)
    }

    /// The caller, for every path but the public ones (the version document, `/healthcheck`, `/metrics`).
    /// - Throws: ``AuthFailure`` when the request carries no acceptable token or the identity service is down.
    private func authenticate(_ request: Request) async throws(AuthFailure) -> Identity? {
        switch request.uri.path {
        case "/", "", "/healthcheck", "/openapi.json": return nil
        case "/metrics" where metricsText != nil: return nil
        default: return try await configuration.auth.identify(request.headers)
        }
    }

    private func parseVersion(_ headers: HTTPFields) throws -> Microversion {
        guard let header = headers[.openStackAPIVersion] else { return .minimum }
        switch Microversion.fromHeader(header) {
        case .absent:
            return .minimum
        case .malformed(let text):
            throw PlacementError.badRequest(
                "Invalid microversion: invalid version string: \(text); \(Self.pythonVersionError(text))")
        case .version(let version):
            guard version >= .minimum, version <= .maximum else {
                throw PlacementError(.notAcceptable, "Invalid microversion: Unacceptable version header: \(version)")
            }
            return version
        }
    }

    /// Why Python's `Version(*(int(v) for v in text.split('.', 1)))` refuses `text` (microversion_parse's wording).
    static func pythonVersionError(_ text: String) -> String {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        for part in parts {
            var digits = Substring(part.trimmingCharacters(in: .whitespaces))
            if digits.first == "+" || digits.first == "-" { digits = digits.dropFirst() }
            let valid = !digits.isEmpty && digits.first != "_" && digits.last != "_" && !digits.contains("__")
                && digits.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "_") }
            if !valid { return "invalid literal for int() with base 10: \(JSONValue.pythonQuoted(part))" }
        }
        return "Version.__new__() missing 1 required positional argument: 'minor'"
    }

    /// Splits a query string into decoded pairs, keeping order and repeats.
    static func queryPairs(_ query: String?) -> [(String, String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncodingSafe }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    private func render(_ reply: Reply) -> Response {
        var headers = HTTPFields()
        for (name, value) in reply.headers { headers[name] = value }
        if let stream = reply.stream {
            return Response(status: reply.status, headers: headers, body: stream)
        }
        if let raw = reply.raw {
            return Response(status: reply.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: raw)))
        }
        guard let body = reply.body else {
            return Response(status: reply.status, headers: headers)
        }
        headers[.contentType] = "application/json"
        return Response(status: reply.status, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(bytes: body.serializedBytes())))
    }
}

extension HTTPField.Name {
    static let openStackAPIVersion = HTTPField.Name("openstack-api-version")!
    static let openStackRequestID = HTTPField.Name("x-openstack-request-id")!
    static let authToken = HTTPField.Name("x-auth-token")!
    static let roles = HTTPField.Name("x-roles")!
    static let systemScope = HTTPField.Name("openstack-system-scope")!
}

/// Metadata keys used in Allot's logs.
enum LogKey {
    static let requestID = "http.request.id"
    static let httpMethod = "http.method"
    static let httpRoute = "http.route"
    static let httpStatus = "http.status"
    static let error = "allot.error"
}
