/// A refusal that Placement reports to its client: an HTTP status, a stable error code and a message.
///
/// The message texts follow upstream Placement's, because clients and upstream's tests match them.
public struct PlacementError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kind of refusal; each maps to one HTTP status.
    public enum Kind: Equatable, Sendable {
        case badRequest
        case notFound
        case conflict
        case methodNotAllowed
        case notAcceptable
        case unsupportedMediaType
        case payloadTooLarge
        case unauthorized
        case forbidden
        case notImplemented
        case serviceUnavailable
    }

    public var kind: Kind
    public var code: ErrorCode
    public var detail: String
    /// The methods a `405` lists in its `Allow` header.
    public var allow: String?
    /// Upstream raises this refusal outside its handlers' error handling (routing, the content-type check, a
    /// lookup's `NotFound` that the handler does not catch): its answer then lacks `Vary: openstack-api-version`.
    public var escapesHandler = false
    /// Replaces the status's standard explanation before the detail (webob's 415 names the media type).
    public var explanation: String?

    public init(_ kind: Kind, _ detail: String, code: ErrorCode = .undefined, allow: String? = nil) {
        self.kind = kind
        self.code = code
        self.detail = detail
        self.allow = allow
    }

    public var description: String { "\(kind): \(detail)" }

    public static func badRequest(_ detail: String, code: ErrorCode = .undefined) -> Self {
        Self(.badRequest, detail, code: code)
    }
    public static func notFound(_ detail: String, code: ErrorCode = .undefined) -> Self {
        Self(.notFound, detail, code: code)
    }
    /// A lookup's 404 that upstream lets escape its handler (see `escapesHandler`).
    public static func lookupFailed(_ detail: String) -> Self {
        var error = Self(.notFound, detail)
        error.escapesHandler = true
        return error
    }
    /// This error, marked as escaping upstream's handler.
    public var escaping: Self {
        var error = self
        error.escapesHandler = true
        return error
    }
    public static func conflict(_ detail: String, code: ErrorCode = .undefined) -> Self {
        Self(.conflict, detail, code: code)
    }
    /// A stale provider or consumer generation.
    public static func concurrentUpdate(_ detail: String) -> Self {
        Self(.conflict, detail, code: .concurrentUpdate)
    }
}

/// Upstream Placement's stable error codes (microversion 1.23 and later).
public struct ErrorCode: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let undefined = ErrorCode("placement.undefined_code")
    public static let concurrentUpdate = ErrorCode("placement.concurrent_update")
    public static let duplicateName = ErrorCode("placement.duplicate_name")
    public static let inventoryInUse = ErrorCode("placement.inventory.inuse")
    public static let providerInUse = ErrorCode("placement.resource_provider.inuse")
    public static let cannotDeleteParent = ErrorCode("placement.resource_provider.cannot_delete_parent")
    public static let providerNotFound = ErrorCode("placement.resource_provider.not_found")
    public static let rootConflict = ErrorCode("placement.resource_provider.root_conflict")
    public static let queryDuplicateKey = ErrorCode("placement.query.duplicate_key")
    public static let queryBadValue = ErrorCode("placement.query.bad_value")
    public static let queryMissingValue = ErrorCode("placement.query.missing_value")
}
