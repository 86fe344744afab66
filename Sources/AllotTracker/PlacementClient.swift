public import AllotCore
public import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1

/// A refusal or failure from a Placement service.
public struct PlacementClientError: Error, CustomStringConvertible, Sendable {
    /// The HTTP status, or 0 when no answer came (connection refused, timeout).
    public var status: Int
    /// Placement's error code (`placement.concurrent_update`, …) when it gave one.
    public var code: String?
    public var detail: String
    public var request: String

    public var description: String {
        status == 0 ? "\(request): \(detail)" : "\(request): HTTP \(status) \(code ?? ""): \(detail)"
    }

    /// Placement saw the request and said no (so nothing of it was applied).
    public var isRefusal: Bool { (400..<500).contains(status) }
    /// A generation conflict: read again and retry.
    public var isGenerationConflict: Bool { status == 409 && code == "placement.concurrent_update" }
}

/// Speaks the Placement API (ours or upstream OpenStack's) for an agent: providers, inventories, traits,
/// resource classes and allocations, at the highest microversion both sides know (1.28 at least: consumer
/// generations).
public final class PlacementClient: Sendable {
    public let baseURL: String
    public let version: Microversion
    let token: String?
    let http: HTTPClient
    let timeout: TimeAmount

    /// The HTTP client agents use: connection attempts give up after 5 s (the shared client's pool retries a
    /// refused connection until the request's own deadline, so a claim against a server that is down would hang
    /// for its whole timeout). A process-wide constant, never shut down.
    public static let agentHTTP: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// The oldest microversion the agent can work with: consumer generations in `POST /allocations`.
    public static let minimumVersion = Microversion(1, 28)

    init(baseURL: String, version: Microversion, token: String?, http: HTTPClient, timeout: TimeAmount) {
        self.baseURL = baseURL
        self.version = version
        self.token = token
        self.http = http
        self.timeout = timeout
    }

    /// Asks the service at `url` which microversions it speaks and picks the highest up to 1.39.
    /// - Throws: ``PlacementClientError`` when it does not answer or is older than 1.28.
    public static func connect(
        url: String, token: String?, http: HTTPClient = agentHTTP, timeout: TimeAmount = .seconds(30)
    ) async throws -> PlacementClient {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        let probe = PlacementClient(baseURL: base, version: minimumVersion, token: token, http: http, timeout: timeout)
        let root = try await probe.send(.GET, "/", versioned: false)
        guard let versions = (root.json as? [String: Any])?["versions"] as? [[String: Any]],
            let maxText = versions.first?["max_version"] as? String, let max = Microversion.parse(maxText)
        else {
            throw PlacementClientError(status: root.status, code: nil, detail: "no version document", request: "GET \(base)/")
        }
        guard max >= minimumVersion else {
            throw PlacementClientError(
                status: root.status, code: nil, detail: "Placement speaks up to \(max); the agent needs \(minimumVersion)",
                request: "GET \(base)/")
        }
        let chosen = min(max, Microversion.maximum)
        return PlacementClient(baseURL: base, version: chosen, token: token, http: http, timeout: timeout)
    }

    // MARK: Providers

    /// A provider's name and generation; `nil` when there is none.
    public func provider(_ uuid: String) async throws -> (name: String, generation: Int)? {
        let answer = try await send(.GET, "/resource_providers/\(uuid)", allow: [404])
        guard answer.status == 200, let object = answer.json as? [String: Any] else { return nil }
        return (object["name"] as? String ?? "", object["generation"] as? Int ?? 0)
    }

    /// Every provider's generation, by uuid (one `GET /resource_providers`).
    public func providerGenerations() async throws -> [String: Int] {
        let object = try await send(.GET, "/resource_providers").json as? [String: Any] ?? [:]
        var result: [String: Int] = [:]
        for provider in object["resource_providers"] as? [[String: Any]] ?? [] {
            if let uuid = provider["uuid"] as? String { result[uuid] = provider["generation"] as? Int ?? 0 }
        }
        return result
    }

    public func createProvider(uuid: String, name: String) async throws {
        _ = try await send(.POST, "/resource_providers", body: ["uuid": uuid, "name": name])
    }

    public func renameProvider(uuid: String, name: String) async throws {
        _ = try await send(.PUT, "/resource_providers/\(uuid)", body: ["name": name])
    }

    /// Deletes a provider; `false` when there was none.
    @discardableResult
    public func deleteProvider(_ uuid: String) async throws -> Bool {
        try await send(.DELETE, "/resource_providers/\(uuid)", allow: [404]).status != 404
    }

