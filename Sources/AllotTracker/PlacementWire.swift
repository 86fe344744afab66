import AllotCore

/// The JSON bodies the agent sends to and reads from Placement. Decoding is strict: every field Placement always
/// returns (a generation, an inventory's fields) is required, so an answer without it is an error, not 0.
enum PlacementWire {
    /// `GET /`.
    struct VersionDocument: Decodable, Equatable {
        struct Version: Decodable, Equatable {
            var maxVersion: String
            enum CodingKeys: String, CodingKey { case maxVersion = "max_version" }
        }
        var versions: [Version]
    }

    /// One provider of `GET /resource_providers[/{uuid}]`.
    struct Provider: Decodable, Equatable {
        var uuid: String
        var name: String
        var generation: Int
        var parent: String?
        enum CodingKeys: String, CodingKey { case uuid, name, generation, parent = "parent_provider_uuid" }
    }

    struct ProviderList: Decodable, Equatable {
        var resourceProviders: [Provider]
        enum CodingKeys: String, CodingKey { case resourceProviders = "resource_providers" }
    }

    /// `POST /resource_providers` (the parent is left out when there is none).
    struct NewProvider: Encodable {
        var uuid: String
        var name: String
        var parent: String?
        enum CodingKeys: String, CodingKey { case uuid, name, parent = "parent_provider_uuid" }
    }

    /// `PUT /resource_providers/{uuid}`.
    struct ProviderName: Encodable {
        var name: String
    }

    /// One inventory, every field required.
    struct InventoryFields: Codable, Equatable {
        var total: Int
        var reserved: Int
        var minUnit: Int
        var maxUnit: Int
        var stepSize: Int
        var allocationRatio: Double

        enum CodingKeys: String, CodingKey {
            case total, reserved, minUnit = "min_unit", maxUnit = "max_unit", stepSize = "step_size"
            case allocationRatio = "allocation_ratio"
        }

        init(_ inventory: Inventory) {
            total = inventory.total
            reserved = inventory.reserved
            minUnit = inventory.minUnit
            maxUnit = inventory.maxUnit
            stepSize = inventory.stepSize
            allocationRatio = inventory.allocationRatio
        }

        var inventory: Inventory {
            Inventory(
                total: total, reserved: reserved, minUnit: minUnit, maxUnit: maxUnit, stepSize: stepSize,
                allocationRatio: allocationRatio)
        }
    }

    /// A provider's inventories with its generation (read, written, and answered to a write).
    struct Inventories: Codable, Equatable {
        var generation: Int
        var inventories: [String: InventoryFields]
        enum CodingKeys: String, CodingKey { case generation = "resource_provider_generation", inventories }

        init(generation: Int, _ inventories: [String: Inventory]) {
            self.generation = generation
            self.inventories = inventories.mapValues(InventoryFields.init)
        }
    }

    /// A provider's traits with its generation (read and written).
    struct Traits: Codable, Equatable {
        var generation: Int
        var traits: [String]
        enum CodingKeys: String, CodingKey { case generation = "resource_provider_generation", traits }
    }

    /// Amounts by resource class.
    struct Resources: Codable, Equatable {
        var resources: [String: Int]
    }

    /// `GET /resource_providers/{uuid}/allocations`.
    struct ProviderAllocations: Decodable, Equatable {
        var allocations: [String: Resources]
    }

    /// `GET /allocations/{consumer}`: no generation when Placement has no such consumer.
    struct ConsumerAllocationsRead: Decodable, Equatable {
        var allocations: [String: Resources]
        var consumerGeneration: Int?
        enum CodingKeys: String, CodingKey { case allocations, consumerGeneration = "consumer_generation" }
    }

    /// One consumer of `POST /allocations` and `POST /reshaper`: the generation is sent as `null` for a new
    /// consumer; the consumer type only from microversion 1.38.
    struct ConsumerAllocations: Encodable {
        var allocations: [String: Resources]
        var projectID: String
        var userID: String
        var generation: Int?
        var consumerType: String?

        enum CodingKeys: String, CodingKey {
            case allocations, projectID = "project_id", userID = "user_id", generation = "consumer_generation"
            case consumerType = "consumer_type"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(allocations, forKey: .allocations)
            try container.encode(projectID, forKey: .projectID)
            try container.encode(userID, forKey: .userID)
            try container.encode(generation, forKey: .generation)
            try container.encodeIfPresent(consumerType, forKey: .consumerType)
        }
    }

    /// `POST /reshaper`.
    struct Reshape: Encodable {
        var inventories: [String: Inventories]
        var allocations: [String: ConsumerAllocations]
    }
}
