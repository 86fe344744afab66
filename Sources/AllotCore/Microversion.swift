/// A Placement API microversion such as `1.39`.
public struct Microversion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let minimum = Microversion(1, 0)
    public static let maximum = Microversion(1, 39)

    public var description: String { "\(major).\(minor)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    /// Whether this version is at least `major.minor`.
    public func isAtLeast(_ major: Int, _ minor: Int) -> Bool { self >= Microversion(major, minor) }

    /// Parses `X.Y` (digits only, no leading sign) or `latest`.
    /// - Returns: `nil` when the text is malformed.
    public static func parse(_ text: String) -> Microversion? {
        let trimmed = text.trimmingSpaces()
        if trimmed == "latest" { return maximum }
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = Int(digits: parts[0]), let minor = Int(digits: parts[1]) else { return nil }
        return Microversion(major, minor)
    }

    /// Picks the Placement version out of an `OpenStack-API-Version` header value such as
    /// `placement 1.20, compute 2.1`.
    /// - Returns: `.absent` when no `placement` entry is present, `.malformed` when one is but cannot be parsed.
    public static func fromHeader(_ value: String) -> HeaderValue {
        var result = HeaderValue.absent
        for entry in value.split(separator: ",") {
            let words = entry.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count == 2, words[0].lowercased() == "placement" else { continue }
            let raw = String(words[1])
            result = parse(raw).map(HeaderValue.version) ?? .malformed(raw)
        }
        return result
    }

    /// The outcome of reading a version header.
    public enum HeaderValue: Equatable, Sendable {
        case absent
        case version(Microversion)
        case malformed(String)
    }
}

extension Int {
    /// Parses a non-empty run of ASCII digits (no sign, no spaces).
    init?(digits: Substring) {
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), digits.count < 10 else { return nil }
        self.init(digits)
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs.
    package func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
