public import AllotCore
public import AllotStore
public import Foundation
import NIOHTTP1

/// The calls of the ledger protocol: one per ``LedgerBackend`` method, each `POST /compute/v1/ledger/{call}` on
/// `allot serve` with a JSON ``LedgerRequest`` and a JSON ``LedgerAnswer``. It lets `allot agent` keep its
/// books in the server's compute ledger (one ledger for many hosts; moves between them in one transaction).
public enum LedgerCall: String, Sendable, CaseIterable {
    case node, nodes, nodeLedgers = "node-ledgers", generations, saveNode = "save-node", removeNode = "remove-node"
    case commit, reconcile, placementConsumers = "placement-consumers", changedProviders = "changed-providers"
    case placementTraits = "placement-traits", instance, migration, instances, migrations
    case hostClaims = "host-claims"
}

/// The arguments of one ledger call (only those the call takes are set).
public struct LedgerRequest: Codable, Sendable, Equatable {
    public var uuid: String?
    public var uuids: [String]?
    public var host: String?
    public var node: String?
    public var computeNode: ComputeNode?
    public var operation: ComputeOperation?
    public var consumer: String?
    public var since: Int?
    public var includeDeleted: Bool?
    public var inProgressOnly: Bool?

    public init() {}
}

/// One node's part of the ledger on the wire: its records (the view is rebuilt from them) and generation.
public struct WireNodeLedger: Codable, Sendable, Equatable {
    public var instances: [Instance]
    public var migrations: [Migration]
    public var generation: Int
}

/// The answer to one ledger call: its result, or the ledger's refusal (a ``ComputeError``: the call was
/// carried out and said no, so nothing changed).
public struct LedgerAnswer: Codable, Sendable, Equatable {
    public var refusal: ComputeError?
    public var node: ComputeNode?
    public var generation: Int?
    public var nodes: [ComputeNode]?
    public var ledgers: [String: WireNodeLedger]?
    public var generations: [String: Int]?
    public var save: NodeSave?
    public var commit: CommitResult?
    public var reconciled: SQLComputeLedger.Reconciled?
    public var consumers: [String: [String: [String: Int]]]?
    public var sequence: Int?
    public var providers: [String]?
    public var traits: [String]?
    public var instance: Instance?
    public var migration: Migration?
    public var instances: [Instance]?
    public var migrations: [Migration]?
    public var hostClaims: [String: HostClaim]?

    public init() {}
}

/// The server side of the ledger protocol.
public enum LedgerProtocol {
    /// Bumped when a call or field changes meaning; `GET /compute/v1/ledger` reports it.
    public static let version = 1

    /// Runs one call on `backend`: decodes the request, calls, encodes the answer. A ``ComputeError`` refusal is
    /// an answer (``LedgerAnswer/refusal``); other errors (Placement generation conflicts, a database failure)
    /// are thrown for the HTTP layer to report.
    /// - Parameters:
    ///   - authorize: decides whether the caller may make this (decoded, checked) request, before it runs; throws to
    ///     refuse (the HTTP layer answers its error).
    ///   - committed: told of every commit that changed something (the embedded agent's views follow).
    public static func serve(
        _ call: LedgerCall, body: Data, backend: any LedgerBackend,
        authorize: @Sendable (LedgerRequest) async throws -> Void = { _ in },
        committed: @Sendable (CommitResult) async -> Void = { _ in }
    ) async throws -> Data {
        let request: LedgerRequest
        do {
            request = try JSONCoding.decode(LedgerRequest.self, from: body)
        } catch {
            return Data(try JSONCoding.encode(refusal(.invalidRequest("ledger call '\(call.rawValue)': \(error)"))))
        }
        // What an agent sends is checked as the compute API checks it: a refusal, and nothing changes.
        if let problem = request.operation?.inputProblem ?? request.computeNode?.inputProblem {
            return Data(try JSONCoding.encode(refusal(problem)))
        }
        try await authorize(request)
        var answer = LedgerAnswer()
        do {
            answer = try await perform(call, request, backend: backend)
            if let result = answer.commit, !result.change.isNoOp { await committed(result) }
        } catch let error as ComputeError {
            answer = refusal(error)
        }
        return Data(try JSONCoding.encode(answer))
    }

    private static func refusal(_ error: ComputeError) -> LedgerAnswer {
        var answer = LedgerAnswer()
        answer.refusal = error
        return answer
    }

