import AllotCore
import Benchmark

/// Hot pure functions of the placement core: capacity checks over many inventories and header parsing.
let benchmarks: @Sendable () -> Void = {
    let inventories = (0..<10_000).map { index in
        Inventory(total: 64 + index % 64, reserved: index % 4, minUnit: 1, maxUnit: 64, stepSize: 1,
                  allocationRatio: 16.0)
    }
    let used = (0..<10_000).map { $0 % 1000 }

    Benchmark("Capacity check, 10k inventories", configuration: .init(metrics: [.wallClock, .throughput])) {
        benchmark in
        for _ in benchmark.scaledIterations {
            var fitting = 0
            for (inventory, usage) in zip(inventories, used)
            where inventory.unitProblem(amount: 4) == nil && inventory.fits(additional: 4, used: usage) {
                fitting += 1
            }
            blackHole(fitting)
        }
    }

    Benchmark("Microversion header parse", configuration: .init(metrics: [.wallClock, .throughput])) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(Microversion.fromHeader("compute 2.1, placement 1.39"))
        }
    }

    Benchmark("Resource class validation", configuration: .init(metrics: [.wallClock, .throughput])) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(ResourceClass.validated("CUSTOM_FPGA_XILINX_VU9P"))
            blackHole(ResourceClass.validated("MEMORY_MB"))
        }
    }
}
