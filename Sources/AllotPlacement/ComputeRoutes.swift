import AllotCore
import AllotStore
public import AllotTracker
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The compute side of `allot serve`: the ledger, and the embedded agent when there is one.
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
    func perform(_ operation: ComputeOperation) async throws -> ComputeChange {
        if let tracker { return try await tracker.perform(operation) }
        return try await ledger.commit(operation).change
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

extension PlacementResponder {
    func requireCompute() throws -> ComputeService {
        guard let compute else { throw PlacementError.notFound("The compute API is not enabled on this server.") }
        return compute
    }

    func uuidParameter(_ call: Call, _ index: Int) throws -> String {
        guard let uuid = UUIDText.normalized(call.parameters[index]) else {
            throw PlacementError.badRequest("'\(call.parameters[index])' is not a valid UUID.")
        }
        return uuid
    }

    // MARK: Nodes

    func computeNodes(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        var nodes: [JSONValue] = []
        let topology: Bool
        switch call.queryValue("topology") {
        case nil, "false", "0": topology = false
        case "true", "1": topology = true
        case let other?: throw PlacementError.badRequest("'topology' must be true or false, not '\(other)'.")
        }
        for (node, live) in try await compute.current(try await compute.ledger.nodes(host: call.queryValue("host"))) {
            nodes.append(try await nodeJSON(node, live: live, compute: compute, topology: topology))
        }
        return .json(.object(["nodes": .array(nodes)]))
    }

    func computeNode(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        let uuid = try uuidParameter(call, 0)
        guard let (stored, _) = try await compute.ledger.node(uuid: uuid) else { throw ComputeError.nodeNotFound(uuid) }
        let (node, live) = try await compute.current([stored])[0]
        return .json(try await nodeJSON(node, live: live, compute: compute))
    }

    /// A node (from ``ComputeService/current(_:)``: live when the embedded agent manages it, else as saved with
    /// the ledger's usage and stats); with its NUMA cells and PCI devices when `topology` (`null` when its driver
    /// reports none), and what each consumer holds of them (`host_claims`: pinned CPUs, pages, devices).
    func nodeJSON(_ node: ComputeNode, live: Bool, compute: ComputeService, topology: Bool = true) async throws -> JSONValue {
        var free: [String: JSONValue] = [:]
        for (name, inventory) in node.inventories {
            free[name] = .int(max(0, inventory.capacity - (node.usage[name] ?? 0)))
        }
        var fields: [String: JSONValue] = [
            "uuid": .string(node.uuid), "hostname": .string(node.hostname), "host": .string(node.host),
            "driver": .string(node.driver), "disabled": .bool(node.disabled),
            "inventories": .sortedObject(node.inventories.mapValues { inventory in
                .object([
                    "total": .int(inventory.total), "reserved": .int(inventory.reserved),
                    "min_unit": .int(inventory.minUnit), "max_unit": .int(inventory.maxUnit),
                    "step_size": .int(inventory.stepSize), "allocation_ratio": .double(inventory.allocationRatio),
                ])
            }),
            "usage": .sortedObject(node.usage.mapValues { .int($0) }), "free": .sortedObject(free),
            "traits": .array(node.traits.sorted().map { .string($0) }),
            "stats": .sortedObject(node.stats.mapValues { .int($0) }),
            "live": .bool(live), "updated_at": .double(node.updatedAt),
        ]
        if topology {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            fields["topology"] = node.topology.flatMap { try? JSONValue.parse(encoder.encode($0)) } ?? .null
            let claims = node.topology == nil ? [:] : try await compute.ledger.hostClaims(node: node.uuid)
            fields["host_claims"] = .sortedObject(claims.mapValues { claim in
                .object(["numa": Self.numaJSON(claim.numa), "pci_devices": .array(claim.pciDevices.map { .string($0) })])
            })
            // Each device's status: available, claimed (its instance is building, or a move holds it), allocated,
            // unavailable (its PF or a VF of it is held), removed (gone from the host while held), unassignable
            // (no device spec admits it).
            if let topology = node.topology {
                var devices = PCITracker(devices: topology.devices, specs: node.hostConfig?.pciSpecs ?? [])
                for (consumer, claim) in claims where !claim.pciDevices.isEmpty {
                    let active = try await compute.ledger.instance(uuid: consumer).map { $0.vmState != .building } ?? false
                    devices.hold(claim.pciDevices, consumer: consumer, allocated: active)
                }
                var status: [String: JSONValue] = [:]
                for address in Set(topology.devices.map(\.address)).union(devices.records.keys) {
                    guard let record = devices.records[address] else {
                        status[address] = .object(["status": .string("unassignable")])
                        continue
                    }
                    var entry: [String: JSONValue] = ["status": .string(record.status.rawValue)]
                    if let consumer = record.consumer { entry["consumer"] = .string(consumer) }
                    status[address] = .sortedObject(entry)
                }
                fields["pci_device_status"] = .sortedObject(status)
            }
        }
        return .sortedObject(fields)
    }

    // MARK: Instances

    func computeInstances(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        let node = try call.queryValue("node").map { text in
            guard let uuid = UUIDText.normalized(text) else { throw PlacementError.badRequest("node must be a UUID") }
            return uuid
        }
        let deleted = call.queryValue("deleted") == "true"
        let instances = try await compute.ledger.instances(node: node, includeDeleted: deleted)
        return .json(.object(["instances": .array(instances.map(Self.instanceJSON))]))
    }

    func computeInstance(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        let uuid = try uuidParameter(call, 0)
        guard let instance = try await compute.ledger.instance(uuid: uuid) else { throw ComputeError.instanceNotFound(uuid) }
        return .json(Self.instanceJSON(instance))
    }

    /// `POST /compute/v1/instances`: the build claim.
    func computeBuild(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        let instance = try BuildInstanceBody.read(call).instance
        let change = try await compute.perform(.build(instance))
        return .json(Self.changeJSON(change), status: change.isNoOp ? .ok : .created)
    }

    func computeInstanceState(_ call: Call) async throws -> Reply {
        let uuid = try uuidParameter(call, 0)
        let body = try InstanceStateBody.read(call)
        return try await computeOperation(
            call, .update(instance: uuid, vmState: body.vmState, taskState: body.taskState, osType: body.osType))
    }

    func computeOperation(_ call: Call, _ operation: ComputeOperation) async throws -> Reply {
        let compute = try requireCompute()
        let change = try await compute.perform(operation)
        return .json(Self.changeJSON(change))
    }

    // MARK: Migrations

    func computeMigrations(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        let node = try call.queryValue("node").map { text in
            guard let uuid = UUIDText.normalized(text) else { throw PlacementError.badRequest("node must be a UUID") }
            return uuid
        }
        let migrations = try await compute.ledger.migrations(node: node, inProgressOnly: call.queryValue("in_progress") == "true")
        return .json(.object(["migrations": .array(migrations.map(Self.migrationJSON))]))
    }

    func computeMigration(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        let uuid = try uuidParameter(call, 0)
        guard let migration = try await compute.ledger.migration(uuid: uuid) else { throw ComputeError.migrationNotFound(uuid) }
        return .json(Self.migrationJSON(migration))
    }

    /// `POST /compute/v1/migrations`: a move claim at the destination.
    func computeMove(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        let migration = try MoveBody.read(call).migration
        let change = try await compute.perform(.move(migration))
        return .json(Self.changeJSON(change), status: change.isNoOp ? .ok : .created)
    }

    func computeMigrationAction(_ call: Call) async throws -> Reply {
        let uuid = try uuidParameter(call, 0)
        let operation: ComputeOperation
        switch call.parameters[1] {
        case "finish": operation = .finish(migration: uuid)
        case "confirm": operation = .confirm(migration: uuid)
        case "revert": operation = .revert(migration: uuid)
        case "rollback": operation = .rollback(migration: uuid)
        case "progress":
            let status = try MigrationProgressBody.read(call).status
            operation = .progress(migration: uuid, status: status)
        default:
            throw PlacementError.notFound("The resource could not be found.")
        }
        return try await computeOperation(call, operation)
    }

    // MARK: Ledger protocol (agents)

    /// `GET /compute/v1/ledger`: which ledger protocol this server speaks (agents probe it to choose between
    /// this ledger and a local one).
    func computeLedgerInfo() throws -> Reply {
        _ = try requireCompute()
        return .json(.object(["ledger_protocol": .int(LedgerProtocol.version)]))
    }

    /// `POST /compute/v1/ledger/{call}`: one ledger call of an agent (see ``LedgerProtocol``). A commit also moves
    /// the embedded agent's live views of the nodes it touched.
    func computeLedger(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        guard let which = LedgerCall(rawValue: call.parameters[0]) else {
            throw PlacementError.notFound("No ledger call '\(call.parameters[0])'.")
        }
        // LedgerProtocol checks what an agent sends as the compute API checks it; a token bound to hosts writes
        // only for their nodes (403), decided on the same decoded request before anything runs.
        let hosts = configuration.auth.boundHosts(call.headers).map(Set.init)
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

    // MARK: Audit and events

    func computeAudit(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        guard let tracker = compute.tracker else {
            throw PlacementError.conflict("This server runs no agent (--no-agent); audit the agents instead.")
        }
        let report = try await tracker.audit()
        func strings(_ list: [String]) -> JSONValue { .array(list.map { .string($0) }) }
        return .json(.object([
            "nodes": .int(report.nodes), "added": strings(report.added), "removed": strings(report.removed),
            "removal_refused": .sortedObject(report.removalRefused.mapValues { .string($0) }),
            "invalid": .sortedObject(report.invalid.mapValues { .string($0) }), "saved": strings(report.saved),
            "orphans": .sortedObject(report.orphans.mapValues(strings)),
            "deleted_allocations": strings(report.deletedAllocations), "repaired": strings(report.repaired),
            "unknown_consumers": strings(report.unknownConsumers), "refused_repairs": strings(report.refusedRepairs),
            "drift": strings(report.drift),
            "cleaned_evacuations": strings(report.cleanedEvacuations),
            "devices_appeared": strings(report.devicesAppeared), "devices_vanished": strings(report.devicesVanished),
            "devices_held_but_gone": .sortedObject(report.devicesHeldButGone.mapValues { .string($0) }),
            "reshaped": strings(report.reshaped),
        ]))
    }

    /// `GET /compute/v1/events`: Server-Sent Events, one per tracker event; `?after=N` first replays the kept
    /// events after sequence N.
    func computeEvents(_ call: Call) async throws -> Reply {
        let compute = try requireCompute()
        guard let events = compute.tracker?.events else {
            throw PlacementError.conflict("This server runs no agent (--no-agent); there are no tracker events.")
        }
        let after = try call.queryValue("after").map { text in
            guard let number = Int(text), number >= 0 else { throw PlacementError.badRequest("after must be a number") }
            return number
        }
        let stream = events.subscribe()
        let replay = after.map { events.recent(after: $0) } ?? []
        let body = ResponseBody { writer in
            var last = 0
            func send(_ event: TrackerEvent) async throws {
                guard event.sequence > last else { return }
                last = event.sequence
                try await writer.write(ByteBuffer(string: "id: \(event.sequence)\nevent: \(event.type)\ndata: \(event.json)\n\n"))
            }
            try await writer.write(ByteBuffer(string: ": allot tracker events\n\n"))
            for event in replay { try await send(event) }
            for await event in stream { try await send(event) }
            try await writer.finish(nil)
        }
        return Reply(status: .ok, body: nil, headers: [(.contentType, "text/event-stream"), (.cacheControl, "no-cache")],
                     stream: body)
    }

    // MARK: JSON

    static func flavorJSON(_ flavor: Flavor) -> JSONValue {
        .object([
            "name": .string(flavor.name), "vcpus": .int(flavor.vcpus), "memory_mb": .int(flavor.memoryMB),
            "root_gb": .int(flavor.rootGB), "ephemeral_gb": .int(flavor.ephemeralGB), "swap": .int(flavor.swapMB),
            "extra_specs": .sortedObject(flavor.extraSpecs.mapValues { .string($0) }),
        ])
    }

    static func instanceJSON(_ instance: Instance) -> JSONValue {
        .object([
            "uuid": .string(instance.uuid), "project_id": .string(instance.projectID), "user_id": .string(instance.userID),
            "node": .string(instance.node), "flavor": flavorJSON(instance.flavor),
            "boot_from_volume": .bool(instance.bootFromVolume), "vm_state": .string(instance.vmState.rawValue),
            "task_state": .stringOrNull(instance.taskState), "os_type": .stringOrNull(instance.osType),
            "updated_at": .double(instance.updatedAt), "numa": numaJSON(instance.numa),
            "pci_devices": .array(instance.pciDevices.map { .string($0) }),
        ])
    }

    /// A NUMA placement: per guest cell its host cell, pinning (guest vCPU → host CPU), held siblings, floating
    /// vCPUs, memory and page size; `null` when there is none.
    static func numaJSON(_ placement: NUMAPlacement?) -> JSONValue {
        guard let placement, let data = try? JSONEncoder().encode(placement), let value = try? JSONValue.parse(data) else {
            return .null
        }
        return value
    }

    static func migrationJSON(_ migration: Migration) -> JSONValue {
        .object([
            "uuid": .string(migration.uuid), "instance_uuid": .string(migration.instanceUUID),
            "kind": .string(migration.kind.rawValue), "status": .string(migration.status.rawValue),
            "in_progress": .bool(migration.status.isInProgress),
            "source_node": .string(migration.sourceNode), "dest_node": .string(migration.destNode),
            "old_flavor": flavorJSON(migration.oldFlavor), "new_flavor": flavorJSON(migration.newFlavor),
            "updated_at": .double(migration.updatedAt), "old_numa": numaJSON(migration.oldNUMA),
            "new_numa": numaJSON(migration.newNUMA),
            "old_pci_devices": .array(migration.oldPCIDevices.map { .string($0) }),
            "new_pci_devices": .array(migration.newPCIDevices.map { .string($0) }),
        ])
    }

    /// The records after an operation and what each of their consumers holds, by node.
    static func changeJSON(_ change: ComputeChange) -> JSONValue {
        let allocations = change.after.allocations.mapValues { nodes in
            JSONValue.sortedObject(nodes.mapValues { classes in .sortedObject(classes.mapValues { .int($0) }) })
        }
        return .object([
            "changed": .bool(!change.isNoOp),
            "instance": change.after.instance.map(instanceJSON) ?? .null,
            "migration": change.after.migration.map(migrationJSON) ?? .null,
            "allocations": .sortedObject(allocations),
        ])
    }
}

/// A compute API request body: a JSON object read member by member, with clear 400s (through the declarations of
/// ``ComputeRequestBody``).
struct ComputeBody {
    let fields: [String: JSONValue]

    init(_ call: Call) throws {
        if call.body.isEmpty {
            fields = [:]
            return
        }
        let value: JSONValue
        do { value = try JSONValue.parse(call.body) } catch {
            throw PlacementError.badRequest("Malformed JSON: \(error.message)")
        }
        guard let object = value.objectValue else { throw PlacementError.badRequest("The body must be a JSON object.") }
        fields = object
    }

    init(fields: [String: JSONValue]) { self.fields = fields }

    func allow(_ names: Set<String>) throws {
        if let unknown = fields.keys.filter({ !names.contains($0) }).sorted().first {
            throw PlacementError.badRequest("Unknown field '\(unknown)'.")
        }
    }

    func optionalString(_ name: String) throws -> String? {
        guard let value = fields[name], value != .null else { return nil }
        guard let text = value.stringValue else { throw PlacementError.badRequest("'\(name)' must be a string.") }
        return text
    }

    func string(_ name: String) throws -> String {
        guard let text = try optionalString(name) else { throw PlacementError.badRequest("'\(name)' is required.") }
        return text
    }

    func uuid(_ name: String) throws -> String {
        guard let uuid = UUIDText.normalized(try string(name)) else {
            throw PlacementError.badRequest("'\(name)' must be a UUID.")
        }
        return uuid
    }

    /// Project, user and OS type names: 1 to 255 of letters, digits, `-`, `_`, `.`.
    func optionalIdentifier(_ name: String) throws -> String? {
        guard let text = try optionalString(name) else { return nil }
        guard ComputeInput.isIdentifier(text) else { throw PlacementError.badRequest(ComputeInput.identifierMessage(name)) }
        return text
    }

    func identifier(_ name: String) throws -> String {
        guard let text = try optionalIdentifier(name) else { throw PlacementError.badRequest("'\(name)' is required.") }
        return text
    }

    func bool(_ name: String) throws -> Bool? {
        guard let value = fields[name], value != .null else { return nil }
        guard case .bool(let flag) = value else { throw PlacementError.badRequest("'\(name)' must be true or false.") }
        return flag
    }

    func integer(_ name: String, default fallback: Int? = nil) throws -> Int {
        guard let value = fields[name], value != .null else {
            if let fallback { return fallback }
            throw PlacementError.badRequest("'\(name)' is required.")
        }
        guard let number = value.intValue, number >= 0, number <= Limits.maxInt else {
            throw PlacementError.badRequest("'\(name)' must be an integer from 0 to \(Limits.maxInt).")
        }
        return number
    }

    func flavor(_ name: String) throws -> Flavor {
        guard let object = fields[name]?.objectValue else { throw PlacementError.badRequest("'\(name)' must be an object.") }
        let flavor = try FlavorBody.read(ComputeBody(fields: object)).flavor
        return flavor
    }
}