    private static func perform(
        _ call: LedgerCall, _ request: LedgerRequest, backend: any LedgerBackend
    ) async throws -> LedgerAnswer {
        func need<T>(_ value: T?, _ name: String) throws -> T {
            guard let value else { throw ComputeError.invalidRequest("ledger call '\(call.rawValue)' needs '\(name)'") }
            return value
        }
        var answer = LedgerAnswer()
        switch call {
        case .node:
            if let found = try await backend.node(uuid: try need(request.uuid, "uuid")) {
                answer.node = found.node
                answer.generation = found.generation
            }
        case .nodes:
            answer.nodes = try await backend.nodes(host: request.host)
        case .nodeLedgers:
            answer.ledgers = try await backend.nodeLedgers(uuids: try need(request.uuids, "uuids")).mapValues {
                WireNodeLedger(instances: Array($0.ledger.instances.values), migrations: Array($0.ledger.migrations.values),
                               generation: $0.generation)
            }
        case .generations:
            answer.generations = try await backend.generations(nodes: try need(request.uuids, "uuids"))
        case .saveNode:
            answer.save = try await backend.saveNode(try need(request.computeNode, "computeNode"))
        case .removeNode:
            try await backend.removeNode(uuid: try need(request.uuid, "uuid"))
        case .commit:
            answer.commit = try await backend.commit(try need(request.operation, "operation"))
        case .reconcile:
            let result = try await backend.reconcile(consumer: try need(request.consumer, "consumer"))
            answer.reconciled = result.outcome
            answer.generations = result.generations
        case .placementConsumers:
            answer.consumers = try await backend.placementConsumers(nodes: try need(request.uuids, "uuids"))
        case .changedProviders:
            let changes = try await backend.changedProviders(since: request.since)
            answer.sequence = changes.sequence
            answer.providers = changes.providers.map { $0.sorted() }
        case .placementTraits:
            answer.traits = try await backend.placementTraits(node: try need(request.node, "node"))?.sorted()
        case .instance:
            answer.instance = try await backend.instance(uuid: try need(request.uuid, "uuid"))
        case .migration:
            answer.migration = try await backend.migration(uuid: try need(request.uuid, "uuid"))
        case .instances:
            answer.instances = try await backend.instances(node: request.node, includeDeleted: request.includeDeleted ?? false)
        case .migrations:
            answer.migrations = try await backend.migrations(node: request.node, inProgressOnly: request.inProgressOnly ?? false)
        case .hostClaims:
            answer.hostClaims = try await backend.hostClaims(node: try need(request.node, "node"))
        }
        return answer
    }
}

/// The compute ledger of an `allot serve`, reached over HTTP (`allot agent --ledger remote`): the agent's claims,
/// moves and audits commit in the server's database, in the same transaction as its Placement allocations.
public final class RemoteLedger: LedgerBackend {
    let client: PlacementClient

    public init(client: PlacementClient) {
        self.client = client
    }

    /// Whether the service behind `client` keeps a compute ledger this agent can use (an `allot serve` speaking
    /// ledger protocol ``LedgerProtocol/version``); `false` for upstream Placement.
    /// - Throws: when the service answers with something else than 200 or 404 (e.g. 403: the token may not use it).
    public static func isOffered(by client: PlacementClient) async throws -> Bool {
        struct Offer: Decodable {
            var ledgerProtocol: Int
            enum CodingKeys: String, CodingKey { case ledgerProtocol = "ledger_protocol" }
        }
        let offer = try await client.service.send(.GET, "/compute/v1/ledger", allow: [404], as: Offer.self)
        return offer?.ledgerProtocol == LedgerProtocol.version
    }

    /// Sends one call; a refusal is rethrown as the same ``ComputeError``, an HTTP error as a ``PlacementError``
    /// of the same kind and code (so generation conflicts are retried as with a local ledger), no answer or an
    /// unreadable one as a ``ServiceClientError``.
    private func call(_ call: LedgerCall, _ request: LedgerRequest) async throws -> LedgerAnswer {
        let path = "/compute/v1/ledger/\(call.rawValue)"
        let label = client.service.label(.POST, path)
        let answer = try await client.service.exchange(.POST, path, body: try JSONCoding.encode(request))
        guard answer.status == 200 else {
            let failure = client.service.failure(answer, label)
            throw PlacementError(Self.kind(answer.status), "\(label): \(failure.detail)",
                                 code: failure.code.map(ErrorCode.init) ?? .undefined)
        }
        let decoded = try ServiceClient.decode(LedgerAnswer.self, from: answer.bytes, status: answer.status, request: label)
        if let refusal = decoded.refusal { throw refusal }
        return decoded
    }

