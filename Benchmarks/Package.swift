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
    targets: [
        .executableTarget(
            name: "CoreBenchmarks",
            dependencies: [
                .product(name: "AllotCore", package: "Allot"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/CoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SolverBenchmarks",
            dependencies: [
                .product(name: "AllotCore", package: "Allot"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/SolverBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
