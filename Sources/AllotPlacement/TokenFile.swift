public import Foundation

/// The file of API tokens: JSON `{"tokens": [{"token", "user", "project", "roles"}]}`, readable by its owner only.
public enum TokenFile {
    struct Contents: Codable {
        var tokens: [TokenRecord]
    }

    /// Where `allot serve` keeps its tokens for a database: beside an SQLite file, or in the working directory.
    public static func defaultPath(forDatabase database: String) -> String {
        if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") || database == ":memory:" {
            return FileManager.default.currentDirectoryPath + "/allot-tokens.json"
        }
        let url = URL(fileURLWithPath: database)
        return url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".tokens.json").path
    }

    /// Reads tokens from a file.
    /// - Throws: `TokenFileError` when the file is unreadable or malformed (the message never shows a token).
    public static func load(path: String) throws -> [TokenRecord] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenFileError(message: "cannot read token file \(path)")
        }
        return try parse(data, origin: path)
    }

    /// Parses the JSON form, from a file or the `ALLOT_TOKENS` environment variable.
    public static func parse(_ data: Data, origin: String) throws -> [TokenRecord] {
        do {
            let tokens = try JSONDecoder().decode(Contents.self, from: data).tokens
            if tokens.contains(where: { $0.token.count < 16 }) {
                throw TokenFileError(message: "tokens in \(origin) must be at least 16 characters")
            }
            return tokens
        } catch let error as TokenFileError {
            throw error
        } catch {
            throw TokenFileError(message: "token list in \(origin) is not valid JSON of the form "
                + "{\"tokens\": [{\"token\", \"user\", \"project\", \"roles\"}]}")
        }
    }

    /// Creates a file holding one new admin token, mode 0600.
    /// - Returns: the new token record.
    public static func createAdmin(path: String) throws -> TokenRecord {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        let token = bytes.map { String(format: "%02x", $0) }.joined()
        let record = TokenRecord(token: token, user: "admin", project: "admin", roles: ["admin"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(Contents(tokens: [record]))
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw TokenFileError(message: "cannot create token file \(path)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: data)
        try handle.synchronize()
        try handle.close()
        return record
    }
}

/// A token file that cannot be used.
public struct TokenFileError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
