/// An instance as the compute ledger knows it.
public struct Instance: Hashable, Sendable, Codable {
    public var uuid: String
    public var projectID: String
    public var userID: String
    /// The flavor the instance runs with now (the new one once a resize has finished).
    public var flavor: Flavor
    /// Whether its root disk is a volume (then it uses no local root disk).
    public var bootFromVolume: Bool
    /// The compute node (its uuid, which is also its resource provider's) the instance is on.
    public var node: String
    public var vmState: VMState
    public var taskState: String?
    public var osType: String?
    /// Seconds since 1970 of the last change.
    public var updatedAt: Double
    /// The NUMA cells, pinned CPUs and pages the ledger chose on `node` (when the flavor asks for a topology).
    public var numa: NUMAPlacement?
    /// The PCI devices (addresses) the ledger claimed on `node` for the flavor's `pci_passthrough:alias`.
    public var pciDevices: [String]
    /// What the instance takes of the node's child providers in Placement: its PCI devices and NUMA cells, when
    /// the node reports them there (a class taken here is not taken from the node's root).
    public var childAllocations: NodeAmounts

    public init(
        uuid: String, projectID: String, userID: String, flavor: Flavor, bootFromVolume: Bool = false, node: String,
        vmState: VMState = .building, taskState: String? = nil, osType: String? = nil, updatedAt: Double = 0,
        numa: NUMAPlacement? = nil, pciDevices: [String] = [], childAllocations: NodeAmounts = [:]
    ) {
        self.numa = numa
        self.pciDevices = pciDevices
        self.childAllocations = childAllocations
        self.uuid = uuid
        self.projectID = projectID
        self.userID = userID
        self.flavor = flavor
        self.bootFromVolume = bootFromVolume
        self.node = node
        self.vmState = vmState
        self.taskState = taskState
        self.osType = osType
        self.updatedAt = updatedAt
    }

    /// Whether the instance holds resources on its node (deleted ones do not).
    public var holdsResources: Bool { vmState != .deleted }
}

/// Nova's vm states, with the moves between them that the ledger accepts.
public enum VMState: String, Hashable, Sendable, CaseIterable, Codable {
    case building, active, stopped, paused, suspended, rescued, resized, error, deleted

    /// Whether a plain state update (not a claim operation) may move an instance from `self` to `next`.
    ///
    /// `deleted` is reached only by deleting, `resized` only by finishing a resize, and nothing comes back to
    /// `building`; staying in the same state is allowed (idempotent updates).
    public func allowsUpdate(to next: VMState) -> Bool {
        if self == next { return true }
        switch (self, next) {
        case (.deleted, _), (_, .deleted), (_, .building), (_, .resized): return false
        case (.resized, _): return next == .error
        default: return true
        }
    }
}

/// The kinds of move Nova makes.
public enum MigrationKind: String, Hashable, Sendable, CaseIterable, Codable {
    case resize
    case migration
    case liveMigration = "live-migration"
    case evacuation
}

/// A migration's status. In-progress statuses hold resources; the others are final.
public enum MigrationStatus: String, Hashable, Sendable, CaseIterable, Codable {
    case accepted
    case preMigrating = "pre-migrating"
    case migrating
    case postMigrating = "post-migrating"
    case running
    case finished
    case done
    case confirmed
    case reverted
    case completed
    case error
    case failed
    case cancelled

    /// Whether a migration in this status still holds resources (new flavor at the destination, old at the source).
    public var isInProgress: Bool {
        switch self {
        case .accepted, .preMigrating, .migrating, .postMigrating, .running, .finished, .done: true
        default: false
        }
    }

    /// Whether the instance has already arrived at the destination.
    public var hasArrived: Bool { self == .finished || self == .done }

    /// The statuses a progress report may move a migration of `kind` to from `self` (before it arrives).
    public func allowsProgress(to next: MigrationStatus, kind: MigrationKind) -> Bool {
        guard isInProgress, !hasArrived else { return false }
        let order: [MigrationStatus] = kind == .liveMigration
            ? [.accepted, .preMigrating, .running, .postMigrating]
            : [.accepted, .preMigrating, .migrating, .postMigrating]
        guard let from = order.firstIndex(of: self), let to = order.firstIndex(of: next) else { return false }
        return to >= from
    }
}

/// A move of an instance from a source node to a destination node (the same one for a same-host resize).
public struct Migration: Hashable, Sendable, Codable {
    public var uuid: String
    public var instanceUUID: String
    public var kind: MigrationKind
    public var status: MigrationStatus
    public var sourceNode: String
    public var destNode: String
    public var oldFlavor: Flavor
    public var newFlavor: Flavor
    public var updatedAt: Double
    /// The migration context: NUMA placement and PCI devices at the source (held for a revert) and at the
    /// destination (claimed for the move).
    public var oldNUMA: NUMAPlacement?
    public var newNUMA: NUMAPlacement?
    public var oldPCIDevices: [String]
    public var newPCIDevices: [String]
    public var oldChildAllocations: NodeAmounts
    public var newChildAllocations: NodeAmounts

