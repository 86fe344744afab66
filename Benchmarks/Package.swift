// swift-tools-version: 6.2
import PackageDescription

// A separate package so that release builds of Allot stay small: it depends on AllotCore alone.
// Run: cd Benchmarks && swift package benchmark
let package = Package(
    name: "AllotBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Allot", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: ["CoreBenchmarks", "SolverBenchmarks"].map(benchmarkTarget)
)

/// A benchmark executable over AllotCore, in `Benchmarks/NAME`.
func benchmarkTarget(_ name: String) -> Target {
    .executableTarget(
        name: name,
        dependencies: [
            .product(name: "AllotCore", package: "Allot"),
            .product(name: "Benchmark", package: "benchmark"),
        ],
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}