    public func inventories(_ uuid: String) async throws -> (generation: Int, inventories: [String: Inventory]) {
        let object = try await send(.GET, "/resource_providers/\(uuid)/inventories").json as? [String: Any] ?? [:]
        var result: [String: Inventory] = [:]
        for (rc, value) in object["inventories"] as? [String: Any] ?? [:] {
            guard let fields = value as? [String: Any] else { continue }
            result[rc] = Inventory(
                total: fields["total"] as? Int ?? 0, reserved: fields["reserved"] as? Int ?? 0,
                minUnit: fields["min_unit"] as? Int ?? 1, maxUnit: fields["max_unit"] as? Int,
                stepSize: fields["step_size"] as? Int ?? 1,
                allocationRatio: (fields["allocation_ratio"] as? NSNumber)?.doubleValue ?? 1)
        }
        return (object["resource_provider_generation"] as? Int ?? 0, result)
    }

    /// Replaces a provider's inventories.
    /// - Returns: the provider's new generation.
    public func setInventories(_ uuid: String, generation: Int, _ inventories: [String: Inventory]) async throws -> Int {
        let answer = try await send(
            .PUT, "/resource_providers/\(uuid)/inventories",
            body: ["resource_provider_generation": generation, "inventories": Self.inventoriesJSON(inventories)])
        return (answer.json as? [String: Any])?["resource_provider_generation"] as? Int ?? generation + 1
    }

    static func inventoriesJSON(_ inventories: [String: Inventory]) -> [String: Any] {
        var body: [String: Any] = [:]
        for (rc, inventory) in inventories {
            body[rc] = [
                "total": inventory.total, "reserved": inventory.reserved, "min_unit": inventory.minUnit,
                "max_unit": inventory.maxUnit, "step_size": inventory.stepSize,
                "allocation_ratio": inventory.allocationRatio,
            ]
        }
        return body
    }

    /// The child providers of `root` (uuid → name and generation).
    public func children(of root: String) async throws -> [String: (name: String, generation: Int)] {
        let object = try await send(.GET, "/resource_providers?in_tree=\(root)").json as? [String: Any] ?? [:]
        var result: [String: (name: String, generation: Int)] = [:]
        for provider in object["resource_providers"] as? [[String: Any]] ?? []
        where provider["parent_provider_uuid"] as? String == root {
            if let uuid = provider["uuid"] as? String {
                result[uuid] = (provider["name"] as? String ?? "", provider["generation"] as? Int ?? 0)
            }
        }
        return result
    }

    /// Creates a provider under `parent`.
    public func createProvider(uuid: String, name: String, parent: String) async throws {
        _ = try await send(.POST, "/resource_providers", body: ["uuid": uuid, "name": name, "parent_provider_uuid": parent])
    }

    /// Replaces the inventories of several providers and the allocations of several consumers in one step
    /// (`POST /reshaper`, microversion 1.30).
    public func reshape(inventories: [String: (generation: Int, inventories: [String: Inventory])], allocations: [ConsumerWrite])
        async throws
    {
        guard version >= Microversion(1, 30) else {
            throw PlacementClientError(status: 0, code: nil, detail: "reshaping needs microversion 1.30, Placement speaks \(version)",
                                       request: "POST \(baseURL)/reshaper")
        }
        var body: [String: Any] = ["inventories": inventories.mapValues { entry in
            ["resource_provider_generation": entry.generation, "inventories": Self.inventoriesJSON(entry.inventories)] as [String: Any]
        }]
        body["allocations"] = Dictionary(uniqueKeysWithValues: allocations.map { ($0.consumer, allocationJSON($0)) })
        _ = try await send(.POST, "/reshaper", body: body)
    }

    func allocationJSON(_ write: ConsumerWrite) -> [String: Any] {
        var entry: [String: Any] = [
            "allocations": write.allocations.filter { !$0.value.isEmpty }.mapValues { ["resources": $0] },
            "project_id": write.projectID, "user_id": write.userID,
            "consumer_generation": write.generation.map { $0 as Any } ?? NSNull(),
        ]
        if version >= Microversion(1, 38) { entry["consumer_type"] = write.consumerType }
        return entry
    }

    /// A provider's traits and generation; `nil` when there is no such provider.
    public func traits(_ uuid: String) async throws -> (generation: Int, traits: Set<String>)? {
        let answer = try await send(.GET, "/resource_providers/\(uuid)/traits", allow: [404])
        guard answer.status == 200, let object = answer.json as? [String: Any] else { return nil }
        return (object["resource_provider_generation"] as? Int ?? 0, Set(object["traits"] as? [String] ?? []))
    }

