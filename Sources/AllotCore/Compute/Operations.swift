/// One change a caller asks of the compute ledger. Instances and migrations are named by uuid, which also makes
/// every operation idempotent: repeating one whose result already holds changes nothing.
public enum ComputeOperation: Hashable, Sendable {
    /// Build claim: the instance (in `building`) on `instance.node`.
    case build(Instance)
    /// The build failed: release what the build claim took.
    case abortBuild(instance: String)
    /// Move claim at the destination: resize, cold migration, live migration or evacuation. The migration's
    /// `oldFlavor`, `sourceNode` and `status` are filled from the instance.
    case move(Migration)
    /// A move reports progress (pre-migrating → migrating → post-migrating; live: running).
    case progress(migration: String, status: MigrationStatus)
    /// The instance has arrived at the destination (resize/migration: finished; live: completed; evacuation: done).
    case finish(migration: String)
    /// Drop the move claim at the source: confirm a resize, or clean up an evacuated source.
    case confirm(migration: String)
    /// Revert a finished resize: back to the source with the old flavor.
    case revert(migration: String)
    /// Drop the move claim at the destination before arrival (a failed move, live-migration rollback).
    case rollback(migration: String)
    /// A vm/task state or OS type update (no resources change).
    case update(instance: String, vmState: VMState?, taskState: String??, osType: String?)
    /// The instance is deleted, whatever it was doing: everything it and its move held is released.
    case delete(instance: String)

    /// The instance the operation is about, when the operation names it directly.
    public var instanceUUID: String? {
        switch self {
        case .build(let instance): instance.uuid
        case .abortBuild(let uuid), .delete(let uuid), .update(let uuid, _, _, _): uuid
        case .move(let migration): migration.instanceUUID
        default: nil
        }
    }

    /// The migration the operation is about, when it names one.
    public var migrationUUID: String? {
        switch self {
        case .move(let migration): migration.uuid
        case .progress(let uuid, _), .finish(let uuid), .confirm(let uuid), .revert(let uuid), .rollback(let uuid): uuid
        default: nil
        }
    }

    /// A short name for events and logs.
    public var name: String {
        switch self {
        case .build: "build"
        case .abortBuild: "abort"
        case .move(let migration): migration.kind.rawValue
        case .progress: "progress"
        case .finish: "finish"
        case .confirm: "confirm"
        case .revert: "revert"
        case .rollback: "rollback"
        case .update: "update"
        case .delete: "delete"
        }
    }
}

/// Amounts by node (provider uuid), then by resource class.
public typealias NodeAmounts = [String: [String: Int]]

/// The records an operation reads: the instance and the migration it concerns (its in-progress one when the
/// operation names only the instance).
public struct LedgerRecords: Hashable, Sendable, Codable {
    public var instance: Instance?
    public var migration: Migration?

    public init(instance: Instance?, migration: Migration?) {
        self.instance = instance
        self.migration = migration
    }

    /// What each consumer holds in Placement for these records: the instance's uuid and the migration's uuid.
    ///
    /// Without a move in progress the instance holds its flavor on its node. During a move (and until it is
    /// confirmed, reverted or rolled back) the instance holds the new flavor at the destination and the migration
    /// holds the old flavor at the source, as Nova arranges Placement since Queens.
    public var allocations: [String: NodeAmounts] {
        var result: [String: NodeAmounts] = [:]
        guard let instance else { return result }
        // Child providers (PCI devices, NUMA cells) in Placement take their classes; a class a child takes
        // (VCPU, PCPU, MEMORY_MB of NUMA cells) is not also taken from the node's root.
        func with(_ amounts: NodeAmounts, _ children: NodeAmounts) -> NodeAmounts {
            guard !children.isEmpty else { return amounts }
            let moved = Set(children.values.flatMap(\.keys))
            var result = amounts.mapValues { $0.filter { !moved.contains($0.key) } }.filter { !$0.value.isEmpty }
            for (provider, classes) in children { result[provider, default: [:]].merge(classes, uniquingKeysWith: +) }
            return result
        }
        if let migration, migration.status.isInProgress, instance.holdsResources {
            result[instance.uuid] = with(
                [migration.destNode: migration.newFlavor.resources(bootFromVolume: instance.bootFromVolume)],
                migration.newChildAllocations)
            result[migration.uuid] = with(
                [migration.sourceNode: migration.oldFlavor.resources(bootFromVolume: instance.bootFromVolume)],
                migration.oldChildAllocations)
        } else {
            result[instance.uuid] = instance.holdsResources
                ? with([instance.node: instance.flavor.resources(bootFromVolume: instance.bootFromVolume)], instance.childAllocations)
                : [:]
            if let migration { result[migration.uuid] = [:] }
        }
        return result
    }
}

