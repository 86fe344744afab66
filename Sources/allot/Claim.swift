import AllotCore
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOHTTP1

/// `allot claim …`: claims, moves and state changes through the compute API.
struct Claim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Claim resources for instances and moves, and take them through their lifecycle.",
        discussion: """
            Build: `allot claim build --node NODE --vcpus 2 --memory-mb 2048 --root-gb 20`. Moves are claimed at
            the destination (`resize`, `migrate`, `live-migrate`, `evacuate`) and then `finish`ed, `confirm`ed or
            `revert`ed, or `rollback`ed before they finish. Every operation is idempotent by uuid.
            """,
        subcommands: [
            Build.self, Abort.self, Delete.self, State.self, Move.self, Progress.self, MigrationAction.self,
        ])

    struct FlavorOptions: ParsableArguments {
        @Option(help: "Flavor name.") var flavorName: String = "custom"
        @Option(help: "Virtual CPUs.") var vcpus: Int
        @Option(help: "Memory, MiB.") var memoryMb: Int
        @Option(help: "Root disk, GiB.") var rootGb: Int = 0
        @Option(help: "Ephemeral disk, GiB.") var ephemeralGb: Int = 0
        @Option(help: "Swap, MiB.") var swap: Int = 0
        @Option(help: "Extra spec KEY=VALUE (repeatable), e.g. resources:CUSTOM_GPU=1, trait:HW_CPU_X86_AVX2=required.")
        var extraSpec: [String] = []

        func body() throws -> APIBodies.Flavor {
            var specs: [String: String] = [:]
            for spec in extraSpec {
                guard let equals = spec.firstIndex(of: "=") else { throw ValidationError("extra spec \(spec) is not KEY=VALUE") }
                specs[String(spec[..<equals])] = String(spec[spec.index(after: equals)...])
            }
            return APIBodies.Flavor(
                name: flavorName, vcpus: vcpus, memoryMB: memoryMb, rootGB: rootGb, ephemeralGB: ephemeralGb, swap: swap,
                extraSpecs: specs)
        }
    }

    /// Prints what an operation left behind.
    /// - Throws: `ValidationError` when the answer lacks a field the summary shows.
    static func report(_ answer: JSONValue, json: Bool) throws {
        if json { return APIClient.printJSON(answer) }
        let change = try APIClient.read(APIAnswers.Change.self, answer)
        if let instance = change.instance {
            print("instance \(instance.uuid): \(instance.vmState) on node \(instance.node)"
                + (instance.taskState.map { " (\($0))" } ?? ""))
        }
        if let migration = change.migration {
            print("migration \(migration.uuid): \(migration.kind) \(migration.status), "
                + "\(migration.sourceNode) -> \(migration.destNode)")
        }
        for (consumer, nodes) in change.allocations.sorted(by: { $0.key < $1.key }) {
            let held = nodes.sorted { $0.key < $1.key }.map { "\(amounts($0.value)) on \($0.key)" }.joined(separator: "; ")
            print("  \(consumer) holds \(held.isEmpty ? "nothing" : held)")
        }
        if !change.changed { print("(already done: nothing changed)") }
    }

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Claim a new instance on a node (build).")
        @OptionGroup var client: ClientOptions
        @OptionGroup var flavor: FlavorOptions
        @Option(help: "The node (uuid).") var node: String
        @Option(help: "Instance uuid (default: a new one).") var uuid: String = UUID().uuidString.lowercased()
        @Option(help: "Project id.") var projectId: String = "admin"
        @Option(help: "User id.") var userId: String = "admin"
        @Option(help: "OS type (stats).") var osType: String?
        @Flag(help: "Root disk is a volume (no local root disk).") var bootFromVolume = false

        func run() async throws {
            let body = APIBodies.Build(
                uuid: uuid, node: node, projectID: projectId, userID: userId, flavor: try flavor.body(),
                bootFromVolume: bootFromVolume, osType: osType)
            try Claim.report(try await APIClient(options: client).call(.POST, "/compute/v1/instances", body: body), json: client.json)
        }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Abort a build claim (the build failed).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Instance uuid.") var instance: String
        func run() async throws {
            try Claim.report(try await APIClient(options: client).call(.POST, "/compute/v1/instances/\(instance)/abort"), json: client.json)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an instance, releasing all it and its move hold.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Instance uuid.") var instance: String
        func run() async throws {
            try Claim.report(try await APIClient(options: client).call(.DELETE, "/compute/v1/instances/\(instance)"), json: client.json)
        }
    }

    struct State: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Update an instance's vm state, task state or OS type.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Instance uuid.") var instance: String
        @Option(help: "building, active, stopped, paused, suspended, rescued, error.") var vmState: String?
        @Option(help: "Task state ('none' clears it).") var taskState: String?
        @Option(help: "OS type.") var osType: String?
        func run() async throws {
            let body = APIBodies.State(
                vmState: vmState, taskState: taskState.map { $0 == "none" ? nil : $0 }, osType: osType)
            try Claim.report(
                try await APIClient(options: client).call(.POST, "/compute/v1/instances/\(instance)/state", body: body),
                json: client.json)
        }
    }

    struct Move: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "move",
            abstract: "Claim a move at its destination: --kind resize (with a new flavor), migration, live-migration or evacuation.",
            aliases: ["resize", "migrate", "live-migrate", "evacuate"])
        @OptionGroup var client: ClientOptions
        @Argument(help: "Instance uuid.") var instance: String
        @Option(help: "resize, migration, live-migration, evacuation (default: from the command name: resize, migrate, live-migrate, evacuate).")
        var kind: String?
        @Option(help: "Destination node (uuid).") var destNode: String
        @Option(help: "Migration uuid (default: a new one).") var migration: String = UUID().uuidString.lowercased()
        @Option(help: "New flavor name (resize).") var flavorName: String = "custom"
        @Option(help: "New vcpus (resize).") var vcpus: Int?
        @Option(help: "New memory, MiB (resize).") var memoryMb: Int?
        @Option(help: "New root disk, GiB (resize).") var rootGb: Int = 0
        @Option(help: "New ephemeral disk, GiB (resize).") var ephemeralGb: Int = 0
        @Option(help: "New swap, MiB (resize).") var swap: Int = 0

        func run() async throws {
            let aliases = ["resize": "resize", "migrate": "migration", "live-migrate": "live-migration", "evacuate": "evacuation"]
            let invoked = CommandLine.arguments.dropFirst().first { aliases[$0] != nil }.flatMap { aliases[$0] }
            guard let kind = kind ?? invoked else {
                throw ValidationError("say which move: --kind resize|migration|live-migration|evacuation")
            }
            var body = APIBodies.Move(uuid: migration, instanceUUID: instance, kind: kind, destNode: destNode)
            if kind == "resize" {
                guard let vcpus, let memoryMb else { throw ValidationError("a resize needs --vcpus and --memory-mb") }
                body.flavor = APIBodies.Flavor(
                    name: flavorName, vcpus: vcpus, memoryMB: memoryMb, rootGB: rootGb, ephemeralGB: ephemeralGb,
                    swap: swap)
            }
            try Claim.report(try await APIClient(options: client).call(.POST, "/compute/v1/migrations", body: body), json: client.json)
        }
    }

    struct Progress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Report a move's progress (pre-migrating, migrating, post-migrating, running).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Migration uuid.") var migration: String
        @Option(help: "The new status.") var status: String
        func run() async throws {
            try Claim.report(
                try await APIClient(options: client).call(
                    .POST, "/compute/v1/migrations/\(migration)/progress", body: APIBodies.Progress(status: status)),
                json: client.json)
        }
    }

    struct MigrationAction: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "finish",
            abstract: "Finish, confirm, revert or roll back a move: `allot claim finish|confirm|revert|rollback MIGRATION`.",
            aliases: ["confirm", "revert", "rollback"])
        @OptionGroup var client: ClientOptions
        @Argument(help: "Migration uuid.") var migration: String
        @Option(help: "finish, confirm, revert or rollback (default: the command name used).") var action: String?

        func run() async throws {
            let invoked = CommandLine.arguments.dropFirst().first { ["finish", "confirm", "revert", "rollback"].contains($0) }
            let name = action ?? invoked ?? "finish"
            try Claim.report(
                try await APIClient(options: client).call(.POST, "/compute/v1/migrations/\(migration)/\(name)"),
                json: client.json)
        }
    }
}
