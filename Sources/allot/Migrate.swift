import AllotStore
import ArgumentParser
import Logging

/// `allot migrate`: brings a database's schema up to date (`allot serve` also does this at start).
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or upgrade the database schema, then exit.")

    @Option(help: "SQLite file path or postgres:// URL (env ALLOT_DATABASE).")
    var database: String = env("ALLOT_DATABASE") ?? "./allot.sqlite"

    func run() async throws {
        let logger = Logger(label: "allot")
        let location = DatabaseLocation(parsing: database)
        let db = try await Database.open(location, logger: logger)
        await db.close()
        print("schema up to date: \(location)")
    }
}