/// What a consumer holds of one node's topology: NUMA cells (pinned CPUs, pages) and PCI devices.
public struct HostClaim: Hashable, Sendable, Codable {
    public var numa: NUMAPlacement?
    public var pciDevices: [String]
    /// What the devices take of the node's PCI child providers in Placement (empty when not reported there).
    public var childAllocations: NodeAmounts

    public init(numa: NUMAPlacement?, pciDevices: [String], childAllocations: NodeAmounts = [:]) {
        self.numa = numa
        self.pciDevices = pciDevices
        self.childAllocations = childAllocations
    }

    public var isEmpty: Bool { numa == nil && pciDevices.isEmpty }

    private enum CodingKeys: String, CodingKey { case numa, pciDevices, childAllocations }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numa = try c.decodeIfPresent(NUMAPlacement.self, forKey: .numa)
        pciDevices = try c.decodeIfPresent([String].self, forKey: .pciDevices) ?? []
        childAllocations = try c.decodeIfPresent(NodeAmounts.self, forKey: .childAllocations) ?? [:]
    }
}

extension LedgerRecords {
    /// What each consumer holds of node topologies, by the same rule as ``allocations``: without a move the
    /// instance holds its placement on its node; during a move the instance holds the new placement at the
    /// destination and the migration the old one at the source.
    public var hostClaims: [String: [String: HostClaim]] {
        var result: [String: [String: HostClaim]] = [:]
        guard let instance, instance.holdsResources else { return result }
        func add(_ consumer: String, _ node: String, _ claim: HostClaim) {
            if !claim.isEmpty { result[consumer, default: [:]][node] = claim }
        }
        if let migration, migration.status.isInProgress {
            add(instance.uuid, migration.destNode, HostClaim(
                numa: migration.newNUMA, pciDevices: migration.newPCIDevices, childAllocations: migration.newChildAllocations))
            add(migration.uuid, migration.sourceNode, HostClaim(
                numa: migration.oldNUMA, pciDevices: migration.oldPCIDevices, childAllocations: migration.oldChildAllocations))
        } else {
            add(instance.uuid, instance.node, HostClaim(
                numa: instance.numa, pciDevices: instance.pciDevices, childAllocations: instance.childAllocations))
        }
        return result
    }
}

/// What an operation does: the records after it, and what every affected consumer holds afterwards.
public struct ComputeChange: Hashable, Sendable, Codable {
    public var before: LedgerRecords
    public var after: LedgerRecords

    public init(before: LedgerRecords, after: LedgerRecords) {
        self.before = before
        self.after = after
    }
    /// Nothing changes (the operation's result already held).
    public var isNoOp: Bool { before == after }

    /// Every consumer whose allocations differ, with what it holds afterwards (empty: nothing).
    public var allocations: [String: NodeAmounts] {
        let old = before.allocations, new = after.allocations
        var result: [String: NodeAmounts] = [:]
        for (consumer, amounts) in new where old[consumer] ?? [:] != amounts {
            result[consumer] = amounts
        }
        for (consumer, amounts) in old where new[consumer] == nil && !amounts.isEmpty {
            result[consumer] = [:]
        }
        return result
    }

    /// Every consumer whose NUMA or PCI claims differ, with what it holds afterwards (empty: nothing).
    public var hostClaims: [String: [String: HostClaim]] {
        let old = before.hostClaims, new = after.hostClaims
        var result: [String: [String: HostClaim]] = [:]
        for consumer in Set(old.keys).union(new.keys) where old[consumer] ?? [:] != new[consumer] ?? [:] {
            result[consumer] = new[consumer] ?? [:]
        }
        return result
    }

    /// Per node and class, how much more the change takes than before (only increases); these must fit.
    public var increases: NodeAmounts {
        var delta: NodeAmounts = [:]
        for amounts in after.allocations.values {
            for (node, classes) in amounts { for (rc, n) in classes { delta[node, default: [:]][rc, default: 0] += n } }
        }
        for amounts in before.allocations.values {
            for (node, classes) in amounts { for (rc, n) in classes { delta[node, default: [:]][rc, default: 0] -= n } }
        }
        return delta.compactMapValues { classes in
            let up = classes.filter { $0.value > 0 }
            return up.isEmpty ? nil : up
        }
    }

