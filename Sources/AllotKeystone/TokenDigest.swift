import Crypto

/// A token's SHA-256 digest: what the cache keys on and what logs may show (its first 8 hex digits).
struct TokenDigest: Hashable, Sendable {
    let bytes: [UInt8]

    init(_ token: String) {
        bytes = Array(SHA256.hash(data: Array(token.utf8)))
    }

    /// The first 8 hex digits, enough to tell tokens apart in a log and useless for replaying one.
    var short: String {
        bytes.prefix(4).map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}
