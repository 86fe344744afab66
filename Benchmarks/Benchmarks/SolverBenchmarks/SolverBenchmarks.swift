import AllotCore
import Benchmark

/// The allocation-candidate solver on synthetic placement data shaped like upstream's perfload job
/// (`../shared/bench/placement_perfload.py`): flat compute nodes, nested NUMA trees, and the wide tree.
/// Snapshot construction is measured separately from solving, since the service builds it once per change.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident], maxDuration: .seconds(5),
        maxIterations: 200)

    for count in [1_000, 10_000, 50_000] {
        let flat = Workload.flat(count)
        Benchmark("Flat \(count): perfload query, limit=1000") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(CandidateSolver.solve(Workload.flatQuery(limit: 1000), in: flat))
            }
        }
        Benchmark("Flat \(count): perfload query, no limit") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(CandidateSolver.solve(Workload.flatQuery(limit: nil), in: flat))
            }
        }
        let nested = Workload.nested(count / 4)
        Benchmark("Nested \(count / 4) trees: granular isolate query, limit=1000") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(CandidateSolver.solve(Workload.nestedQuery(limit: 1000), in: nested))
            }
        }
        Benchmark("Snapshot index, \(count) flat providers") { benchmark in
            let providers = flat.providers
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(PlacementSnapshot(providers: providers))
            }
        }
    }

    let wide = Workload.wideTree(width: 8)
    Benchmark("Wide tree 8x8, isolate, cap 1000") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(CandidateSolver.solve(Workload.wideQuery(width: 8, cap: 1000), in: wide))
        }
    }
    Benchmark("Wide tree 8x8, isolate, every candidate (40,320)", configuration: .init(maxIterations: 10)) {
        benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(CandidateSolver.solve(Workload.wideQuery(width: 8, cap: nil), in: wide))
        }
    }
}

/// Synthetic data with the inventories, traits and aggregates of upstream's perfload job.
enum Workload {
    static let aggregates = ["14a5c8a3-5a99-4e8f-88be-00d85fcb1c17", "66d98e7c-3c25-485d-a0dc-1cea651884de",
                             "a59dbb28-fd98-4c6e-9ec5-ae5f3d04b0aa"]
    static let otherTraits = ["HW_CPU_X86_SSE2", "STORAGE_DISK_SSD"]

    static func uuid(_ n: Int) -> String {
        let hex = String(n, radix: 16)
        let padded = String(repeating: "0", count: max(0, 12 - hex.count)) + hex
        return "00000000-0000-4000-8000-" + padded
    }

    static func flat(_ count: Int) -> PlacementSnapshot {
        let inventories = [
            "VCPU": Inventory(total: 32, reserved: 0, minUnit: 1, maxUnit: 16, stepSize: 1, allocationRatio: 16),
            "MEMORY_MB": Inventory(total: 8192, reserved: 512, minUnit: 128, maxUnit: 8192, stepSize: 1,
                                   allocationRatio: 1.5),
            "DISK_GB": Inventory(total: 8192, reserved: 0, minUnit: 5, maxUnit: 8192, stepSize: 1, allocationRatio: 1),
        ]
        let providers = (0..<count).map { index in
            PlacementSnapshot.Provider(
                uuid: uuid(index), generation: 1, parent: nil, root: index,
                traits: Set(["HW_CPU_X86_AVX2"] + otherTraits.prefix(index % 3)),
                aggregates: Set(aggregates.prefix(1 + index % 3)), inventories: inventories,
                used: index % 2 == 0 ? ["VCPU": 4, "MEMORY_MB": 2048, "DISK_GB": 40] : [:])
        }
        return PlacementSnapshot(providers: providers)
    }

    static func flatQuery(limit: Int?) -> CandidateQuery {
        CandidateQuery(
            groups: [RequestGroup(
                suffix: "", resources: [("VCPU", 1), ("DISK_GB", 10), ("MEMORY_MB", 256)],
                requiredTraits: [["HW_CPU_X86_AVX2"]], memberOf: [[aggregates[0]]])],
            limit: limit)
    }

    /// Trees of a root (DISK_GB) with two NUMA children (VCPU, MEMORY_MB) and a device under the second.
    static func nested(_ trees: Int) -> PlacementSnapshot {
        var providers: [PlacementSnapshot.Provider] = []
        for tree in 0..<trees {
            let root = providers.count
            providers.append(PlacementSnapshot.Provider(
                uuid: uuid(root), generation: 1, parent: nil, root: root,
                traits: Set(["COMPUTE_VOLUME_MULTI_ATTACH", "HW_CPU_X86_AVX2"]),
                aggregates: Set(aggregates.prefix(1 + tree % 3)),
                inventories: ["DISK_GB": Inventory(total: 20480, reserved: 0, minUnit: 1, maxUnit: 20480, stepSize: 1,
                                                   allocationRatio: 1)]))
            for numa in 0..<2 {
                providers.append(PlacementSnapshot.Provider(
                    uuid: uuid(providers.count), generation: 1, parent: root, root: root,
                    traits: Set(["HW_NUMA_ROOT"] + (numa == 1 ? ["CUSTOM_FOO"] : [])),
                    inventories: [
                        "VCPU": Inventory(total: 16, reserved: 0, minUnit: 1, maxUnit: 16, stepSize: 1,
                                          allocationRatio: 4),
                        "MEMORY_MB": Inventory(total: 16384, reserved: 0, minUnit: 256, maxUnit: 16384,
                                               stepSize: 256, allocationRatio: 1),
                    ]))
            }
            providers.append(PlacementSnapshot.Provider(
                uuid: uuid(providers.count), generation: 1, parent: root + 2, root: root,
                inventories: ["CUSTOM_BENCH_ACCEL": Inventory(total: 4, reserved: 0, minUnit: 1, maxUnit: 1,
                                                              stepSize: 1, allocationRatio: 1)]))
        }
        return PlacementSnapshot(providers: providers)
    }

    static func nestedQuery(limit: Int?) -> CandidateQuery {
        CandidateQuery(
            groups: [
                RequestGroup(suffix: "", resources: [("DISK_GB", 10)], requiredTraits: [["HW_CPU_X86_AVX2"]],
                             memberOf: [[aggregates[0]]]),
                RequestGroup(suffix: "1", resources: [("VCPU", 1), ("MEMORY_MB", 256)]),
                RequestGroup(suffix: "2", resources: [("VCPU", 1), ("MEMORY_MB", 256)]),
            ],
            isolate: true, limit: limit)
    }

    /// One root with `width` single-unit children of one custom class.
    static func wideTree(width: Int) -> PlacementSnapshot {
        var providers = [PlacementSnapshot.Provider(uuid: uuid(0), generation: 1, parent: nil, root: 0)]
        for child in 1...width {
            providers.append(PlacementSnapshot.Provider(
                uuid: uuid(child), generation: 1, parent: 0, root: 0,
                inventories: ["CUSTOM_WIDE": Inventory(total: 1, reserved: 0, minUnit: 1, maxUnit: 1, stepSize: 1,
                                                       allocationRatio: 1)]))
        }
        return PlacementSnapshot(providers: providers)
    }

    static func wideQuery(width: Int, cap: Int?) -> CandidateQuery {
        CandidateQuery(
            groups: (1...width).map { RequestGroup(suffix: String($0), resources: [("CUSTOM_WIDE", 1)]) },
            isolate: true, maxCandidates: cap)
    }
}
