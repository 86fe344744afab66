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

        func json() throws -> [String: Any] {
            var specs: [String: String] = [:]
            for spec in extraSpec {
                guard let equals = spec.firstIndex(of: "=") else { throw ValidationError("extra spec \(spec) is not KEY=VALUE") }
                specs[String(spec[..<equals])] = String(spec[spec.index(after: equals)...])
            }
            return [
                "name": flavorName, "vcpus": vcpus, "memory_mb": memoryMb, "root_gb": rootGb,
                "ephemeral_gb": ephemeralGb, "swap": swap, "extra_specs": specs,
            ]
        }
    }

    /// Prints what an operation left behind.
    static func report(_ answer: Any, json: Bool) throws {
        if json { return try APIClient.printJSON(answer) }
        let object = answer as? [String: Any] ?? [:]
        let changed = object["changed"] as? Bool ?? true
        if let instance = object["instance"] as? [String: Any] {
            print("instance \(instance["uuid"] ?? ""): \(instance["vm_state"] ?? "") on node \(instance["node"] ?? "")"
                + ((instance["task_state"] as? String).map { " (\($0))" } ?? ""))
        }
        if let migration = object["migration"] as? [String: Any] {
            print("migration \(migration["uuid"] ?? ""): \(migration["kind"] ?? "") \(migration["status"] ?? ""), "
                + "\(migration["source_node"] ?? "") -> \(migration["dest_node"] ?? "")")
        }
        for (consumer, nodes) in (object["allocations"] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
            let held = (nodes as? [String: Any] ?? [:]).sorted { $0.key < $1.key }
                .map { "\(amounts($0.value)) on \($0.key)" }.joined(separator: "; ")
            print("  \(consumer) holds \(held.isEmpty ? "nothing" : held)")
        }
        if !changed { print("(already done: nothing changed)") }
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
            var body: [String: Any] = [
                "uuid": uuid, "node": node, "project_id": projectId, "user_id": userId, "flavor": try flavor.json(),
                "boot_from_volume": bootFromVolume,
            ]
            if let osType { body["os_type"] = osType }
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
            var body: [String: Any] = [:]
            if let vmState { body["vm_state"] = vmState }
            if let taskState { body["task_state"] = taskState == "none" ? NSNull() : taskState }
            if let osType { body["os_type"] = osType }
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
            var body: [String: Any] = ["uuid": migration, "instance_uuid": instance, "kind": kind, "dest_node": destNode]
            if kind == "resize" {
                guard let vcpus, let memoryMb else { throw ValidationError("a resize needs --vcpus and --memory-mb") }
                body["flavor"] = [
                    "name": flavorName, "vcpus": vcpus, "memory_mb": memoryMb, "root_gb": rootGb,
                    "ephemeral_gb": ephemeralGb, "swap": swap,
                ] as [String: Any]
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
                    .POST, "/compute/v1/migrations/\(migration)/progress", body: ["status": status]),
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
