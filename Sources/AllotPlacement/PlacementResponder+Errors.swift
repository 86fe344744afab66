import Foundation
import AllotCore
import Hummingbird
import HTTPTypes
import NIOCore

extension PlacementResponder {
    /// Renders an error as upstream does: `{"errors": [{"status", "title", "detail", "code", "request_id"}]}`,
    /// with `code` from microversion 1.23 on.
    func renderError(_ error: PlacementError, requestID: String, version: Microversion?, accept: String?) -> Response {
        let status = error.kind.status
        var fields: KeyValuePairs<String, JSONValue> = [:]
        let message = error.detail.replacingOccurrences(of: "\n", with: " ")
        var error = error
        if error.kind == .notAcceptable, error.explanation == nil {
            // webob's 406 names the Accept header (application/json when the client accepts anything).
            let shown = accept.flatMap { $0.trimmingSpaces().isEmpty || $0.trimmingSpaces() == "*/*" ? nil : $0 }
            error.explanation = "The resource could not be generated that was acceptable to your browser (content of "
                + "type \(shown ?? "application/json"). "
        }
        let detail = error.kind == .methodNotAllowed
            ? error.detail
            : error.explanation.map { "\($0)\n\n \(message)" } ?? "\(error.kind.explanation)\n\n \(message)  "
        var headers: HTTPFields = [:]
        if let allow = error.allow { headers[.allow] = allow }
        // webob's HTTPNotAcceptable has its own body template, which names the Accept header.
        let notAcceptableBody = { (escape: (String) -> String) in
            "The resource could not be generated that was acceptable to your browser\n(content of type "
                + escape(accept ?? "") + ". <br /><br />\n" + escape(error.detail)
        }
        switch ErrorFormat.negotiate(accept) {
        case .html where error.kind == .notAcceptable:
            headers[.contentType] = "text/html; charset=UTF-8"
            let title = "\(status.code) \(status.reasonPhrase)"
            let html = "<html>\n <head>\n  <title>\(title)</title>\n </head>\n <body>\n  <h1>\(title)</h1>\n  "
                + notAcceptableBody(ErrorFormat.escapeHTML) + "\n </body>\n</html>"
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
        case .plain where error.kind == .notAcceptable:
            headers[.contentType] = "text/plain; charset=UTF-8"
            // webob's strip_tags: newlines become spaces, <br /> a newline, other tags go.
            let stripped = notAcceptableBody { $0 }.replacingOccurrences(of: "\n", with: " ")
                .replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "<br />", with: "\n")
            let text = "\(status.code) \(status.reasonPhrase)\n\n\(stripped)"
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        case .html:
            headers[.contentType] = "text/html; charset=UTF-8"
            let title = "\(status.code) \(status.reasonPhrase)"
            let html = "<html>\n <head>\n  <title>\(title)</title>\n </head>\n <body>\n  <h1>\(title)</h1>\n  "
                + ErrorFormat.escapeHTML(detail) + "\n </body>\n</html>"
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
        case .plain:
            headers[.contentType] = "text/plain; charset=UTF-8"
            let text = "\(status.code) \(status.reasonPhrase)\n\n\(detail)"
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        case .json:
            break
        }
        if error.kind == .unauthorized {
            // Upstream's noauth2 middleware answers with webob's own JSON error, outside Placement's formatter.
            headers[.contentType] = "application/json"
            let body = JSONValue.object([
                "message": .string("This server could not verify that you are authorized to access the document you "
                    + "requested. Either you supplied the wrong credentials (e.g., bad password), or your browser "
                    + "does not understand how to supply the credentials required.<br /><br />\n\n\n"),
                "code": "401 Unauthorized", "title": "Unauthorized",
            ], order: ["message", "code", "title"])
            headers[.wwwAuthenticate] = "Keystone uri='http://localhost'"
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.serialized())))
        }
        if let version, version.isAtLeast(1, 23) {
            fields = [
                "status": .int(status.code), "title": .string(status.reasonPhrase), "detail": .string(detail),
                "code": .string(error.code.rawValue), "request_id": .string(requestID),
            ]
        } else {
            fields = [
                "status": .int(status.code), "title": .string(status.reasonPhrase), "detail": .string(detail),
                "request_id": .string(requestID),
            ]
        }
        var errorObject = JSONValue.object(fields)
        if error.kind == .notAcceptable, version == nil, case .object(var values, var order) = errorObject {
            values["max_version"] = .string(Microversion.maximum.description)
            values["min_version"] = .string(Microversion.minimum.description)
            order += ["max_version", "min_version"]
            errorObject = .object(values, order: order)
        }
        let body = JSONValue.object(["errors": .array([errorObject])])
        headers[.contentType] = "application/json"
        if error.kind == .unauthorized { headers[.wwwAuthenticate] = "Keystone uri='http://localhost'" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.serialized())))
    }
}

