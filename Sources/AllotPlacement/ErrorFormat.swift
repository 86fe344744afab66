import AllotCore
/// Content negotiation for error bodies, as upstream's WebOb does it: JSON unless the client prefers HTML.
enum ErrorFormat {
    case json
    case html
    case plain

    /// Picks the error body format from an `Accept` header (missing or `*/*` means JSON).
    static func negotiate(_ accept: String?) -> ErrorFormat {
        guard let accept, !accept.isEmpty, accept.trimmingSpaces() != "*/*" else { return .json }
        let html = quality(of: "text/html", in: accept)
        let json = quality(of: "application/json", in: accept)
        if html == 0, json == 0 { return .plain }
        return html > json ? .html : .json
    }

    /// The quality an `Accept` header gives a media type (0 when not acceptable).
    static func quality(of mediaType: String, in accept: String) -> Double {
        if accept.trimmingSpaces().isEmpty { return 1 }
        let (type, _) = split(mediaType)
        var best = 0.0
        var bestSpecificity = -1
        for item in accept.split(separator: ",") {
            let parts = item.split(separator: ";")
            guard let range = parts.first?.trimmingCharacters().lowercased() else { continue }
            var q = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters() }
                if pair.count == 2, pair[0] == "q", let value = Double(pair[1]) { q = value }
            }
            let specificity: Int
            if range == mediaType {
                specificity = 2
            } else if range == "\(type)/*" {
                specificity = 1
            } else if range == "*/*" {
                specificity = 0
            } else {
                continue
            }
            if specificity > bestSpecificity {
                bestSpecificity = specificity
                best = q
            }
        }
        return best
    }

    private static func split(_ mediaType: String) -> (String, String) {
        let parts = mediaType.split(separator: "/", maxSplits: 1).map(String.init)
        return (parts.first ?? "", parts.count > 1 ? parts[1] : "")
    }

    static func escapeHTML(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
