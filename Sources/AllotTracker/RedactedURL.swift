import Foundation

/// A URL as logs and error messages show it: scheme, host, port and path, without the userinfo, query or
/// fragment that may carry a password or a token.
public struct RedactedURL: CustomStringConvertible, Sendable, Equatable {
    /// The URL without its userinfo, query and fragment; `<unparsable URL>` when it is not a URL at all.
    public let description: String

    /// Redacts `text`.
    public init(_ text: String) {
        guard var components = URLComponents(string: text), components.scheme != nil else {
            description = "<unparsable URL>"
            return
        }
        components.user = nil
        components.password = nil
        components.query = nil
        components.fragment = nil
        description = components.string ?? "<unparsable URL>"
    }
}
