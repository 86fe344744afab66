import ArgumentParser

/// The `allot` command: the Placement service and the operator's tools.
@main
struct Allot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allot",
        abstract: "Compute resource tracking and a Placement-compatible API.",
        discussion: """
            Start the service with `allot serve` (SQLite in ./allot.sqlite by default, or --database postgres://...).
            On first start with no tokens configured it creates an admin token beside the database; `allot token`
            prints it.
            """,
        subcommands: [
            Serve.self, Agent.self, Token.self, Migrate.self, Host.self, Nodes.self, Top.self, Instances.self,
            Migrations.self, Claim.self, Audit.self, Events.self, PolicyCommand.self, BenchClaims.self,
        ]
    )
}
