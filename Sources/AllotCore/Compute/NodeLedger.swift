/// One compute node's part of the ledger: the instances and in-progress migrations that hold resources on it,
/// and the usage they add up to. Usage is kept up to date change by change and can be recomputed from scratch
/// (the audit compares both).
public struct NodeLedger: Hashable, Sendable {
    public let node: String
    /// Instances on this node, or moving to or from it.
    public private(set) var instances: [String: Instance]
    /// In-progress migrations from or to this node, by uuid.
    public private(set) var migrations: [String: Migration]
    /// In-progress migration uuid by instance uuid.
    private var activeMigration: [String: String]
    /// What the instances and migrations hold on this node, by class.
    public private(set) var usage: [String: Int]

    public init(node: String, instances: some Sequence<Instance>, migrations: some Sequence<Migration>) {
        self.node = node
        self.instances = [:]
        self.migrations = [:]
        activeMigration = [:]
        usage = [:]
        for migration in migrations where migration.status.isInProgress && Self.touches(migration, node) {
            self.migrations[migration.uuid] = migration
            activeMigration[migration.instanceUUID] = migration.uuid
        }
        for instance in instances where instance.holdsResources {
            if instance.node == node || activeMigration[instance.uuid] != nil {
                self.instances[instance.uuid] = instance
            }
        }
        // A migration whose instance is not known here holds nothing we can count; drop it.
        for (uuid, migration) in self.migrations where self.instances[migration.instanceUUID] == nil {
            self.migrations[uuid] = nil
            activeMigration[migration.instanceUUID] = nil
        }
        usage = recomputedUsage()
    }

    /// The records an operation on `instance` reads from this node's view.
    public func records(instance uuid: String) -> LedgerRecords {
        LedgerRecords(instance: instances[uuid], migration: activeMigration[uuid].flatMap { migrations[$0] })
    }

    /// The records of a migration known here (in progress and touching this node).
    public func records(migration uuid: String) -> LedgerRecords? {
        guard let migration = migrations[uuid] else { return nil }
        return LedgerRecords(instance: instances[migration.instanceUUID], migration: migration)
    }

    /// Takes a committed change into this view (it may concern this node or not).
    public mutating func apply(_ change: ComputeChange) {
        subtract(change.before)
        if let instance = change.before.instance {
            instances[instance.uuid] = nil
            if let uuid = activeMigration.removeValue(forKey: instance.uuid) { migrations[uuid] = nil }
        }
        if let migration = change.before.migration {
            migrations[migration.uuid] = nil
            if activeMigration[migration.instanceUUID] == migration.uuid { activeMigration[migration.instanceUUID] = nil }
        }
        let after = change.after
        if let migration = after.migration, migration.status.isInProgress, Self.touches(migration, node),
            after.instance?.holdsResources == true
        {
            migrations[migration.uuid] = migration
            activeMigration[migration.instanceUUID] = migration.uuid
        }
        if let instance = after.instance, instance.holdsResources,
            instance.node == node || activeMigration[instance.uuid] != nil
        {
            instances[instance.uuid] = instance
        }
        add(after)
    }

    /// Usage computed again from the records alone.
    public func recomputedUsage() -> [String: Int] {
        var total: [String: Int] = [:]
        // Instances that are not moving hold their flavor here (less what child providers take); flavors repeat,
        // so their resources are worked out once per flavor.
        var resources: [Flavor: [String: Int]] = [:]
        for instance in instances.values {
            if activeMigration[instance.uuid] == nil, instance.childAllocations.isEmpty {
                guard instance.node == node else { continue }
                let key = instance.bootFromVolume ? Flavor.bootFromVolumeKey(instance.flavor) : instance.flavor
                let amounts: [String: Int]
                if let known = resources[key] {
                    amounts = known
                } else {
                    amounts = instance.flavor.resources(bootFromVolume: instance.bootFromVolume)
                    resources[key] = amounts
                }
                for (rc, n) in amounts { total[rc, default: 0] += n }
                continue
            }
            for amounts in records(instance: instance.uuid).allocations.values {
                for (rc, n) in amounts[node] ?? [:] { total[rc, default: 0] += n }
            }
        }
        return total.filter { $0.value != 0 }
    }

