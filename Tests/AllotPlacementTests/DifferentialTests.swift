import Foundation
import Testing

/// `scripts/differential.py` against upstream Placement (A) and `allot serve` (B): a seeded random sequence of
/// valid and invalid calls must get the same answers from both (upstream's 500s answered 4xx by Allot excepted).
/// Enabled when `ALLOT_TEST_UPSTREAM_PLACEMENT` names `scripts/upstream-placement.sh` (as for the agent tests).
/// `ALLOT_DIFF_SEED` picks the seed (`random`: a random one, printed), `ALLOT_DIFF_STEPS` the number of calls.
@Suite(.serialized) struct DifferentialTests {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }
    static var upstreamScript: String? { environment["ALLOT_TEST_UPSTREAM_PLACEMENT"] }
    static let defaultSeed = "20261203"

    @Test(.enabled(if: upstreamScript != nil, "upstream Placement is not installed (scripts/test.sh installs it)"))
    func allotAnswersAsUpstream() async throws {
        let directory = try AgentTests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Upstream Placement with its own default policy (only the service role reshapes).
        let (upstreamPort, pid) = try await AgentTests.startUpstream(directory, environment: "ALLOT_UPSTREAM_POLICY=default")
        defer { kill(pid, SIGTERM) }
        let allot = try await ServerProcess(
            database: directory.appendingPathComponent("allot.sqlite").path, logDirectory: directory)
        defer { allot.stop() }

        let seedSetting = Self.environment["ALLOT_DIFF_SEED"] ?? Self.defaultSeed
        let seedArguments = seedSetting == "random" ? ["--random-seed"] : ["--seed", seedSetting]
        let steps = Self.environment["ALLOT_DIFF_STEPS"] ?? "600"
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let venv = Self.environment["ALLOT_UPSTREAM_VENV"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/allot-bench/venv").path
        let outputURL = directory.appendingPathComponent("differential.txt")
        // Policy decisions count too (--strict-policy): Allot's defaults are upstream's.
        let arguments = [root.appendingPathComponent("scripts/differential.py").path,
                         "--a", "http://127.0.0.1:\(upstreamPort)", "--b", "http://127.0.0.1:\(allot.port)",
                         "--steps", steps, "--strict-policy"] + seedArguments
        let status = await ShellScript.run(
            ([venv + "/bin/python"] + arguments).map { "'\($0)'" }.joined(separator: " "), log: outputURL)
        let text = String(decoding: (try? Data(contentsOf: outputURL)) ?? Data(), as: UTF8.self)
        // The seed line comes first: print it so a random seed can be replayed.
        print("differential.py: \(text.prefix { $0 != "\n" })")
        #expect(status == 0, "differential.py found divergences:\n\(text)")
    }
}