    static func kind(_ status: Int) -> PlacementError.Kind {
        switch status {
        case 400: .badRequest
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 405: .methodNotAllowed
        case 406: .notAcceptable
        case 409: .conflict
        case 413: .payloadTooLarge
        case 415: .unsupportedMediaType
        case 501: .notImplemented
        default: .serviceUnavailable
        }
    }

    private func request(_ fill: (inout LedgerRequest) -> Void) -> LedgerRequest {
        var request = LedgerRequest()
        fill(&request)
        return request
    }

    public func node(uuid: String) async throws -> (node: ComputeNode, generation: Int)? {
        let answer = try await call(.node, request { $0.uuid = uuid })
        guard let node = answer.node else { return nil }
        guard let generation = answer.generation else {
            throw ServiceClientError(kind: .malformed, status: 200, detail: "a node without its generation", request: "node")
        }
        return (node, generation)
    }

    public func nodes(host: String?) async throws -> [ComputeNode] {
        try await call(.nodes, request { $0.host = host }).nodes ?? []
    }

    public func nodeLedgers(uuids: [String]) async throws -> [String: (ledger: NodeLedger, generation: Int)] {
        var result: [String: (ledger: NodeLedger, generation: Int)] = [:]
        for (uuid, wire) in try await call(.nodeLedgers, request { $0.uuids = uuids }).ledgers ?? [:] {
            result[uuid] = (NodeLedger(node: uuid, instances: wire.instances, migrations: wire.migrations), wire.generation)
        }
        return result
    }

    public func generations(nodes: [String]) async throws -> [String: Int] {
        try await call(.generations, request { $0.uuids = nodes }).generations ?? [:]
    }

    @discardableResult
    public func saveNode(_ node: ComputeNode) async throws -> NodeSave {
        guard let save = try await call(.saveNode, request { $0.computeNode = node }).save else {
            throw ServiceClientError(kind: .malformed, status: 200, detail: "no result", request: "save-node")
        }
        return save
    }

    public func removeNode(uuid: String) async throws {
        _ = try await call(.removeNode, request { $0.uuid = uuid })
    }

    public func commit(_ operation: ComputeOperation) async throws -> CommitResult {
        guard let result = try await call(.commit, request { $0.operation = operation }).commit else {
            throw ServiceClientError(kind: .malformed, status: 200, detail: "no result", request: "commit")
        }
        return result
    }

    public func reconcile(consumer: String) async throws -> (outcome: SQLComputeLedger.Reconciled, generations: [String: Int]) {
        let answer = try await call(.reconcile, request { $0.consumer = consumer })
        guard let outcome = answer.reconciled else {
            throw ServiceClientError(kind: .malformed, status: 200, detail: "no result", request: "reconcile")
        }
        return (outcome, answer.generations ?? [:])
    }

    public func placementConsumers(nodes: [String]) async throws -> [String: [String: [String: Int]]] {
        try await call(.placementConsumers, request { $0.uuids = nodes }).consumers ?? [:]
    }

    public func changedProviders(since: Int?) async throws -> (sequence: Int, providers: Set<String>?) {
        let answer = try await call(.changedProviders, request { $0.since = since })
        guard let sequence = answer.sequence else {
            throw ServiceClientError(kind: .malformed, status: 200, detail: "no sequence", request: "changed-providers")
        }
        return (sequence, answer.providers.map(Set.init))
    }

    public func placementTraits(node: String) async throws -> Set<String>? {
        try await call(.placementTraits, request { $0.node = node }).traits.map(Set.init)
    }

    public func instance(uuid: String) async throws -> Instance? {
        try await call(.instance, request { $0.uuid = uuid }).instance
    }

    public func migration(uuid: String) async throws -> Migration? {
        try await call(.migration, request { $0.uuid = uuid }).migration
    }

    public func instances(node: String?, includeDeleted: Bool) async throws -> [Instance] {
        try await call(.instances, request {
            $0.node = node
            $0.includeDeleted = includeDeleted
        }).instances ?? []
    }

    public func hostClaims(node: String) async throws -> [String: HostClaim] {
        try await call(.hostClaims, request { $0.node = node }).hostClaims ?? [:]
    }

    public func migrations(node: String?, inProgressOnly: Bool) async throws -> [Migration] {
        try await call(.migrations, request {
            $0.node = node
            $0.inProgressOnly = inProgressOnly
        }).migrations ?? []
    }
}