    /// What each consumer (instance or migration uuid) holds on this node.
    public var consumers: [String: [String: Int]] {
        var result: [String: [String: Int]] = [:]
        for instance in instances.values {
            for (consumer, amounts) in records(instance: instance.uuid).allocations {
                if let here = amounts[node], !here.isEmpty { result[consumer] = here }
            }
        }
        return result
    }

    /// Nova's compute node stats over the instances on this node.
    public var stats: [String: Int] {
        // Count by value first, then name each distinct value once.
        var vmStates: [VMState: Int] = [:]
        var taskStates: [String?: Int] = [:]
        var osTypes: [String?: Int] = [:]
        var projects: [String: Int] = [:]
        var count = 0
        var io = 0
        for instance in instances.values where instance.node == node {
            count += 1
            vmStates[instance.vmState, default: 0] += 1
            taskStates[instance.taskState, default: 0] += 1
            osTypes[instance.osType, default: 0] += 1
            projects[instance.projectID, default: 0] += 1
            if instance.vmState == .building || instance.taskState.map(Self.ioTasks.contains) == true { io += 1 }
        }
        var stats: [String: Int] = ["num_instances": count, "io_workload": io]
        for (state, n) in vmStates { stats["num_vm_" + state.rawValue] = n }
        for (task, n) in taskStates { stats["num_task_" + (task ?? "None")] = n }
        for (os, n) in osTypes { stats["num_os_type_" + (os ?? "None")] = n }
        for (project, n) in projects { stats["num_proj_" + project] = n }
        return stats
    }

    /// Task states Nova counts as I/O work.
    static let ioTasks: Set<String> = [
        "resize_migrating", "rebuilding", "resize_prep", "image_snapshot", "image_backup", "rescuing", "unshelving",
    ]

    private mutating func subtract(_ records: LedgerRecords) {
        for amounts in records.allocations.values {
            for (rc, n) in amounts[node] ?? [:] {
                let left = (usage[rc] ?? 0) - n
                usage[rc] = left == 0 ? nil : left
            }
        }
    }

    private mutating func add(_ records: LedgerRecords) {
        for amounts in records.allocations.values {
            for (rc, n) in amounts[node] ?? [:] { usage[rc, default: 0] += n }
        }
    }

    static func touches(_ migration: Migration, _ node: String) -> Bool {
        migration.sourceNode == node || migration.destNode == node
    }
}

/// Whether amounts fit a node: every class must have inventory, each consumer's amount must meet the unit rules,
/// and usage plus the increase must stay within capacity.
public enum Fit {
    /// - Parameters:
    ///   - increases: how much more each class needs on the node.
    ///   - amounts: each consumer's new amounts on the node (checked against unit rules).
    /// - Returns: the first reason it does not fit (in class-name order), or `nil`.
    public static func problem(
        node: String, increases: [String: Int], amounts: [[String: Int]], inventories: [String: Inventory],
        usage: [String: Int]
    ) -> ComputeError? {
        for (rc, more) in increases.sorted(by: { $0.key < $1.key }) {
            guard let inventory = inventories[rc] else { return .noInventory(node: node, resourceClass: rc) }
            let used = usage[rc] ?? 0
            if !inventory.fits(additional: more, used: used) {
                return .doesNotFit(node: node, resourceClass: rc, requested: more, free: max(0, inventory.capacity - used))
            }
        }
        for consumer in amounts {
            for (rc, n) in consumer.sorted(by: { $0.key < $1.key }) {
                guard let inventory = inventories[rc] else { return .noInventory(node: node, resourceClass: rc) }
                if let rule = inventory.unitProblem(amount: n) {
                    return .unitRule(node: node, resourceClass: rc, requested: n, rule: "\(rule)")
                }
            }
        }
        return nil
    }
}
