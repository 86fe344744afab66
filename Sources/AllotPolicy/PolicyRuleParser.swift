/// Parser for the oslo.policy check-string language.
///
/// It follows `oslo_policy._parser`: the string is split on whitespace,
/// leading `(` and trailing `)` are peeled off each token, `and`/`or`/`not`
/// are keywords in any case, and a shift-reduce pass builds the tree with
/// `not` binding tighter than `and`, and `and` tighter than `or`. The trees
/// (and their `description`) are the ones upstream builds, including its
/// flattening of `a or b and c and d` into `(a or (b and c and d))`.
///
/// Where upstream logs "Failed to understand rule" and silently denies
/// (returns `!`), this parser throws ``PolicyError/syntax(checkString:reason:origin:)``.
enum PolicyRuleParser {
    private enum Token {
        case leftParen, rightParen, and, or, not
        case string(String)
        case check(PolicyCheck)
        case andExpr([PolicyCheck])
        case orExpr([PolicyCheck])
    }

    /// Parses a whole check string.
    static func parse(_ source: String) throws(PolicyError) -> PolicyCheck {
        if source.isEmpty { return .alwaysTrue }
        var stack: [Token] = []
        for token in try tokenize(source) {
            stack.append(token)
            reduce(&stack)
        }
        guard stack.count == 1 else { throw syntaxError(source, reason(for: stack, source: source)) }
        switch stack[0] {
        case let .check(check): return check
        case let .andExpr(checks): return .and(checks)
        case let .orExpr(checks): return .or(checks)
        default: throw syntaxError(source, reason(for: stack, source: source))
        }
    }

    private static func syntaxError(_ source: String, _ reason: String) -> PolicyError {
        .syntax(checkString: source, reason: reason, origin: .init())
    }

    private static func tokenize(_ source: String) throws(PolicyError) -> [Token] {
        var tokens: [Token] = []
        for word in source.split(whereSeparator: { $0.isWhitespace }) {
            let afterLeft = word.drop { $0 == "(" }
            tokens += Array(repeating: .leftParen, count: word.count - afterLeft.count)
            if afterLeft.isEmpty { continue }
            var clean = afterLeft
            var trailing = 0
            while clean.last == ")" {
                clean = clean.dropLast()
                trailing += 1
            }
            if !clean.isEmpty {
                switch clean.lowercased() {
                case "and": tokens.append(.and)
                case "or": tokens.append(.or)
                case "not": tokens.append(.not)
                default:
                    // Upstream tests the quotes on the token before its
                    // trailing parentheses are removed.
                    if afterLeft.count >= 2, let first = afterLeft.first, first == "'" || first == "\"",
                       afterLeft.last == first {
                        tokens.append(.string(String(afterLeft.dropFirst().dropLast())))
                    } else {
                        tokens.append(.check(try parseCheck(String(clean), source: source)))
                    }
                }
            }
            tokens += Array(repeating: .rightParen, count: trailing)
        }
        return tokens
    }

    /// One `kind:match` check, `@` or `!`.
    static func parseCheck(_ text: String, source: String) throws(PolicyError) -> PolicyCheck {
        if text == "!" { return .alwaysFalse }
        if text == "@" { return .alwaysTrue }
        guard let colon = text.firstIndex(of: ":") else {
            throw syntaxError(source, "\"\(text)\" is not a check (expected KIND:MATCH, '@' or '!')")
        }
        let kind = String(text[..<colon])
        let rawMatch = String(text[text.index(after: colon)...])
        switch kind {
        case "http", "https":
            throw PolicyError.unsupportedCheck(kind: kind, checkString: source, origin: .init())
        case "rule":
            return .rule(rawMatch)
        case "role":
            return .role(try match(rawMatch, source: source))
        case "":
            throw syntaxError(source, "\"\(text)\" has an empty kind before ':'")
        default:
            if case let .invalid(reason) = GenericKind.classify(kind) { throw syntaxError(source, reason) }
            return .generic(kind: kind, match: try match(rawMatch, source: source))
        }
    }

    private static func match(_ raw: String, source: String) throws(PolicyError) -> PolicyMatch {
        do {
            return try PolicyMatch(parsing: raw)
        } catch {
            guard case let .syntax(_, reason, _) = error else { throw error }
            throw syntaxError(source, reason)
        }
    }

    /// Greedy reduction of the top of the stack, as upstream's `ParseState.reduce`.
    private static func reduce(_ stack: inout [Token]) {
        while true {
            if stack.count >= 3 {
                let (a, b, c) = (stack[stack.count - 3], stack[stack.count - 2], stack[stack.count - 1])
                var replacement: Token?
                switch (a, b, c) {
                case (.leftParen, .check(let x), .rightParen): replacement = .check(x)
                case (.leftParen, .andExpr(let xs), .rightParen): replacement = .check(.and(xs))
                case (.leftParen, .orExpr(let xs), .rightParen): replacement = .check(.or(xs))
                case (.check(let x), .and, .check(let y)): replacement = .andExpr([x, y])
                case (.andExpr(let xs), .and, .check(let y)): replacement = .andExpr(xs + [y])
                case (.orExpr(var xs), .and, .check(let y)):
                    // `a or b and c`: the `and` takes the last operand of the `or`.
                    let last = xs.removeLast()
                    if case let .and(inner) = last {
                        xs.append(.and(inner + [y]))
                    } else {
                        xs.append(.and([last, y]))
                    }
                    replacement = .orExpr(xs)
                case (.check(let x), .or, .check(let y)): replacement = .orExpr([x, y])
                case (.andExpr(let xs), .or, .check(let y)): replacement = .orExpr([.and(xs), y])
                case (.orExpr(let xs), .or, .check(let y)): replacement = .orExpr(xs + [y])
                default: break
                }
                if let replacement {
                    stack.removeLast(3)
                    stack.append(replacement)
                    continue
                }
            }
            if stack.count >= 2, case .not = stack[stack.count - 2], case let .check(x) = stack[stack.count - 1] {
                stack.removeLast(2)
                stack.append(.check(.not(x)))
                continue
            }
            return
        }
    }

    /// A human explanation of why the tokens did not reduce to one check.
    private static func reason(for stack: [Token], source: String) -> String {
        if stack.isEmpty { return "it contains no check (use \"\" or \"@\" to allow, \"!\" to deny)" }
        for token in stack {
            if case let .string(s) = token {
                return "a quoted string ('\(s)') cannot stand alone; quote only one side of a check"
            }
        }
        let opens = stack.filter { if case .leftParen = $0 { true } else { false } }.count
        let closes = stack.filter { if case .rightParen = $0 { true } else { false } }.count
        if opens > closes { return "unbalanced parentheses: \(opens - closes) '(' not closed" }
        if closes > opens { return "unbalanced parentheses: ')' without a matching '('" }
        switch stack.last {
        case .and?, .or?, .not?: return "it ends with an operator"
        default: break
        }
        switch stack.first {
        case .and?, .or?: return "it starts with an operator"
        default: break
        }
        return "checks must be joined by 'and' or 'or' (and 'not' must precede a check)"
    }
}
