import AllotCore
import Crypto
public import Foundation

/// The file of API tokens: JSON `{"tokens": [{"digest", "user", "project", "roles", "hosts", "name"}]}`, mode 0600,
/// where `digest` is the token's SHA-256 in lower-case hex: the tokens themselves are never stored. The admin
/// token made at first start is also written, in clear, to a separate first-start file (see ``firstStartPath(for:)``)
/// for `allot token` to print until the operator deletes it.
public enum TokenFile {
    /// One record as the file or `ALLOT_TOKENS` holds it: a `digest`, or (older files, `ALLOT_TOKENS`) a `token`.
    struct StoredRecord: Codable, Equatable {
        var token: String?
        var digest: String?
        var name: String?
        var user: String
        var project: String?
        var roles: [String]
        var hosts: [String]?
    }

    struct Contents: Codable, Equatable {
        var tokens: [StoredRecord]
    }

    /// What ``load(path:)`` read.
    public struct Loaded: Sendable {
        public var records: [TokenRecord]
        /// How many records held their token in clear (an older file); the file was rewritten with digests.
        public var rewrittenPlaintext: Int
    }

    /// Where `allot serve` keeps its tokens for a database: beside an SQLite file, or in the working directory.
    public static func defaultPath(forDatabase database: String) -> String {
        if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") || database == ":memory:" {
            return FileManager.default.currentDirectoryPath + "/allot-tokens.json"
        }
        let url = URL(fileURLWithPath: database)
        return url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".tokens.json").path
    }

    /// The plaintext file holding the admin token made at first start, beside the tokens file.
    public static func firstStartPath(for tokensFile: String) -> String { tokensFile + ".first-start" }

    /// Reads tokens from a file; a file from an older version (tokens in clear) is rewritten with digests,
    /// atomically (temporary file, fsync, rename), before the records are returned. Runs off the cooperative pool.
    /// - Throws: `TokenFileError` when the file is unreadable, malformed or cannot be rewritten (the message never
    ///   shows a token).
    public static func load(path: String) async throws -> Loaded {
        try await offPool {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TokenFileError(message: "cannot read token file \(path)")
            }
            let (records, plaintext) = try parseCounting(data, origin: path)
            if plaintext > 0 { try write(records, to: path) }
            return Loaded(records: records, rewrittenPlaintext: plaintext)
        }
    }

    /// Parses the JSON form, from a file or the `ALLOT_TOKENS` environment variable (where `token` in clear is
    /// accepted; it is digested at once).
    public static func parse(_ data: Data, origin: String) throws -> [TokenRecord] {
        try parseCounting(data, origin: origin).records
    }

    static func parseCounting(_ data: Data, origin: String) throws -> (records: [TokenRecord], plaintext: Int) {
        let stored: [StoredRecord]
        do {
            stored = try JSONCoding.decode(Contents.self, from: data).tokens
        } catch {
            throw TokenFileError(message: "token list in \(origin) is not valid JSON of the form "
                + "{\"tokens\": [{\"digest\" or \"token\", \"user\", \"project\", \"roles\", \"hosts\"}]}")
        }
        var plaintext = 0
        let records = try stored.enumerated().map { index, record in
            let digest: String
            switch (record.token, record.digest) {
            case (let token?, nil):
                guard token.count >= 16 else {
                    throw TokenFileError(message: "tokens in \(origin) must be at least 16 characters")
                }
                digest = TokenRecord.digest(of: token)
                plaintext += 1
            case (nil, let stored?):
                guard isDigest(stored) else {
                    throw TokenFileError(message: "token \(index + 1) in \(origin): digest must be 64 lower-case hex digits")
                }
                digest = stored
            default:
                throw TokenFileError(message: "token \(index + 1) in \(origin) must have exactly one of digest and token")
            }
            if let hosts = record.hosts, hosts.isEmpty || hosts.contains(where: \.isEmpty) {
                throw TokenFileError(message: "token \(index + 1) in \(origin): hosts must be a non-empty list of names")
            }
            return TokenRecord(digest: digest, user: record.user, project: record.project, roles: record.roles,
                               hosts: record.hosts, name: record.name)
        }
        return (records, plaintext)
    }

    static func isDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Creates the tokens file holding one new admin token (as its digest) and the first-start file holding the
    /// token in clear, both mode 0600.
    /// - Returns: the new token.
    public static func createAdmin(path: String) async throws -> String {
        try await offPool {
            let token = newToken()
            try write([TokenRecord(token: token, user: "admin", project: "admin", roles: ["admin"], name: "admin")], to: path)
            try writeAtomically(Data((token + "\n").utf8), to: firstStartPath(for: path))
            return token
        }
    }

    /// Adds a record for a new token to the tokens file (created when missing; an older plaintext file is
    /// rewritten with digests), atomically.
    /// - Returns: the new token: it is shown this once and stored only as its digest.
    public static func create(
        path: String, user: String, project: String?, roles: [String], hosts: [String]?, name: String?
    ) async throws -> String {
        try await offPool {
            var records: [TokenRecord] = []
            if let data = FileManager.default.contents(atPath: path) {
                records = try parseCounting(data, origin: path).records
            }
            let token = newToken()
            records.append(TokenRecord(token: token, user: user, project: project, roles: roles, hosts: hosts, name: name))
            try write(records, to: path)
            return token
        }
    }

    /// The admin token of the first-start file, or `nil` when the file no longer exists.
    public static func firstStartToken(tokensFile: String) async throws -> String? {
        try await offPool {
            let path = firstStartPath(for: tokensFile)
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TokenFileError(message: "cannot read \(path)")
            }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// 32 random bytes in hex.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    static func write(_ records: [TokenRecord], to path: String) throws {
        let stored = records.map {
            StoredRecord(token: nil, digest: $0.digest, name: $0.name, user: $0.user, project: $0.project,
                         roles: $0.roles, hosts: $0.hosts)
        }
        let text = try JSONCoding.encode(Contents(tokens: stored), sortedKeys: true, pretty: true)
        try writeAtomically(Data(text), to: path)
    }

    /// Writes `data` to a temporary file (mode 0600) beside `path`, syncs it, renames it over `path` and syncs
    /// the directory: readers see the old file or the new one, never a part.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600])
        else { throw TokenFileError(message: "cannot create \(temporary)") }
        do {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: temporary)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            guard rename(temporary, path) == 0 else { throw TokenFileError(message: "cannot replace \(path)") }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        let directory = open(URL(fileURLWithPath: path).deletingLastPathComponent().path, O_RDONLY)
        guard directory >= 0 else { throw TokenFileError(message: "cannot open the directory of \(path)") }
        defer { close(directory) }
        guard fsync(directory) == 0 else { throw TokenFileError(message: "cannot sync the directory of \(path)") }
    }

    /// Runs file work (reads, fsync) on a thread of its own, never on the cooperative pool.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }
}

/// A token file that cannot be used.
public struct TokenFileError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension TokenRecord {
    /// A token's SHA-256 digest, lower-case hex: what the tokens file stores and requests are looked up by.
    public static func digest(of token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
