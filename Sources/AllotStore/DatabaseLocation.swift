import Foundation
/// Where the books are kept: an SQLite file (or memory) or a PostgreSQL server.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqliteFile(String)
    case sqliteMemory
    /// A `postgres://` or `postgresql://` URL; it may hold a password, so it is never printed.
    case postgres(url: String)

    /// Reads `--database`: a `postgres://` / `postgresql://` URL, `:memory:`, or a file path.
    public init(parsing text: String) {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else if text == ":memory:" {
            self = .sqliteMemory
        } else {
            self = .sqliteFile(text)
        }
    }

    /// A description safe for logs: PostgreSQL URLs lose their credentials.
    public var description: String {
        switch self {
        case .sqliteFile(let path): return "sqlite:\(path)"
        case .sqliteMemory: return "sqlite::memory:"
        case .postgres(let url): return Self.redacted(url)
        }
    }

    /// A URL with any `user:password@` part replaced by `***@`, and the query dropped.
    public static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return "postgres://***" }
        var rest = url[schemeEnd.upperBound...]
        if let at = rest.lastIndex(of: "@") { rest = "***@" + rest[rest.index(after: at)...] }
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
        return String(url[..<schemeEnd.upperBound]) + rest
    }
}
