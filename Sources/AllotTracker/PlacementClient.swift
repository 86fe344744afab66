public import AllotCore
public import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1

/// The errors of ``PlacementClient`` (the agent's name for ``ServiceClientError``).
public typealias PlacementClientError = ServiceClientError

/// Speaks the Placement API (ours or upstream OpenStack's) for an agent: providers, inventories, traits,
/// resource classes and allocations, at the highest microversion both sides know (1.28 at least: consumer
/// generations). Answers decode into the types of `PlacementWire.swift`: a missing generation is an error.
public final class PlacementClient: Sendable {
    /// The HTTP client under it (the ledger protocol shares it).
    public let service: ServiceClient
    public let version: Microversion

    /// The HTTP client of plain-HTTP agents and Keystone (see ``ServiceClient/plainHTTP``).
    public static var agentHTTP: HTTPClient { ServiceClient.plainHTTP }

    /// The oldest microversion the agent can work with: consumer generations in `POST /allocations`.
    public static let minimumVersion = Microversion(1, 28)

    init(service: ServiceClient, version: Microversion) {
        self.service = service
        self.version = version
    }

    /// Placement's URL as logs show it (no userinfo, query or fragment).
    public var redactedURL: RedactedURL { service.redactedURL }

    /// Connects to the service at `url` (see ``connect(_:)``).
    /// - Throws: ``TLSFileError`` when a file of `tls` cannot be used; ``ServiceClientError`` as ``connect(_:)``.
    public static func connect(
        url: String, token: String?, tls: ClientTLS = ClientTLS(), timeout: TimeAmount = .seconds(30)
    ) async throws -> PlacementClient {
        try await connect(ServiceClient(url: url, token: token, tls: tls, timeout: timeout))
    }

    /// Asks the service which microversions it speaks and picks the highest up to 1.39.
    /// - Throws: ``ServiceClientError`` when it does not answer, answers without a version document, or is older
    ///   than 1.28.
    public static func connect(_ service: ServiceClient) async throws(ServiceClientError) -> PlacementClient {
        let label = service.label(.GET, "/")
        guard let root = try await service.send(.GET, "/", as: PlacementWire.VersionDocument.self),
            let maxText = root.versions.first?.maxVersion, let max = Microversion.parse(maxText)
        else {
            throw ServiceClientError(kind: .malformed, status: 200, detail: "no version document", request: label)
        }
        guard max >= minimumVersion else {
            throw ServiceClientError(
                kind: .malformed, status: 200,
                detail: "Placement speaks up to \(max); the agent needs \(minimumVersion)", request: label)
        }
        return PlacementClient(service: service, version: min(max, Microversion.maximum))
    }

    /// Closes the client's connections.
    public func shutdown() async throws {
        try await service.shutdown()
    }

    // MARK: Providers

    /// A provider's name and generation; `nil` when there is none.
    public func provider(_ uuid: String) async throws -> (name: String, generation: Int)? {
        try await get("/resource_providers/\(uuid)", allow: [404], as: PlacementWire.Provider.self)
            .map { ($0.name, $0.generation) }
    }

    /// Every provider's generation, by uuid (one `GET /resource_providers`).
    public func providerGenerations() async throws -> [String: Int] {
        let list = try await get("/resource_providers", as: PlacementWire.ProviderList.self)
        return Dictionary(list.resourceProviders.map { ($0.uuid, $0.generation) }) { first, _ in first }
    }

    public func createProvider(uuid: String, name: String) async throws {
        try await write(.POST, "/resource_providers", PlacementWire.NewProvider(uuid: uuid, name: name, parent: nil))
    }

    public func renameProvider(uuid: String, name: String) async throws {
        try await write(.PUT, "/resource_providers/\(uuid)", PlacementWire.ProviderName(name: name))
    }

    /// Deletes a provider; `false` when there was none.
    @discardableResult
    public func deleteProvider(_ uuid: String) async throws -> Bool {
        try await service.send(.DELETE, "/resource_providers/\(uuid)", headers: versionHeader, allow: [404]) != 404
    }

    public func inventories(_ uuid: String) async throws -> (generation: Int, inventories: [String: Inventory]) {
        let answer = try await get("/resource_providers/\(uuid)/inventories", as: PlacementWire.Inventories.self)
        return (answer.generation, answer.inventories.mapValues(\.inventory))
    }

    /// Replaces a provider's inventories.
    /// - Returns: the provider's new generation.
    public func setInventories(_ uuid: String, generation: Int, _ inventories: [String: Inventory]) async throws -> Int {
        let answer = try await service.send(
            .PUT, "/resource_providers/\(uuid)/inventories",
            body: PlacementWire.Inventories(generation: generation, inventories), headers: versionHeader,
            as: PlacementWire.Inventories.self)
        return try required(answer, .PUT, "/resource_providers/\(uuid)/inventories").generation
    }

    /// The child providers of `root` (uuid → name and generation).
    public func children(of root: String) async throws -> [String: (name: String, generation: Int)] {
        let list = try await get("/resource_providers?in_tree=\(root)", as: PlacementWire.ProviderList.self)
        var result: [String: (name: String, generation: Int)] = [:]
        for provider in list.resourceProviders where provider.parent == root {
            result[provider.uuid] = (provider.name, provider.generation)
        }
        return result
    }

