import AllotPlacement
import ArgumentParser
import Foundation

/// `allot token`: prints the admin token that `allot serve` created, for `OS_TOKEN` / `X-Auth-Token`.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the API token stored beside the database (for OS_TOKEN or X-Auth-Token).")

    @Option(help: "The database `allot serve` uses (env ALLOT_DATABASE).")
    var database: String = env("ALLOT_DATABASE") ?? "./allot.sqlite"

    @Option(help: "The token file (default: beside the database; env ALLOT_TOKENS_FILE).")
    var tokensFile: String = env("ALLOT_TOKENS_FILE") ?? ""

    @Option(help: "Which user's token to print.")
    var user: String = "admin"

    func run() async throws {
        let path = tokensFile.isEmpty ? TokenFile.defaultPath(forDatabase: database) : tokensFile
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("no token file at \(path): start `allot serve` once, or pass --tokens-file")
        }
        guard let record = try TokenFile.load(path: path).first(where: { $0.user == user }) else {
            throw ValidationError("no token for user '\(user)' in \(path)")
        }
        print(record.token)
    }
}
