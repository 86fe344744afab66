/// The part of Python's `textwrap.wrap` that oslo.policy's generator uses
/// (`width=70`, same indent on every line, `break_long_words` and
/// `break_on_hyphens` on).
enum TextWrap {
    /// Wraps `text` into lines of at most `width` characters including `indent`.
    static func wrap(_ text: String, width: Int, indent: String) -> [String] {
        let available = max(width - indent.count, 1)
        var chunks = Array(split(text.map { $0.isWhitespace ? " " : $0 }).reversed())
        var lines: [String] = []
        while !chunks.isEmpty {
            var line: [String] = []
            var length = 0
            if !lines.isEmpty, chunks.last!.allSatisfy({ $0 == " " }) { chunks.removeLast() }
            while let chunk = chunks.last, length + chunk.count <= available {
                line.append(chunk)
                length += chunk.count
                chunks.removeLast()
            }
            if let chunk = chunks.last, chunk.count > available {
                // A word longer than the line: cut it, after a hyphen if possible.
                let space = available - length
                if space > 0 {
                    var end = space
                    let prefix = Array(chunk)
                    if let hyphen = prefix[..<space].lastIndex(of: "-"), hyphen > 0,
                       prefix[..<hyphen].contains(where: { $0 != "-" }) {
                        end = hyphen + 1
                    }
                    line.append(String(prefix[..<end]))
                    chunks[chunks.count - 1] = String(prefix[end...])
                } else if line.isEmpty {
                    let prefix = Array(chunk)
                    line.append(String(prefix[..<1]))
                    chunks[chunks.count - 1] = String(prefix[1...])
                }
            }
            if let last = line.last, last.allSatisfy({ $0 == " " }) { line.removeLast() }
            if !line.isEmpty { lines.append(indent + line.joined()) }
        }
        return lines
    }

    /// Splits into runs of spaces and words; a word also splits after a
    /// hyphen between two letters on each side (`service-to-service` →
    /// `service-`, `to-`, `service`), roughly textwrap's `wordsep_re`.
    private static func split(_ characters: [Character]) -> [String] {
        var chunks: [String] = []
        var current = ""
        var index = 0
        func isLetter(_ i: Int) -> Bool {
            i >= 0 && i < characters.count && characters[i].isLetter
        }
        while index < characters.count {
            let c = characters[index]
            if c == " " {
                if let last = current.last, last != " " {
                    chunks.append(current)
                    current = ""
                }
                current.append(c)
            } else {
                if current.last == " " {
                    chunks.append(current)
                    current = ""
                }
                current.append(c)
                if c == "-", isLetter(index - 1), isLetter(index - 2), isLetter(index + 1), isLetter(index + 2) {
                    chunks.append(current)
                    current = ""
                }
            }
            index += 1
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }
}
