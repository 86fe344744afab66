import AllotCore
import Testing

/// The compute ledger's pure rules: flavors, transitions, what each consumer holds, node usage.
@Suite struct ComputeLedgerTests {
    static let small = Flavor(name: "small", vcpus: 2, memoryMB: 2048, rootGB: 20)
    static let large = Flavor(name: "large", vcpus: 4, memoryMB: 4096, rootGB: 40, ephemeralGB: 10, swapMB: 1536)
    static let nodeA = "aaaaaaaa-0000-0000-0000-000000000000"
    static let nodeB = "bbbbbbbb-0000-0000-0000-000000000000"
    static let vm = "11111111-0000-0000-0000-000000000000"
    static let mig = "22222222-0000-0000-0000-000000000000"

    static func instance(_ flavor: Flavor = small, node: String = nodeA) -> Instance {
        Instance(uuid: vm, projectID: "p", userID: "u", flavor: flavor, node: node)
    }

    static func move(_ kind: MigrationKind, to node: String, flavor: Flavor = large) -> ComputeOperation {
        .move(Migration(uuid: mig, instanceUUID: vm, kind: kind, status: .accepted, sourceNode: "", destNode: node,
                        oldFlavor: flavor, newFlavor: flavor))
    }

    /// Applies operations in order to one instance's records.
    static func run(_ operations: [ComputeOperation]) throws -> LedgerRecords {
        var records = LedgerRecords(instance: nil, migration: nil)
        for operation in operations { records = try operation.apply(to: records, now: 1).after }
        return records
    }

    @Test func flavorResourcesFollowNova() {
        #expect(Self.large.resources(bootFromVolume: false) == ["VCPU": 4, "MEMORY_MB": 4096, "DISK_GB": 52])
        #expect(Self.large.resources(bootFromVolume: true) == ["VCPU": 4, "MEMORY_MB": 4096, "DISK_GB": 12])
        var custom = Self.small
        custom.extraSpecs = ["resources:VCPU": "0", "resources:PCPU": "2", "resources1:CUSTOM_FPGA": "1",
                             "trait:HW_CPU_X86_AVX2": "required", "trait:CUSTOM_SLOW": "forbidden", "hw:numa_nodes": "1"]
        #expect(custom.problem == nil)
        #expect(custom.resources(bootFromVolume: false) == ["PCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 20, "CUSTOM_FPGA": 1])
        #expect(custom.requiredTraits == ["HW_CPU_X86_AVX2"])
        #expect(custom.forbiddenTraits == ["CUSTOM_SLOW"])
        #expect(Flavor(encoded: custom.encoded) == custom)
    }

    @Test(arguments: [
        (Flavor(name: "", vcpus: 1, memoryMB: 1), "name"),
        (Flavor(name: "x", vcpus: 0, memoryMB: 1), "vcpus"),
        (Flavor(name: "x", vcpus: 1, memoryMB: 1, rootGB: -1), "root_gb"),
        (Flavor(name: "x", vcpus: 1, memoryMB: 1, extraSpecs: ["resources:NOPE": "1"]), "resource class"),
        (Flavor(name: "x", vcpus: 1, memoryMB: 1, extraSpecs: ["resources:VCPU": "-1"]), "amount"),
        (Flavor(name: "x", vcpus: 1, memoryMB: 1, extraSpecs: ["trait:CUSTOM_A": "maybe"]), "required or forbidden"),
        (Flavor(name: "x\u{1}", vcpus: 1, memoryMB: 1), "control"),
    ])
    func badFlavorsAreRefused(flavor: Flavor, mentions: String) throws {
        let problem = try #require(flavor.problem)
        #expect(problem.description.contains(mentions))
    }