    /// Creates a provider under `parent`.
    public func createProvider(uuid: String, name: String, parent: String) async throws {
        try await write(.POST, "/resource_providers", PlacementWire.NewProvider(uuid: uuid, name: name, parent: parent))
    }

    /// Replaces the inventories of several providers and the allocations of several consumers in one step
    /// (`POST /reshaper`, microversion 1.30).
    public func reshape(inventories: [String: (generation: Int, inventories: [String: Inventory])], allocations: [ConsumerWrite])
        async throws
    {
        guard version >= Microversion(1, 30) else {
            throw ServiceClientError(
                kind: .malformed, status: 0, detail: "reshaping needs microversion 1.30, Placement speaks \(version)",
                request: service.label(.POST, "/reshaper"))
        }
        let body = PlacementWire.Reshape(
            inventories: inventories.mapValues { PlacementWire.Inventories(generation: $0.generation, $0.inventories) },
            allocations: Dictionary(uniqueKeysWithValues: allocations.map { ($0.consumer, wire($0)) }))
        try await write(.POST, "/reshaper", body)
    }

    func wire(_ write: ConsumerWrite) -> PlacementWire.ConsumerAllocations {
        PlacementWire.ConsumerAllocations(
            allocations: write.allocations.filter { !$0.value.isEmpty }.mapValues { .init(resources: $0) },
            projectID: write.projectID, userID: write.userID, generation: write.generation,
            consumerType: version >= Microversion(1, 38) ? write.consumerType : nil)
    }

    /// A provider's traits and generation; `nil` when there is no such provider.
    public func traits(_ uuid: String) async throws -> (generation: Int, traits: Set<String>)? {
        try await get("/resource_providers/\(uuid)/traits", allow: [404], as: PlacementWire.Traits.self)
            .map { ($0.generation, Set($0.traits)) }
    }

    public func setTraits(_ uuid: String, generation: Int, _ traits: Set<String>) async throws {
        try await write(
            .PUT, "/resource_providers/\(uuid)/traits", PlacementWire.Traits(generation: generation, traits: traits.sorted()))
    }

    /// Creates a custom trait if it does not exist.
    public func ensureTrait(_ name: String) async throws {
        try await service.send(.PUT, "/traits/\(name)", headers: versionHeader)
    }

    /// Creates a custom resource class if it does not exist.
    public func ensureResourceClass(_ name: String) async throws {
        try await service.send(.PUT, "/resource_classes/\(name)", headers: versionHeader)
    }

    // MARK: Allocations

    /// What consumers hold on a provider (consumer → class → amount); empty when there is no such provider.
    public func providerAllocations(_ uuid: String) async throws -> [String: [String: Int]] {
        let answer = try await get(
            "/resource_providers/\(uuid)/allocations", allow: [404], as: PlacementWire.ProviderAllocations.self)
        return answer?.allocations.mapValues(\.resources) ?? [:]
    }

    /// What one consumer holds, with its generation (`nil`: Placement has no such consumer).
    public func consumerAllocations(_ consumer: String) async throws -> (allocations: NodeAmounts, generation: Int?) {
        let answer = try await get("/allocations/\(consumer)", as: PlacementWire.ConsumerAllocationsRead.self)
        return (answer.allocations.mapValues(\.resources), answer.consumerGeneration)
    }

    /// One consumer's allocations for ``writeAllocations(_:)``.
    public struct ConsumerWrite: Sendable {
        public var consumer: String
        public var allocations: NodeAmounts
        public var projectID: String
        public var userID: String
        public var generation: Int?
        public var consumerType: String

        public init(
            consumer: String, allocations: NodeAmounts, projectID: String, userID: String, generation: Int?,
            consumerType: String
        ) {
            self.consumer = consumer
            self.allocations = allocations
            self.projectID = projectID
            self.userID = userID
            self.generation = generation
            self.consumerType = consumerType
        }
    }

    /// Replaces what several consumers hold, atomically (`POST /allocations`; empty allocations remove a
    /// consumer's).
    public func writeAllocations(_ writes: [ConsumerWrite]) async throws {
        try await write(.POST, "/allocations", Dictionary(writes.map { ($0.consumer, wire($0)) }) { _, last in last })
    }

    // MARK: HTTP

    var versionHeader: [(String, String)] { [("openstack-api-version", "placement \(version)")] }

    /// GETs `path` at the agent's microversion and decodes the answer.
    private func get<T: Decodable>(_ path: String, as type: T.Type) async throws(ServiceClientError) -> T {
        try required(try await service.send(.GET, path, headers: versionHeader, as: T.self), .GET, path)
    }

    /// GETs `path`; `nil` for a status in `allow`.
    private func get<T: Decodable>(_ path: String, allow: Set<Int>, as type: T.Type) async throws(ServiceClientError)
        -> T?
    {
        try await service.send(.GET, path, headers: versionHeader, allow: allow, as: T.self)
    }

    /// Sends a write at the agent's microversion; its answer's body does not matter.
    private func write(_ method: HTTPMethod, _ path: String, _ body: some Encodable) async throws(ServiceClientError) {
        try await service.send(method, path, body: body, headers: versionHeader)
    }

    private func required<T>(_ value: T?, _ method: HTTPMethod, _ path: String) throws(ServiceClientError) -> T {
        guard let value else {
            throw ServiceClientError(kind: .malformed, status: 0, detail: "no answer", request: service.label(method, path))
        }
        return value
    }
}