extension PlacementError.Kind {
    var status: HTTPResponse.Status {
        switch self {
        case .badRequest: return .badRequest
        case .notFound: return .notFound
        case .conflict: return .conflict
        case .methodNotAllowed: return .methodNotAllowed
        case .notAcceptable: return .notAcceptable
        case .unsupportedMediaType: return .unsupportedMediaType
        case .payloadTooLarge: return .contentTooLarge
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .notImplemented: return .notImplemented
        case .serviceUnavailable: return .serviceUnavailable
        }
    }

    /// webob's standard explanation, which upstream puts before every detail.
    var explanation: String {
        switch self {
        case .badRequest:
            return "The server could not comply with the request since it is either malformed or otherwise incorrect."
        case .notFound: return "The resource could not be found."
        case .conflict: return "There was a conflict when trying to complete your request."
        case .methodNotAllowed: return "The server could not comply with the request since the method is not allowed."
        case .notAcceptable: return "The resource could not be generated that was acceptable to your browser."
        case .unsupportedMediaType: return "The request media type is not supported by this server."
        case .payloadTooLarge: return "The request is larger than the server is willing or able to process."
        case .unauthorized: return "This server could not verify that you are authorized to access the document you requested."
        case .forbidden: return "Access was denied to this resource."
        case .notImplemented: return "The server has not implemented this feature."
        case .serviceUnavailable: return "The server is currently unavailable. Please try again at a later time."
        }
    }
}

extension PlacementResponder {
    /// Answers a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) when CORS is on.
    func corsPreflight(_ request: Request) -> Response? {
        guard request.method == .options, !configuration.corsAllowedOrigins.isEmpty,
            let origin = request.headers[.origin], request.headers[.accessControlRequestMethod] != nil
        else { return nil }
        guard configuration.corsAllowedOrigins.contains(origin) || configuration.corsAllowedOrigins.contains("*") else {
            return Response(status: .ok)
        }
        var headers = HTTPFields()
        headers[.accessControlAllowOrigin] = origin
        headers[.accessControlAllowMethods] = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
        if let requested = request.headers[.accessControlRequestHeaders] {
            let allowed = Set(configuration.corsAllowHeaders.map { $0.lowercased() })
            let granted = requested.split(separator: ",").map { $0.trimmingCharacters().lowercased() }
                .filter { allowed.contains($0) }
            if !granted.isEmpty { headers[.accessControlAllowHeaders] = granted.joined(separator: ",") }
        }
        headers[.vary] = "Origin"
        return Response(status: .ok, headers: headers)
    }

    /// Adds `Access-Control-Allow-Origin` to ordinary responses for allowed origins.
    func addCORSHeaders(_ request: Request, to response: inout Response) {
        guard !configuration.corsAllowedOrigins.isEmpty, let origin = request.headers[.origin],
            configuration.corsAllowedOrigins.contains(origin) || configuration.corsAllowedOrigins.contains("*"),
            response.headers[.accessControlAllowOrigin] == nil
        else { return }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlExposeHeaders] = "openstack-api-version"
    }
}