    /// The nodes whose usage changes.
    public var touchedNodes: Set<String> {
        var nodes = Set<String>()
        for amounts in before.allocations.values { nodes.formUnion(amounts.keys) }
        for amounts in after.allocations.values { nodes.formUnion(amounts.keys) }
        for records in [before, after] {
            if let instance = records.instance { nodes.insert(instance.node) }
            if let migration = records.migration { nodes.insert(migration.sourceNode); nodes.insert(migration.destNode) }
        }
        return nodes
    }
}

extension ComputeOperation {
    /// Applies this operation to the records it reads.
    /// - Parameters:
    ///   - records: the instance and migration as stored (`nil` when absent).
    ///   - now: seconds since 1970, stamped on what changes.
    /// - Returns: the change (a no-op when the result already held).
    /// - Throws: ``ComputeError`` for unknown records, illegal transitions and reused uuids.
    public func apply(to records: LedgerRecords, now: Double) throws(ComputeError) -> ComputeChange {
        var after = records
        switch self {
        case .build(let wanted):
            if let problem = wanted.flavor.problem { throw problem }
            if let existing = records.instance {
                guard existing.holdsResources else {
                    throw .conflictingRequest("instance \(wanted.uuid) was deleted; use a new uuid")
                }
                guard existing.node == wanted.node, existing.flavor == wanted.flavor,
                    existing.projectID == wanted.projectID, existing.userID == wanted.userID,
                    existing.bootFromVolume == wanted.bootFromVolume
                else { throw .conflictingRequest("instance \(wanted.uuid) is already claimed differently") }
                return ComputeChange(before: records, after: records)
            }
            var instance = wanted
            instance.vmState = .building
            instance.taskState = instance.taskState ?? "spawning"
            instance.updatedAt = now
            after.instance = instance

        case .abortBuild(let uuid):
            var instance = try Self.require(records.instance, uuid)
            if instance.vmState == .deleted { return ComputeChange(before: records, after: records) }
            guard instance.vmState == .building else {
                throw .illegalTransition("instance \(uuid) is \(instance.vmState.rawValue), not building; delete it instead")
            }
            instance.vmState = .deleted
            instance.taskState = nil
            instance.updatedAt = now
            after.instance = instance

        case .move(let wanted):
            var instance = try Self.require(records.instance, wanted.instanceUUID)
            if let existing = records.migration, existing.uuid == wanted.uuid {
                guard existing.kind == wanted.kind, existing.destNode == wanted.destNode,
                    existing.newFlavor == (wanted.kind == .resize ? wanted.newFlavor : existing.oldFlavor)
                else { throw .conflictingRequest("migration \(wanted.uuid) is already claimed differently") }
                return ComputeChange(before: records, after: records)
            }
            if let active = records.migration, active.status.isInProgress {
                throw .illegalTransition("instance \(instance.uuid) is already moving (migration \(active.uuid))")
            }
            guard instance.holdsResources else { throw .illegalTransition("instance \(instance.uuid) is deleted") }
            guard instance.vmState != .building, instance.vmState != .resized else {
                throw .illegalTransition("instance \(instance.uuid) is \(instance.vmState.rawValue) and cannot move")
            }
            if wanted.kind != .resize, wanted.kind != .migration, wanted.destNode == instance.node {
                throw .invalidRequest("a \(wanted.kind.rawValue) needs a destination other than the source node")
            }
            let newFlavor = wanted.kind == .resize ? wanted.newFlavor : instance.flavor
            if let problem = newFlavor.problem { throw problem }
            var migration = wanted
            migration.sourceNode = instance.node
            migration.oldFlavor = instance.flavor
            migration.newFlavor = newFlavor
            // The source's pinning and devices stay held for a revert; the destination's are chosen by the ledger.
            migration.oldNUMA = instance.numa
            migration.oldPCIDevices = instance.pciDevices
            migration.oldChildAllocations = instance.childAllocations
            migration.newNUMA = nil
            migration.newPCIDevices = []
            migration.newChildAllocations = [:]
            migration.status = wanted.kind == .resize || wanted.kind == .migration ? .preMigrating : .accepted
            migration.updatedAt = now
            instance.taskState = switch wanted.kind {
            case .resize, .migration: "resize_prep"
            case .liveMigration: "migrating"
            case .evacuation: "rebuilding"
            }
            instance.updatedAt = now
            after = LedgerRecords(instance: instance, migration: migration)

        case .progress(let uuid, let status):
            var migration = try Self.require(records.migration, migration: uuid)
            if migration.status == status { return ComputeChange(before: records, after: records) }
            guard migration.status.allowsProgress(to: status, kind: migration.kind) else {
                throw .illegalTransition(
                    "migration \(uuid) cannot go from \(migration.status.rawValue) to \(status.rawValue)")
            }
            migration.status = status
            migration.updatedAt = now
            after.migration = migration

        case .finish(let uuid):
            var migration = try Self.require(records.migration, migration: uuid)
            var instance = try Self.require(records.instance, migration.instanceUUID)
            let arrived: MigrationStatus = switch migration.kind {
            case .resize, .migration: .finished
            case .liveMigration: .completed
            case .evacuation: .done
            }
            if migration.status == arrived { return ComputeChange(before: records, after: records) }
            guard migration.status.isInProgress, !migration.status.hasArrived else {
                throw .illegalTransition("migration \(uuid) is \(migration.status.rawValue) and cannot finish")
            }
            migration.status = arrived
            migration.updatedAt = now
            instance.node = migration.destNode
            instance.flavor = migration.newFlavor
            instance.numa = migration.newNUMA
            instance.pciDevices = migration.newPCIDevices
            instance.childAllocations = migration.newChildAllocations
            instance.taskState = nil
            if migration.kind == .resize || migration.kind == .migration { instance.vmState = .resized }
            if migration.kind == .evacuation { instance.vmState = .active }
            instance.updatedAt = now
            after = LedgerRecords(instance: instance, migration: migration)

        case .confirm(let uuid):
            var migration = try Self.require(records.migration, migration: uuid)
            var instance = try Self.require(records.instance, migration.instanceUUID)
            let (from, to): (MigrationStatus, MigrationStatus) = switch migration.kind {
            case .resize, .migration: (.finished, .confirmed)
            case .evacuation: (.done, .completed)
            case .liveMigration: (.completed, .completed)
            }
            if migration.status == to { return ComputeChange(before: records, after: records) }
            guard migration.status == from else {
                throw .illegalTransition("migration \(uuid) is \(migration.status.rawValue); only \(from.rawValue) can be confirmed")
            }
            migration.status = to
            migration.updatedAt = now
            if instance.vmState == .resized { instance.vmState = .active }
            instance.updatedAt = now
            after = LedgerRecords(instance: instance, migration: migration)

        case .revert(let uuid):
            var migration = try Self.require(records.migration, migration: uuid)
            var instance = try Self.require(records.instance, migration.instanceUUID)
            if migration.status == .reverted { return ComputeChange(before: records, after: records) }
            guard migration.kind == .resize || migration.kind == .migration, migration.status == .finished else {
                throw .illegalTransition(
                    "migration \(uuid) (\(migration.kind.rawValue), \(migration.status.rawValue)) cannot be reverted")
            }
            migration.status = .reverted
            migration.updatedAt = now
            instance.node = migration.sourceNode
            instance.flavor = migration.oldFlavor
            instance.numa = migration.oldNUMA
            instance.pciDevices = migration.oldPCIDevices
            instance.childAllocations = migration.oldChildAllocations
            instance.vmState = .active
            instance.taskState = nil
            instance.updatedAt = now
            after = LedgerRecords(instance: instance, migration: migration)

        case .rollback(let uuid):
            var migration = try Self.require(records.migration, migration: uuid)
            var instance = try Self.require(records.instance, migration.instanceUUID)
            let failed: MigrationStatus = migration.kind == .resize || migration.kind == .migration ? .error : .failed
            if migration.status == failed { return ComputeChange(before: records, after: records) }
            guard migration.status.isInProgress, !migration.status.hasArrived else {
                throw .illegalTransition(
                    "migration \(uuid) is \(migration.status.rawValue); only a move that has not arrived can be rolled back")
            }
            migration.status = failed
            migration.updatedAt = now
            instance.taskState = nil
            instance.updatedAt = now
            after = LedgerRecords(instance: instance, migration: migration)

        case .update(let uuid, let vmState, let taskState, let osType):
            var instance = try Self.require(records.instance, uuid)
            if let vmState {
                guard instance.vmState.allowsUpdate(to: vmState) else {
                    throw .illegalTransition(
                        "instance \(uuid) cannot go from \(instance.vmState.rawValue) to \(vmState.rawValue) by an update")
                }
                instance.vmState = vmState
            }
            if let taskState {
                if let text = taskState, text.isEmpty || text.utf8.count > 255 {
                    throw .invalidRequest("task_state must have 1 to 255 bytes")
                }
                instance.taskState = taskState
            }
            if let osType {
                guard !osType.isEmpty, osType.utf8.count <= 255 else { throw .invalidRequest("os_type must have 1 to 255 bytes") }
                instance.osType = osType
            }
            if instance != records.instance { instance.updatedAt = now }
            after.instance = instance

        case .delete(let uuid):
            var instance = try Self.require(records.instance, uuid)
            if instance.vmState == .deleted { return ComputeChange(before: records, after: records) }
            instance.vmState = .deleted
            instance.taskState = nil
            instance.updatedAt = now
            after.instance = instance
            if var migration = records.migration, migration.status.isInProgress {
                migration.status = .cancelled
                migration.updatedAt = now
                after.migration = migration
            }
        }
        return ComputeChange(before: records, after: after)
    }