    @Test func buildIsIdempotentAndAbortReleases() throws {
        let built = try Self.run([.build(Self.instance())])
        #expect(built.instance?.vmState == .building)
        #expect(built.allocations == [Self.vm: [Self.nodeA: ["VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 20]]])
        let again = try ComputeOperation.build(Self.instance()).apply(to: built, now: 2)
        #expect(again.isNoOp)
        #expect(throws: ComputeError.conflictingRequest("instance \(Self.vm) is already claimed differently")) {
            try ComputeOperation.build(Self.instance(Self.large)).apply(to: built, now: 2)
        }
        let aborted = try ComputeOperation.abortBuild(instance: Self.vm).apply(to: built, now: 3)
        #expect(aborted.after.allocations == [Self.vm: [:]])
        #expect(aborted.allocations == [Self.vm: [:]])
        #expect(try ComputeOperation.abortBuild(instance: Self.vm).apply(to: aborted.after, now: 4).isNoOp)
    }

    @Test func abortAfterTheBuildIsIllegal() throws {
        let active = try Self.run([.build(Self.instance()), .update(instance: Self.vm, vmState: .active, taskState: .some(nil), osType: nil)])
        #expect(throws: ComputeError.self) { try ComputeOperation.abortBuild(instance: Self.vm).apply(to: active, now: 2) }
    }

    @Test func resizeHoldsNewAtDestinationAndOldAtSourceUntilConfirmed() throws {
        let base: [ComputeOperation] = [.build(Self.instance()), .update(instance: Self.vm, vmState: .active, taskState: .some(nil), osType: nil)]
        let claimed = try Self.run(base + [Self.move(.resize, to: Self.nodeB)])
        let new = Self.large.resources(bootFromVolume: false)
        let old = Self.small.resources(bootFromVolume: false)
        #expect(claimed.allocations == [Self.vm: [Self.nodeB: new], Self.mig: [Self.nodeA: old]])
        #expect(claimed.migration?.status == .preMigrating)
        #expect(claimed.migration?.oldFlavor == Self.small)
        let finished = try Self.run(base + [Self.move(.resize, to: Self.nodeB), .finish(migration: Self.mig)])
        #expect(finished.instance?.node == Self.nodeB)
        #expect(finished.instance?.vmState == .resized)
        #expect(finished.allocations == claimed.allocations)
        let confirmed = try ComputeOperation.confirm(migration: Self.mig).apply(to: finished, now: 9).after
        #expect(confirmed.allocations == [Self.vm: [Self.nodeB: new], Self.mig: [:]])
        #expect(confirmed.instance?.vmState == .active)
        let reverted = try ComputeOperation.revert(migration: Self.mig).apply(to: finished, now: 9).after
        #expect(reverted.allocations == [Self.vm: [Self.nodeA: old], Self.mig: [:]])
        #expect(reverted.instance?.flavor == Self.small)
        // A confirmed resize cannot be reverted, and the other way round.
        #expect(throws: ComputeError.self) { try ComputeOperation.revert(migration: Self.mig).apply(to: confirmed, now: 10) }
        #expect(throws: ComputeError.self) { try ComputeOperation.confirm(migration: Self.mig).apply(to: reverted, now: 10) }
    }

    @Test func movesThatHaveNotArrivedCanOnlyBeRolledBack() throws {
        let base: [ComputeOperation] = [.build(Self.instance()), .update(instance: Self.vm, vmState: .active, taskState: .some(nil), osType: nil)]
        let claimed = try Self.run(base + [Self.move(.liveMigration, to: Self.nodeB)])
        #expect(throws: ComputeError.self) { try ComputeOperation.confirm(migration: Self.mig).apply(to: claimed, now: 2) }
        #expect(throws: ComputeError.self) { try ComputeOperation.revert(migration: Self.mig).apply(to: claimed, now: 2) }
        #expect(throws: ComputeError.self) {
            try ComputeOperation.progress(migration: Self.mig, status: .migrating).apply(to: claimed, now: 2)
        }
        let running = try ComputeOperation.progress(migration: Self.mig, status: .running).apply(to: claimed, now: 2).after
        let rolledBack = try ComputeOperation.rollback(migration: Self.mig).apply(to: running, now: 3).after
        #expect(rolledBack.migration?.status == .failed)
        #expect(rolledBack.allocations == [Self.vm: [Self.nodeA: Self.small.resources(bootFromVolume: false)], Self.mig: [:]])
        let completed = try ComputeOperation.finish(migration: Self.mig).apply(to: running, now: 3).after
        #expect(completed.migration?.status == .completed)
        #expect(completed.allocations == [Self.vm: [Self.nodeB: Self.small.resources(bootFromVolume: false)], Self.mig: [:]])
        #expect(throws: ComputeError.self) { try ComputeOperation.rollback(migration: Self.mig).apply(to: completed, now: 4) }
    }

    @Test func evacuationKeepsTheSourceUntilItIsCleanedUp() throws {
        let base: [ComputeOperation] = [.build(Self.instance()), .update(instance: Self.vm, vmState: .active, taskState: .some(nil), osType: nil)]
        let done = try Self.run(base + [Self.move(.evacuation, to: Self.nodeB), .finish(migration: Self.mig)])
        #expect(done.migration?.status == .done)
        #expect(done.instance?.node == Self.nodeB)
        let held = Self.small.resources(bootFromVolume: false)
        #expect(done.allocations == [Self.vm: [Self.nodeB: held], Self.mig: [Self.nodeA: held]])
        let cleaned = try ComputeOperation.confirm(migration: Self.mig).apply(to: done, now: 5).after
        #expect(cleaned.migration?.status == .completed)
        #expect(cleaned.allocations == [Self.vm: [Self.nodeB: held], Self.mig: [:]])
        #expect(throws: ComputeError.invalidRequest("a evacuation needs a destination other than the source node")) {
            try Self.move(.evacuation, to: Self.nodeA).apply(to: try Self.run(base), now: 2)
        }
    }

    @Test func deletingMidMoveReleasesEverything() throws {
        let base: [ComputeOperation] = [.build(Self.instance()), .update(instance: Self.vm, vmState: .active, taskState: .some(nil), osType: nil)]
        let moving = try Self.run(base + [Self.move(.resize, to: Self.nodeA)])
        // Same-node resize: both flavors on one node.
        #expect(moving.allocations[Self.vm]?[Self.nodeA] == Self.large.resources(bootFromVolume: false))
        #expect(moving.allocations[Self.mig]?[Self.nodeA] == Self.small.resources(bootFromVolume: false))
        let deleted = try ComputeOperation.delete(instance: Self.vm).apply(to: moving, now: 3)
        #expect(deleted.after.migration?.status == .cancelled)
        #expect(deleted.after.allocations == [Self.vm: [:], Self.mig: [:]])
        #expect(deleted.increases.isEmpty)
        #expect(throws: ComputeError.self) { try Self.move(.resize, to: Self.nodeB).apply(to: deleted.after, now: 4) }
    }

    @Test func stateUpdatesFollowTheirRules() throws {
        let built = try Self.run([.build(Self.instance())])
        #expect(throws: ComputeError.self) {
            try ComputeOperation.update(instance: Self.vm, vmState: .deleted, taskState: nil, osType: nil).apply(to: built, now: 2)
        }
        #expect(throws: ComputeError.self) {
            try ComputeOperation.update(instance: Self.vm, vmState: .resized, taskState: nil, osType: nil).apply(to: built, now: 2)
        }
        let active = try ComputeOperation.update(instance: Self.vm, vmState: .active, taskState: .some(nil), osType: "linux")
            .apply(to: built, now: 2).after
        #expect(active.instance?.osType == "linux")
        #expect(throws: ComputeError.self) {
            try ComputeOperation.update(instance: Self.vm, vmState: .building, taskState: nil, osType: nil).apply(to: active, now: 3)
        }
    }

    @Test func statsCountWhatNovaCounts() {
        let node = Self.nodeA
        var instances = (0..<3).map { i in
            Instance(uuid: "vm-\(i)", projectID: i == 0 ? "p1" : "p2", userID: "u", flavor: Self.small, node: node,
                     vmState: i == 2 ? .building : .active, taskState: i == 1 ? "resize_prep" : nil, osType: i == 0 ? "linux" : nil)
        }
        instances.append(Instance(uuid: "elsewhere", projectID: "p1", userID: "u", flavor: Self.small, node: Self.nodeB))
        let ledger = NodeLedger(node: node, instances: instances, migrations: [Migration]())
        #expect(ledger.stats == [
            "num_instances": 3, "io_workload": 2, "num_vm_active": 2, "num_vm_building": 1, "num_task_None": 2,
            "num_task_resize_prep": 1, "num_os_type_linux": 1, "num_os_type_None": 2, "num_proj_p1": 1, "num_proj_p2": 2,
        ])
        #expect(ledger.usage == ["VCPU": 6, "MEMORY_MB": 6144, "DISK_GB": 60])
        #expect(ledger.recomputedUsage() == ledger.usage)
    }

    /// Random operations over three nodes: every node's incremental usage equals its usage rebuilt from the
    /// records, which equals the sum of what every consumer holds there; nothing is ever negative.
    @Test func nodeUsageStaysExactUnderRandomOperations() throws {
        var rng = SplitMix64(seed: 7)
        let nodes = ["n0", "n1", "n2"]
        var views = nodes.map { NodeLedger(node: $0, instances: [Instance](), migrations: [Migration]()) }
        var instances: [String: Instance] = [:]
        var migrations: [String: Migration] = [:]
        let flavors = [Self.small, Self.large, Flavor(name: "tiny", vcpus: 1, memoryMB: 512)]
        var applied = 0
        for step in 0..<3000 {
            let uuid = "vm-\(Int(rng.next() % 12))"
            let active = migrations.values.first { $0.instanceUUID == uuid && $0.status.isInProgress }
            let operation: ComputeOperation
            switch rng.next() % 10 {
            case 0, 1:
                operation = .build(Instance(uuid: uuid, projectID: "p", userID: "u",
                                            flavor: flavors[Int(rng.next() % 3)], node: nodes[Int(rng.next() % 3)]))
            case 2: operation = .update(instance: uuid, vmState: .active, taskState: .some(nil), osType: nil)
            case 3:
                let kinds = MigrationKind.allCases
                operation = .move(Migration(
                    uuid: "m-\(step)", instanceUUID: uuid, kind: kinds[Int(rng.next() % 4)], status: .accepted,
                    sourceNode: "", destNode: nodes[Int(rng.next() % 3)], oldFlavor: flavors[0],
                    newFlavor: flavors[Int(rng.next() % 3)]))
            case 4: operation = .finish(migration: active?.uuid ?? "none")
            case 5: operation = .confirm(migration: active?.uuid ?? "none")
            case 6: operation = .revert(migration: active?.uuid ?? "none")
            case 7: operation = .rollback(migration: active?.uuid ?? "none")
            case 8: operation = .abortBuild(instance: uuid)
            default: operation = .delete(instance: uuid)
            }
            var records = LedgerRecords(instance: instances[uuid], migration: active)
            if case .move = operation {
                // A new move checks against the instance's move in progress.
            } else if let name = operation.migrationUUID {
                records = LedgerRecords(
                    instance: migrations[name].flatMap { instances[$0.instanceUUID] }, migration: migrations[name])
            }
            guard let change = try? operation.apply(to: records, now: Double(step)) else { continue }
            applied += 1
            if let instance = change.after.instance { instances[instance.uuid] = instance }
            if let migration = change.after.migration { migrations[migration.uuid] = migration }
            for index in views.indices { views[index].apply(change) }
            for view in views {
                #expect(view.usage == view.recomputedUsage())
                var expected: [String: Int] = [:]
                for instance in instances.values {
                    let current = migrations.values.first { $0.instanceUUID == instance.uuid && $0.status.isInProgress }
                    for amounts in LedgerRecords(instance: instance, migration: current).allocations.values {
                        for (rc, n) in amounts[view.node] ?? [:] { expected[rc, default: 0] += n }
                    }
                }
                #expect(view.usage == expected.filter { $0.value != 0 })
                #expect(view.usage.values.allSatisfy { $0 > 0 })
            }
        }
        #expect(applied > 500)
    }
}
