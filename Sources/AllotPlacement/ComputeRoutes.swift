import AllotCore
import AllotTracker
import HTTPTypes
import Hummingbird
import NIOCore

/// Allot's compute API (`/compute/v1`: nodes, instances, migrations, audit, events) and the ledger protocol of its
/// agents, over one ``ComputeService``. ``PlacementResponder`` routes a call here once it has authenticated it,
/// checked its version, headers and policy, and read its body.
struct ComputeRoutes: Sendable {
    let compute: ComputeService
    /// How the server authenticates: the ledger protocol limits tokens bound to hosts (``TokenRecord/hosts``).
    let auth: AuthMode

    /// The answer (404) of a server without compute ledger to the compute API.
    static let notEnabled = "The compute API is not enabled on this server."

    /// Runs the endpoint's handler.
    func handle(_ endpoint: Endpoint, _ call: Call) async throws -> Reply {
        switch endpoint {
        case .computeNodes: return try await computeNodes(call)
        case .computeNode: return try await computeNode(call)
        case .computeInstances: return try await computeInstances(call)
        case .computeBuild: return try await computeBuild(call)
        case .computeInstance: return try await computeInstance(call)
        case .computeDeleteInstance:
            return try await computeOperation(call, .delete(instance: try call.uuidParameter(0)))
        case .computeInstanceState: return try await computeInstanceState(call)
        case .computeInstanceAbort:
            return try await computeOperation(call, .abortBuild(instance: try call.uuidParameter(0)))
        case .computeMigrations: return try await computeMigrations(call)
        case .computeMove: return try await computeMove(call)
        case .computeMigration: return try await computeMigration(call)
        case .computeMigrationAction: return try await computeMigrationAction(call)
        case .computeAudit: return try await computeAudit(call)
        case .computeEvents: return try await computeEvents(call)
        case .computeLedgerInfo: return computeLedgerInfo()
        case .computeLedger: return try await computeLedger(call)
        case .root, .listProviders, .createProvider, .showProvider, .updateProvider, .deleteProvider, .listInventories,
            .replaceInventories, .deleteInventories, .createInventory, .showInventory, .updateInventory,
            .deleteInventory, .listResourceClasses, .createResourceClass, .showResourceClass, .updateResourceClass,
            .deleteResourceClass, .listTraits, .showTrait, .createTrait, .deleteTrait, .providerTraits,
            .setProviderTraits, .deleteProviderTraits, .providerAggregates, .setProviderAggregates,
            .consumerAllocations, .setConsumerAllocations, .deleteConsumerAllocations, .postAllocations,
            .providerAllocations, .providerUsages, .usages, .allocationCandidates, .reshaper, .computeFit:
            // Not the compute API's: the shell routes these elsewhere (``PlacementResponder/handle(_:_:)``).
            throw PlacementError.lookupFailed("")
        }
    }
}

extension ComputeRoutes {
    // MARK: Nodes

    func computeNodes(_ call: Call) async throws -> Reply {
        var nodes: [JSONValue] = []
        let topology: Bool
        switch call.queryValue("topology") {
        case nil, "false", "0": topology = false
        case "true", "1": topology = true
        case let other?: throw PlacementError.badRequest("'topology' must be true or false, not '\(other)'.")
        }
        let listing = try NodeListing(call)
        let stored = try await compute.ledger.nodes(host: call.queryValue("host"))
        var current: [(node: ComputeNode, live: Bool)]
        var total: Int?
        if var listing {
            if listing.key == .hostname {
                // Name order and the filters read only what the stored record holds (hostname, uuid, host, traits,
                // state): page first, then bring just the page's nodes up to date.
                let page = listing.apply(to: stored.map { ($0, false) })
                current = try await compute.current(page.map(\.0))
            } else {
                current = listing.apply(to: try await compute.current(stored))
            }
            total = listing.total
        } else {
            current = try await compute.current(stored)
        }
        for (node, live) in current {
            nodes.append(try await nodeJSON(node, live: live, topology: topology))
        }
        var answer: [String: JSONValue] = ["nodes": .array(nodes)]
        if let total { answer["total"] = .int(total) }
        return .json(.sortedObject(answer))
    }

    func computeNode(_ call: Call) async throws -> Reply {
        let uuid = try call.uuidParameter(0)
        guard let (stored, _) = try await compute.ledger.node(uuid: uuid) else { throw ComputeError.nodeNotFound(uuid) }
        let (node, live) = try await compute.current([stored])[0]
        return .json(try await nodeJSON(node, live: live))
    }