    private static func require(_ instance: Instance?, _ uuid: String) throws(ComputeError) -> Instance {
        guard let instance else { throw .instanceNotFound(uuid) }
        return instance
    }

    private static func require(_ migration: Migration?, migration uuid: String) throws(ComputeError) -> Migration {
        guard let migration, migration.uuid == uuid else { throw .migrationNotFound(uuid) }
        return migration
    }
}

extension ComputeOperation: Codable {
    private enum CodingKeys: String, CodingKey {
        case op, instance, migration, uuid, status, vmState, taskState, setsTaskState, osType
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let op = try c.decode(String.self, forKey: .op)
        func uuid() throws -> String { try c.decode(String.self, forKey: .uuid) }
        switch op {
        case "build": self = .build(try c.decode(Instance.self, forKey: .instance))
        case "abort": self = .abortBuild(instance: try uuid())
        case "move": self = .move(try c.decode(Migration.self, forKey: .migration))
        case "progress":
            self = .progress(migration: try uuid(), status: try c.decode(MigrationStatus.self, forKey: .status))
        case "finish": self = .finish(migration: try uuid())
        case "confirm": self = .confirm(migration: try uuid())
        case "revert": self = .revert(migration: try uuid())
        case "rollback": self = .rollback(migration: try uuid())
        case "update":
            // `taskState` is set (possibly to none) only when `setsTaskState` says so.
            let taskState: String?? = try c.decodeIfPresent(Bool.self, forKey: .setsTaskState) == true
                ? .some(try c.decodeIfPresent(String.self, forKey: .taskState)) : nil
            self = .update(
                instance: try uuid(), vmState: try c.decodeIfPresent(VMState.self, forKey: .vmState),
                taskState: taskState, osType: try c.decodeIfPresent(String.self, forKey: .osType))
        case "delete": self = .delete(instance: try uuid())
        default:
            throw DecodingError.dataCorruptedError(forKey: .op, in: c, debugDescription: "unknown operation '\(op)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .build(let instance):
            try c.encode("build", forKey: .op)
            try c.encode(instance, forKey: .instance)
        case .abortBuild(let uuid):
            try c.encode("abort", forKey: .op)
            try c.encode(uuid, forKey: .uuid)
        case .move(let migration):
            try c.encode("move", forKey: .op)
            try c.encode(migration, forKey: .migration)
        case .progress(let uuid, let status):
            try c.encode("progress", forKey: .op)
            try c.encode(uuid, forKey: .uuid)
            try c.encode(status, forKey: .status)
        case .finish(let uuid), .confirm(let uuid), .revert(let uuid), .rollback(let uuid), .delete(let uuid):
            try c.encode(name, forKey: .op)
            try c.encode(uuid, forKey: .uuid)
        case .update(let uuid, let vmState, let taskState, let osType):
            try c.encode("update", forKey: .op)
            try c.encode(uuid, forKey: .uuid)
            try c.encodeIfPresent(vmState, forKey: .vmState)
            if let taskState {
                try c.encode(true, forKey: .setsTaskState)
                try c.encodeIfPresent(taskState, forKey: .taskState)
            }
            try c.encodeIfPresent(osType, forKey: .osType)
        }
    }
}
