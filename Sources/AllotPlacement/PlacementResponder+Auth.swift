import AllotCore
import AllotKeystone
import Foundation
import Hummingbird
import HTTPTypes
import NIOCore

extension PlacementResponder {
    /// The answer to a request that could not be authenticated, as upstream's middleware gives it: outside the
    /// microversion layer, so without `OpenStack-API-Version` or `Vary`.
    ///
    /// - Keystone: keystonemiddleware's `401` body and `WWW-Authenticate: Keystone uri="…"`; `503` when Keystone
    ///   cannot be asked ("The Keystone service is temporarily unavailable.").
    /// - Allot's tokens and noauth2: WebOb's plain `401`, negotiated on `Accept`.
    func renderAuthFailure(_ failure: AuthFailure, accept: String?) -> Response {
        switch (failure, configuration.auth) {
        case (.unauthenticated, .keystone(let validator)):
            let body = JSONValue.object([
                "error": .object([
                    "code": .int(401), "title": .string("Unauthorized"),
                    "message": .string("The request you have made requires authentication."),
                ])
            ])
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[.wwwAuthenticate] = "Keystone uri=\"\(validator.configuration.wwwAuthenticateURI)\""
            return Response(status: .unauthorized, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: body.serialized())))
        case (.unauthenticated, _):
            return Self.webobError(.unauthorized, title: "Unauthorized",
                explanation: "This server could not verify that you are authorized to access the document you "
                    + "requested. Either you supplied the wrong credentials (e.g., bad password), or your browser "
                    + "does not understand how to supply the credentials required.",
                detail: "", accept: accept)
        case (.unavailable, _):
            return Self.webobError(.serviceUnavailable, title: "Service Unavailable",
                explanation: "The server is currently unavailable. Please try again at a later time.",
                detail: "The Keystone service is temporarily unavailable.", accept: accept)
        }
    }

    /// A WebOb `HTTPException` rendered by WebOb's own templates (no Placement JSON formatter).
    static func webobError(
        _ status: HTTPResponse.Status, title: String, explanation: String, detail: String, accept: String?
    ) -> Response {
        let statusLine = "\(status.code) \(status.reasonPhrase)"
        let body = "\(explanation)<br /><br />\n\(detail)\n\n"
        var headers = HTTPFields()
        let text: String
        switch ErrorFormat.negotiate(accept) {
        case .json:
            headers[.contentType] = "application/json"
            text = JSONValue.object([
                "message": .string(body), "code": .string(statusLine), "title": .string(title),
            ]).serialized()
        case .html:
            headers[.contentType] = "text/html; charset=UTF-8"
            text = "<html>\n <head>\n  <title>\(statusLine)</title>\n </head>\n <body>\n  <h1>\(statusLine)</h1>\n  "
                + body + "\n </body>\n</html>"
        case .plain:
            headers[.contentType] = "text/plain; charset=UTF-8"
            let plain = body.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "<br />", with: "\n")
            text = "\(statusLine)\n\n\(plain)"
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