    /// A node (from ``ComputeService/current(_:)``: live when the embedded agent manages it, else as saved with
    /// the ledger's usage and stats); with its NUMA cells and PCI devices when `topology` (`null` when its driver
    /// reports none), and what each consumer holds of them (`host_claims`: pinned CPUs, pages, devices).
    func nodeJSON(_ node: ComputeNode, live: Bool, topology: Bool = true) async throws -> JSONValue {
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
        if let config = node.hostConfig {
            // Which host CPUs claims may pin (PCPU) and which run floating vCPUs (null: every CPU not dedicated).
            fields["cpu_dedicated_set"] = .array(config.dedicatedCPUs.sorted().map { .int($0) })
            fields["cpu_shared_set"] = config.sharedCPUs.map { .array($0.sorted().map { .int($0) }) } ?? .null
        }
        if topology {
            fields["topology"] = try node.topology.map { try JSONCoding.value(of: $0, sortedKeys: true) } ?? .null
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
        let node = try Self.nodeFilter(call)
        let deleted = call.queryValue("deleted") == "true"
        let instances = try await compute.ledger.instances(node: node, includeDeleted: deleted)
        return .json(.object(["instances": .array(instances.map(Self.instanceJSON))]))
    }

    func computeInstance(_ call: Call) async throws -> Reply {
        let uuid = try call.uuidParameter(0)
        guard let instance = try await compute.ledger.instance(uuid: uuid) else { throw ComputeError.instanceNotFound(uuid) }
        return .json(Self.instanceJSON(instance))
    }

    /// `POST /compute/v1/instances`: the build claim.
    func computeBuild(_ call: Call) async throws -> Reply {
        let instance = try BuildInstanceBody.read(call).instance
        let change = try await compute.perform(.build(instance))
        return .json(Self.changeJSON(change), status: change.isNoOp ? .ok : .created)
    }

    func computeInstanceState(_ call: Call) async throws -> Reply {
        let uuid = try call.uuidParameter(0)
        let body = try InstanceStateBody.read(call)
        return try await computeOperation(
            call, .update(instance: uuid, vmState: body.vmState, taskState: body.taskState, osType: body.osType))
    }

    func computeOperation(_ call: Call, _ operation: ComputeOperation) async throws -> Reply {
        let change = try await compute.perform(operation)
        return .json(Self.changeJSON(change))
    }

    /// The `node` query parameter of the instance and migration lists: a node uuid, normalised; `nil` when absent.
    static func nodeFilter(_ call: Call) throws -> String? {
        try call.queryValue("node").map { text in
            guard let uuid = UUIDText.normalized(text) else { throw PlacementError.badRequest("node must be a UUID") }
            return uuid
        }
    }

    // MARK: Migrations

    func computeMigrations(_ call: Call) async throws -> Reply {
        let node = try Self.nodeFilter(call)
        let migrations = try await compute.ledger.migrations(node: node, inProgressOnly: call.queryValue("in_progress") == "true")
        return .json(.object(["migrations": .array(migrations.map(Self.migrationJSON))]))
    }

    func computeMigration(_ call: Call) async throws -> Reply {
        let uuid = try call.uuidParameter(0)
        guard let migration = try await compute.ledger.migration(uuid: uuid) else { throw ComputeError.migrationNotFound(uuid) }
        return .json(Self.migrationJSON(migration))
    }

    /// `POST /compute/v1/migrations`: a move claim at the destination.
    func computeMove(_ call: Call) async throws -> Reply {
        let migration = try MoveBody.read(call).migration
        let change = try await compute.perform(.move(migration))
        return .json(Self.changeJSON(change), status: change.isNoOp ? .ok : .created)
    }

    func computeMigrationAction(_ call: Call) async throws -> Reply {
        let uuid = try call.uuidParameter(0)
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

    // MARK: Audit and events

    func computeAudit(_ call: Call) async throws -> Reply {
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
            "orphan_memory_mb": .sortedObject(report.orphanMemoryMB.mapValues { .int($0) }),
            "missing": .sortedObject(report.missing.mapValues(strings)),
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
    /// vCPUs, memory and page size, keys sorted; `null` when there is none. (It holds only integers, which always
    /// encode.)
    static func numaJSON(_ placement: NUMAPlacement?) -> JSONValue {
        guard let placement, let value = try? JSONCoding.value(of: placement, sortedKeys: true) else { return .null }
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