    public init(
        uuid: String, instanceUUID: String, kind: MigrationKind, status: MigrationStatus, sourceNode: String,
        destNode: String, oldFlavor: Flavor, newFlavor: Flavor, updatedAt: Double = 0, oldNUMA: NUMAPlacement? = nil,
        newNUMA: NUMAPlacement? = nil, oldPCIDevices: [String] = [], newPCIDevices: [String] = [],
        oldChildAllocations: NodeAmounts = [:], newChildAllocations: NodeAmounts = [:]
    ) {
        self.oldChildAllocations = oldChildAllocations
        self.newChildAllocations = newChildAllocations
        self.oldNUMA = oldNUMA
        self.newNUMA = newNUMA
        self.oldPCIDevices = oldPCIDevices
        self.newPCIDevices = newPCIDevices
        self.uuid = uuid
        self.instanceUUID = instanceUUID
        self.kind = kind
        self.status = status
        self.sourceNode = sourceNode
        self.destNode = destNode
        self.oldFlavor = oldFlavor
        self.newFlavor = newFlavor
        self.updatedAt = updatedAt
    }
}

/// Why the compute ledger refused an operation. Each case names its reason; none changes anything.
public enum ComputeError: Error, Hashable, Sendable, CustomStringConvertible, Codable {
    case invalidFlavor(String)
    case invalidRequest(String)
    case nodeNotFound(String)
    case instanceNotFound(String)
    case migrationNotFound(String)
    /// The request does not fit: the class and what was asked, free and the rule broken.
    case doesNotFit(node: String, resourceClass: String, requested: Int, free: Int)
    case unitRule(node: String, resourceClass: String, requested: Int, rule: String)
    case noInventory(node: String, resourceClass: String)
    case missingTrait(node: String, trait: String)
    case forbiddenTrait(node: String, trait: String)
    /// The record exists but differs from the request (idempotency keys reused for something else).
    case conflictingRequest(String)
    /// The instance or migration is not in a state that allows the operation.
    case illegalTransition(String)
    /// Another writer changed the node meanwhile; retry.
    case concurrentUpdate(String)
    case nodeDisabled(String)
    /// The node's NUMA cells or PCI devices cannot take what the flavor asks (pinning, pages, devices).
    case topologyDoesNotFit(node: String, reason: String)
    /// An external Placement service refused (or could not take) the allocations of a claim that fitted the
    /// ledger; the ledger's part was undone. `nodes` are the nodes whose ledger moved (twice: claim and undo).
    case placementRefused(reason: String, nodes: [String])

    public var description: String {
        switch self {
        case .invalidFlavor(let text): "invalid flavor: \(text)"
        case .invalidRequest(let text): "invalid request: \(text)"
        case .nodeNotFound(let node): "no compute node \(node)"
        case .instanceNotFound(let uuid): "no instance \(uuid)"
        case .migrationNotFound(let uuid): "no migration \(uuid)"
        case .doesNotFit(let node, let rc, let requested, let free):
            "does not fit on node \(node): \(rc) requested \(requested), free \(free)"
        case .unitRule(let node, let rc, let requested, let rule):
            "does not fit on node \(node): \(rc) amount \(requested) breaks \(rule)"
        case .noInventory(let node, let rc): "does not fit on node \(node): it has no \(rc)"
        case .missingTrait(let node, let trait): "node \(node) lacks required trait \(trait)"
        case .forbiddenTrait(let node, let trait): "node \(node) has forbidden trait \(trait)"
        case .conflictingRequest(let text): "conflicting request: \(text)"
        case .illegalTransition(let text): "illegal transition: \(text)"
        case .concurrentUpdate(let text): "concurrent update: \(text)"
        case .nodeDisabled(let node): "compute node \(node) is disabled"
        case .topologyDoesNotFit(let node, let reason): "does not fit on node \(node): \(reason)"
        case .placementRefused(let reason, _): "Placement refused the allocations (the claim was undone): \(reason)"
        }
    }

    /// A short stable code for APIs and scripts.
    public var code: String {
        switch self {
        case .invalidFlavor: "allot.invalid_flavor"
        case .invalidRequest: "allot.invalid_request"
        case .nodeNotFound: "allot.node_not_found"
        case .instanceNotFound: "allot.instance_not_found"
        case .migrationNotFound: "allot.migration_not_found"
        case .doesNotFit, .unitRule, .noInventory, .topologyDoesNotFit: "allot.does_not_fit"
        case .missingTrait, .forbiddenTrait: "allot.traits_not_met"
        case .conflictingRequest: "allot.conflicting_request"
        case .illegalTransition: "allot.illegal_transition"
        case .concurrentUpdate: "allot.concurrent_update"
        case .nodeDisabled: "allot.node_disabled"
        case .placementRefused: "allot.placement_refused"
        }
    }
}
