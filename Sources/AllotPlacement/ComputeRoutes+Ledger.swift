import AllotCore
import AllotTracker
import HTTPTypes

/// The ledger protocol of Allot's agents (``LedgerProtocol``): an agent that keeps no ledger of its own reads and
/// commits through the server's.
extension ComputeRoutes {
    /// `GET /compute/v1/ledger`: which ledger protocol this server speaks (agents probe it to choose between
    /// this ledger and a local one).
    func computeLedgerInfo() -> Reply {
        .json(.object(["ledger_protocol": .int(LedgerProtocol.version)]))
    }

    /// `POST /compute/v1/ledger/{call}`: one ledger call of an agent (see ``LedgerProtocol``). A commit also moves
    /// the embedded agent's live views of the nodes it touched.
    func computeLedger(_ call: Call) async throws -> Reply {
        guard let which = LedgerCall(rawValue: call.parameters[0]) else {
            throw PlacementError.notFound("No ledger call '\(call.parameters[0])'.")
        }
        // LedgerProtocol checks what an agent sends as the compute API checks it; a token bound to hosts writes
        // only for their nodes (403), decided on the same decoded request before anything runs.
        let hosts = auth.boundHosts(call.headers).map(Set.init)
        let data = try await LedgerProtocol.serve(which, body: call.body, backend: compute.ledger, authorize: { request in
            if let hosts { try await self.authorizeHosts(which, request, hosts: hosts, ledger: compute.ledger) }
        }) { result in
            await compute.tracker?.absorb(result)
        }
        return Reply(status: .ok, body: nil, headers: [(.contentType, "application/json")], raw: Array(data))
    }

    /// Refuses a write of a token bound to `hosts` that concerns no node of theirs: saving a node of another host
    /// (or taking over one saved under another host), removing one, or committing an operation none of whose
    /// nodes (the build's node; a move's destination and the instance's node; an operation's instance and
    /// migration nodes) is on those hosts. Reads and records the ledger does not know pass (the ledger answers).
    /// - Throws: `403` `allot.host_not_allowed`.
    func authorizeHosts(_ which: LedgerCall, _ request: LedgerRequest, hosts: Set<String>, ledger: any LedgerBackend)
        async throws
    {
        func refuse(_ node: String, _ host: String) -> PlacementError {
            PlacementError(
                .forbidden, "This token acts only for hosts \(hosts.sorted().joined(separator: ", ")); node \(node) is on host \(host).",
                code: ErrorCode("allot.host_not_allowed"))
        }
        switch which {
        case .saveNode:
            guard let node = request.computeNode else { return }
            guard hosts.contains(node.host) else { throw refuse(node.uuid, node.host) }
            if let existing = try await ledger.node(uuid: node.uuid)?.node, !hosts.contains(existing.host) {
                throw refuse(existing.uuid, existing.host)
            }
        case .removeNode:
            guard let uuid = request.uuid, let existing = try await ledger.node(uuid: uuid)?.node else { return }
            guard hosts.contains(existing.host) else { throw refuse(existing.uuid, existing.host) }
        case .commit:
            guard let operation = request.operation else { return }
            var nodes: [String] = []
            switch operation {
            case .build(let instance): nodes.append(instance.node)
            case .move(let migration): nodes.append(migration.destNode)
            default: break
            }
            if let uuid = operation.instanceUUID, let instance = try await ledger.instance(uuid: uuid) {
                nodes.append(instance.node)
            }
            if let uuid = operation.migrationUUID, let migration = try await ledger.migration(uuid: uuid) {
                nodes += [migration.sourceNode, migration.destNode]
            }
            var owners: [(String, String)] = []
            for node in Set(nodes).sorted() where !node.isEmpty {
                guard let record = try await ledger.node(uuid: node)?.node else { continue }
                if hosts.contains(record.host) { return }
                owners.append((record.uuid, record.host))
            }
            if let (node, host) = owners.first { throw refuse(node, host) }
        default:
            return
        }
    }
}
