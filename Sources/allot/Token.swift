import AllotPlacement
import ArgumentParser
import Foundation

/// `allot token`: prints the admin token `allot serve` made at first start (while its first-start file exists);
/// `allot token create` adds a token.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the first-start admin token, or create a token (tokens are stored as SHA-256 digests).",
        subcommands: [Show.self, Create.self], defaultSubcommand: Show.self)

    struct Location: ParsableArguments {
        @Option(help: "The database `allot serve` uses (env ALLOT_DATABASE).")
        var database: String = env("ALLOT_DATABASE") ?? "./allot.sqlite"

        @Option(help: "The token file (default: beside the database; env ALLOT_TOKENS_FILE).")
        var tokensFile: String = env("ALLOT_TOKENS_FILE") ?? ""

        var path: String { tokensFile.isEmpty ? TokenFile.defaultPath(forDatabase: database) : tokensFile }
    }

    /// `allot token [show]`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Print the admin token made at first start, for OS_TOKEN or X-Auth-Token.",
            discussion: """
                `allot serve` writes the admin token it makes at first start, in clear, to a first-start file beside
                the tokens file (which holds only digests). Save the token somewhere safe, then delete that file;
                from then on no token can be printed again (make new ones with `allot token create`).
                """)

        @OptionGroup var location: Location

        func run() async throws {
            let path = location.path
            let firstStart = TokenFile.firstStartPath(for: path)
            guard let token = try await TokenFile.firstStartToken(tokensFile: path) else {
                throw ValidationError("""
                    the first-start admin token file \(firstStart) no longer exists: tokens are stored as digests \
                    and cannot be shown again; create one with `allot token create --role admin`
                    """)
            }
            print(token)
        }
    }

    /// `allot token create`.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a token to the tokens file and print it once (only its SHA-256 digest is stored).",
            discussion: "`allot serve` reads the tokens file at start-up: restart it for a new token to be accepted.")

        @OptionGroup var location: Location

        @Option(help: "A role of the token (repeatable; at least one), e.g. admin, service, reader.")
        var role: [String] = []

        @Option(help: "A host whose nodes the token may save, remove and claim on through the ledger protocol (repeatable; none: any host).")
        var host: [String] = []

        @Option(help: "A name for the token (also its user when --user is not given).")
        var name: String?

        @Option(help: "The token's user (default: the name, else 'token').")
        var user: String?

        @Option(help: "The token's project (default: the user).")
        var project: String?

        func validate() throws {
            guard !role.isEmpty else { throw ValidationError("give at least one --role") }
            for value in role + host + [name, user, project].compactMap({ $0 }) where value.isEmpty {
                throw ValidationError("roles, hosts, name, user and project must not be empty")
            }
        }

        func run() async throws {
            let user = user ?? name ?? "token"
            let token = try await TokenFile.create(
                path: location.path, user: user, project: project ?? user, roles: role, hosts: host.isEmpty ? nil : host,
                name: name)
            print(token)
        }
    }
}
