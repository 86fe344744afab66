import AllotCore
import Metrics
public import AllotTracker

/// What the compute API serves (``ComputeRoutes``): the compute ledger, and the embedded agent when there is one
/// (`allot serve`'s own, or `allot agent` itself).
public struct ComputeService: Sendable {
    public let ledger: any LedgerBackend
    public let tracker: Tracker?

    public init(ledger: any LedgerBackend, tracker: Tracker?) {
        self.ledger = ledger
        self.tracker = tracker
    }

    /// These nodes as they stand in the ledger now, with whether the embedded agent manages each (`live`): its
    /// view brought up to the ledger's generation, or the saved record with the usage and stats of the ledger's
    /// records (the saved ones are as of the node's last audit, and commits through any replica move them).
    func current(_ stored: [ComputeNode]) async throws -> [(node: ComputeNode, live: Bool)] {
        let live = try await tracker?.current(nodes: stored.map(\.uuid)) ?? [:]
        let others = stored.map(\.uuid).filter { live[$0] == nil }
        let views = others.isEmpty ? [:] : try await ledger.nodeLedgers(uuids: others)
        return stored.map { record in
            if let current = live[record.uuid] { return (current.node, true) }
            var node = record
            if let view = views[record.uuid] {
                node.usage = view.ledger.usage
                node.stats = view.ledger.stats
            }
            return (node, false)
        }
    }

    /// Runs an operation through the embedded agent (live views, events) or straight on the ledger.
    /// Counts it in `allot_claims_total{operation, result}` (`ok`, or `refused` with a typed refusal, or `failed`)
    /// and times it in `allot_claim_duration_seconds` (the console charts both).
    func perform(_ operation: ComputeOperation) async throws -> ComputeChange {
        let started = ContinuousClock.now
        var result = "failed"
        defer {
            Counter(label: "allot_claims_total", dimensions: [("operation", operation.name), ("result", result)])
                .increment()
            if result == "ok" {
                Timer(label: "allot_claim_duration_seconds").recordNanoseconds(
                    (ContinuousClock.now - started).nanoseconds)
            }
        }
        do {
            let change: ComputeChange
            if let tracker { change = try await tracker.perform(operation) } else {
                change = try await ledger.commit(operation).change
            }
            result = "ok"
            return change
        } catch let error as ComputeError {
            result = "refused"
            throw error
        }
    }
}

extension ComputeError {
    /// The HTTP form of the refusal: 404 for unknown records, 409 for what does not fit or is not allowed now,
    /// 400 for malformed requests.
    var placementError: PlacementError {
        let kind: PlacementError.Kind = switch self {
        case .invalidFlavor, .invalidRequest: .badRequest
        case .nodeNotFound, .instanceNotFound, .migrationNotFound: .notFound
        default: .conflict
        }
        return PlacementError(kind, description, code: ErrorCode(code))
    }
}
