/// The request bodies the operator commands send to the compute API, in its field names.
enum APIBodies {
    /// A flavor: `extra_specs` only when given (a resize's new flavor has none).
    struct Flavor: Encodable {
        var name: String
        var vcpus: Int
        var memoryMB: Int
        var rootGB: Int
        var ephemeralGB: Int
        var swap: Int
        var extraSpecs: [String: String]?

        private enum CodingKeys: String, CodingKey {
            case name, vcpus, swap, memoryMB = "memory_mb", rootGB = "root_gb", ephemeralGB = "ephemeral_gb"
            case extraSpecs = "extra_specs"
        }
    }

    /// `POST /compute/v1/instances`.
    struct Build: Encodable {
        var uuid: String
        var node: String
        var projectID: String
        var userID: String
        var flavor: Flavor
        var bootFromVolume: Bool
        var osType: String?

        private enum CodingKeys: String, CodingKey {
            case uuid, node, flavor, projectID = "project_id", userID = "user_id", bootFromVolume = "boot_from_volume"
            case osType = "os_type"
        }
    }

    /// `POST /compute/v1/instances/{uuid}/state`: only the fields given; `taskState` `.some(nil)` sends
    /// `"task_state": null` (clears it).
    struct State: Encodable {
        var vmState: String?
        var taskState: String??
        var osType: String?

        private enum CodingKeys: String, CodingKey {
            case vmState = "vm_state", taskState = "task_state", osType = "os_type"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeIfPresent(vmState, forKey: .vmState)
            if let taskState { try container.encode(taskState, forKey: .taskState) }
            try container.encodeIfPresent(osType, forKey: .osType)
        }
    }

    /// `POST /compute/v1/migrations`: a move claimed at its destination (a resize with its new flavor).
    struct Move: Encodable {
        var uuid: String
        var instanceUUID: String
        var kind: String
        var destNode: String
        var flavor: Flavor?

        private enum CodingKeys: String, CodingKey {
            case uuid, kind, flavor, instanceUUID = "instance_uuid", destNode = "dest_node"
        }
    }

    /// `POST /compute/v1/migrations/{uuid}/progress`.
    struct Progress: Encodable {
        var status: String
    }
}
