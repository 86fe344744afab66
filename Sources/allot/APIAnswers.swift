import AllotCore

/// What the operator commands print of the compute API's answers (`--json` prints the answer itself). A field the
/// API always sends is required: a missing one is an error, not a blank cell.
enum APIAnswers {
    /// `GET /compute/v1/nodes`.
    struct NodeList: Decodable {
        var nodes: [Node]
    }

    struct Node: Decodable {
        var uuid: String
        var hostname: String
        var host: String
        var driver: String
        var disabled: Bool
        var inventories: [String: NodeInventory]
        var usage: [String: Int]
        var free: [String: Int]
        var stats: [String: Int]
        /// With `?topology=true`: the node's cells and devices (`null` when its driver reports none), what each
        /// consumer holds of them, and each device's status.
        var topology: HostTopology?
        var hostClaims: [String: HostClaim]?
        var pciDeviceStatus: [String: DeviceStatus]?

        private enum CodingKeys: String, CodingKey {
            case uuid, hostname, host, driver, disabled, inventories, usage, free, stats, topology
            case hostClaims = "host_claims", pciDeviceStatus = "pci_device_status"
        }
    }

    /// What a node offers of one resource class (the fields `allot top` draws).
    struct NodeInventory: Decodable {
        var total: Int
        var reserved: Int
        var allocationRatio: Double

        private enum CodingKeys: String, CodingKey {
            case total, reserved, allocationRatio = "allocation_ratio"
        }
    }

    /// What one consumer holds of a node's topology (`host_claims`).
    struct HostClaim: Decodable {
        var numa: NUMAPlacement?
        var pciDevices: [String]

        private enum CodingKeys: String, CodingKey {
            case numa, pciDevices = "pci_devices"
        }
    }

    /// A device's status (`pci_device_status`): available, claimed, allocated, unavailable, removed,
    /// unassignable; with the consumer holding it.
    struct DeviceStatus: Decodable {
        var status: String
        var consumer: String?
    }

    /// `GET /compute/v1/instances`.
    struct InstanceList: Decodable {
        var instances: [Instance]
    }

    struct Instance: Decodable {
        var uuid: String
        var node: String
        var projectID: String
        var flavor: Flavor
        var vmState: String
        var taskState: String?

        private enum CodingKeys: String, CodingKey {
            case uuid, node, flavor, projectID = "project_id", vmState = "vm_state", taskState = "task_state"
        }
    }

    struct Flavor: Decodable {
        var name: String
        var vcpus: Int
        var memoryMB: Int

        private enum CodingKeys: String, CodingKey {
            case name, vcpus, memoryMB = "memory_mb"
        }
    }

    /// `GET /compute/v1/migrations`.
    struct MigrationList: Decodable {
        var migrations: [Migration]
    }

    struct Migration: Decodable {
        var uuid: String
        var instanceUUID: String
        var kind: String
        var status: String
        var sourceNode: String
        var destNode: String

        private enum CodingKeys: String, CodingKey {
            case uuid, kind, status, instanceUUID = "instance_uuid", sourceNode = "source_node", destNode = "dest_node"
        }
    }

    /// What a claim or state change left behind: the records and what each consumer holds, by node and class.
    struct Change: Decodable {
        var changed: Bool
        var instance: Instance?
        var migration: Migration?
        var allocations: [String: [String: [String: Int]]]
    }

    /// `POST /compute/v1/audit`.
    struct Audit: Decodable {
        var nodes: Int
        var added: [String]
        var removed: [String]
        var saved: [String]
        var invalid: [String: String]
        var removalRefused: [String: String]
        var orphans: [String: [String]]
        /// Orphans' memory held back per node, and instances that should run but do not (absent from older servers).
        var orphanMemoryMB: [String: Int]?
        var missing: [String: [String]]?
        var deletedAllocations: [String]
        var repaired: [String]
        var unknownConsumers: [String]
        var refusedRepairs: [String]
        var drift: [String]

        private enum CodingKeys: String, CodingKey {
            case nodes, added, removed, saved, invalid, orphans, repaired, drift, missing
            case orphanMemoryMB = "orphan_memory_mb"
            case removalRefused = "removal_refused", deletedAllocations = "deleted_allocations"
            case unknownConsumers = "unknown_consumers", refusedRepairs = "refused_repairs"
        }
    }
}
