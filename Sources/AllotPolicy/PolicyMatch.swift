/// The right-hand side of a `role:` or generic check: text with optional
/// `%(key)s` substitutions from the target, as Python's `match % target`.
///
/// Only `%(key)s` and `%%` are accepted; any other `%` conversion is refused
/// when the rule is parsed (upstream would raise at enforcement time).
public struct PolicyMatch: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case text(String)
        case substitution(String)
    }

    /// The match exactly as written.
    public let raw: String
    let parts: [Part]

    /// Parses `raw`, throwing a reason (without context) on a bad `%` format.
    init(parsing raw: String) throws(PolicyError) {
        self.raw = raw
        var parts: [Part] = []
        var text = ""
        var chars = raw[...]
        while let c = chars.popFirst() {
            guard c == "%" else {
                text.append(c)
                continue
            }
            guard let next = chars.popFirst() else {
                throw Self.formatError(raw, "a lone '%' at the end (write '%%' for a percent sign)")
            }
            if next == "%" {
                text.append("%")
                continue
            }
            guard next == "(" else {
                throw Self.formatError(raw, "only %(name)s substitutions are supported, found '%\(next)'")
            }
            // Python allows balanced parentheses inside the key.
            var depth = 1
            var key = ""
            while let k = chars.popFirst() {
                if k == "(" { depth += 1 }
                if k == ")" {
                    depth -= 1
                    if depth == 0 { break }
                }
                key.append(k)
            }
            guard depth == 0 else { throw Self.formatError(raw, "unterminated '%(' substitution") }
            guard chars.popFirst() == "s" else {
                throw Self.formatError(raw, "substitution %(\(key)) must be followed by 's'")
            }
            if !text.isEmpty {
                parts.append(.text(text))
                text = ""
            }
            parts.append(.substitution(key))
        }
        if !text.isEmpty || parts.isEmpty { parts.append(.text(text)) }
        self.parts = parts
    }

    private static func formatError(_ raw: String, _ reason: String) -> PolicyError {
        .syntax(checkString: raw, reason: reason, origin: .init())
    }

    /// The match with the target's values substituted; nil when a
    /// referenced key is missing from the target (the check then fails).
    func resolve(against target: [String: String]) -> String? {
        var result = ""
        for part in parts {
            switch part {
            case let .text(t): result += t
            case let .substitution(key):
                guard let value = target[key] else { return nil }
                result += value
            }
        }
        return result
    }

    public var description: String { raw }
}

/// The left-hand side of a generic check: a literal (Python's
/// `ast.literal_eval` succeeds) or a dotted path into the credentials.
enum GenericKind: Sendable, Equatable {
    /// `str()` of the literal.
    case literal(String)
    /// Path segments into the credential dictionary.
    case path([String])

    private static let pythonKeywords: Set<String> = [
        "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
        "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
        "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
    ]

    /// The outcome of ``classify(_:)``.
    enum Classification: Sendable, Equatable {
        case valid(GenericKind)
        /// The reason Allot refuses the kind.
        case invalid(String)
    }

    /// Classifies `kind`; returns a reason when Allot cannot give it the
    /// meaning oslo.policy would (exotic literals, Python syntax errors).
    static func classify(_ kind: String) -> Classification {
        switch kind {
        case "True", "False", "None": return .valid(.literal(kind))
        default: break
        }
        if let quote = kind.first, quote == "'" || quote == "\"" {
            let body = kind.dropFirst()
            guard kind.count >= 2, kind.last == quote,
                  !body.dropLast().contains(quote), !body.contains("\\")
            else { return .invalid("unsupported quoted literal \(kind)") }
            return .valid(.literal(String(body.dropLast())))
        }
        if let integer = canonicalInteger(kind) { return integer }
        let segments = kind.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let isIdentifier: (String) -> Bool = { s in
            guard let first = s.unicodeScalars.first, first == "_" || first.properties.isAlphabetic
            else { return false }
            return s.unicodeScalars.allSatisfy { $0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0) }
        }
        guard segments.allSatisfy(isIdentifier), !segments.contains(where: pythonKeywords.contains) else {
            return .invalid("\"\(kind)\" is neither a credential name (letters, digits, '_', '.') nor a literal")
        }
        return .valid(.path(segments))
    }

    /// Decimal integers as Python prints them (`-007` is a syntax error).
    private static func canonicalInteger(_ kind: String) -> Classification? {
        var digits = kind[...]
        var negative = false
        if let sign = digits.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }) else {
            return digits.first.map { ("0"..."9").contains($0) } == true
                ? .invalid("unsupported numeric literal \(kind) (only decimal integers are supported)")
                : nil
        }
        let stripped = digits.drop { $0 == "0" }
        if stripped.isEmpty { return .valid(.literal("0")) }
        if stripped.count != digits.count {
            return .invalid("integer literal \(kind) has leading zeros (a Python syntax error)")
        }
        return .valid(.literal((negative ? "-" : "") + stripped))
    }
}