    public func setTraits(_ uuid: String, generation: Int, _ traits: Set<String>) async throws {
        _ = try await send(
            .PUT, "/resource_providers/\(uuid)/traits",
            body: ["resource_provider_generation": generation, "traits": traits.sorted()])
    }

    /// Creates a custom trait if it does not exist.
    public func ensureTrait(_ name: String) async throws {
        _ = try await send(.PUT, "/traits/\(name)")
    }

    /// Creates a custom resource class if it does not exist.
    public func ensureResourceClass(_ name: String) async throws {
        _ = try await send(.PUT, "/resource_classes/\(name)")
    }

    // MARK: Allocations

    /// What consumers hold on a provider (consumer → class → amount); empty when there is no such provider.
    public func providerAllocations(_ uuid: String) async throws -> [String: [String: Int]] {
        let answer = try await send(.GET, "/resource_providers/\(uuid)/allocations", allow: [404])
        guard answer.status == 200 else { return [:] }
        var result: [String: [String: Int]] = [:]
        for (consumer, value) in (answer.json as? [String: Any])?["allocations"] as? [String: Any] ?? [:] {
            result[consumer] = ((value as? [String: Any])?["resources"] as? [String: Int]) ?? [:]
        }
        return result
    }

    /// What one consumer holds, with its generation (`nil`: Placement has no such consumer).
    public func consumerAllocations(_ consumer: String) async throws -> (allocations: NodeAmounts, generation: Int?) {
        let object = try await send(.GET, "/allocations/\(consumer)").json as? [String: Any] ?? [:]
        var result: NodeAmounts = [:]
        for (provider, value) in object["allocations"] as? [String: Any] ?? [:] {
            result[provider] = ((value as? [String: Any])?["resources"] as? [String: Int]) ?? [:]
        }
        return (result, object["consumer_generation"] as? Int)
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
        var body: [String: Any] = [:]
        for write in writes { body[write.consumer] = allocationJSON(write) }
        _ = try await send(.POST, "/allocations", body: body)
    }

    // MARK: HTTP

    /// Sends one request with the agent's token and microversion.
    /// - Parameter allow: statuses besides 2xx that are answers, not errors (e.g. 404 for "none").
    func send(
        _ method: HTTPMethod, _ path: String, body: Any? = nil, allow: Set<Int> = [], versioned: Bool = true
    ) async throws -> (status: Int, json: Any?) {
        let answer = try await exchange(
            method, path, body: try body.map { try JSONSerialization.data(withJSONObject: $0) }, versioned: versioned)
        let json = answer.bytes.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(answer.bytes))
        if (200..<300).contains(answer.status) || allow.contains(answer.status) { return (answer.status, json) }
        throw Self.failure(status: answer.status, json: json, bytes: answer.bytes, request: "\(method.rawValue) \(baseURL)\(path)")
    }

    /// Sends one request and returns whatever came back; only a missing answer throws (status 0).
    func exchange(
        _ method: HTTPMethod, _ path: String, body: Data?, versioned: Bool = true
    ) async throws -> (status: Int, bytes: [UInt8]) {
        let label = "\(method.rawValue) \(baseURL)\(path)"
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "accept", value: "application/json")
        if let token { request.headers.add(name: "x-auth-token", value: token) }
        if versioned { request.headers.add(name: "openstack-api-version", value: "placement \(version)") }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await http.execute(request, timeout: timeout)
            var bytes = try await response.body.collect(upTo: 64 << 20)
            return (Int(response.status.code), bytes.readBytes(length: bytes.readableBytes) ?? [])
        } catch {
            throw PlacementClientError(status: 0, code: nil, detail: "\(error)", request: label)
        }
    }

    /// The error an answer outside 2xx stands for, with Placement's code and the specific part of its detail.
    static func failure(status: Int, json: Any?, bytes: [UInt8], request label: String) -> PlacementClientError {
        let first = ((json as? [String: Any])?["errors"] as? [[String: Any]])?.first
        // Placement's details open with a generic paragraph for the status ("There was a conflict when trying
        // to complete your request."): keep what follows it.
        var detail = first?["detail"] as? String ?? String(decoding: bytes.prefix(300), as: UTF8.self)
        if let range = detail.range(of: "\n\n") { detail = String(detail[range.upperBound...]) }
        return PlacementClientError(
            status: status, code: first?["code"] as? String,
            detail: detail.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: " "),
            request: label)
    }
}
