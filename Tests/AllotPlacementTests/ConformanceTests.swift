import Foundation
import Testing

/// Upstream Placement's own functional tests (gabbi files) against `allot serve`, through
/// `../shared/conformance/run.py` and `scripts/conformance-server.sh`: the main suite (860 tests) and the policy
/// and RBAC files that ship in the `openstack-placement` package (`*-policy`, `*-secure-rbac`, `*-legacy-rbac`),
/// with upstream's fixtures mapped onto Allot's policy options. scripts/test.sh sets
/// `ALLOT_TEST_CONFORMANCE_RUNNER` (run.py, with its venv made) and `ALLOT_TEST_UPSTREAM_GABBITS` (the package's
/// gabbits directory).
@Suite struct ConformanceTests {
    static let environment = ProcessInfo.processInfo.environment
    static var runner: String? { environment["ALLOT_TEST_CONFORMANCE_RUNNER"] }
    static var python: String {
        environment["ALLOT_CONFORMANCE_VENV"].map { $0 + "/bin/python" }
            ?? NSHomeDirectory() + "/.cache/allot-conformance/venv/bin/python"
    }

    /// Runs the runner over `arguments` and expects nothing to fail, with the binary beside the test bundle.
    static func run(_ arguments: String, name: String, ports: String) async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("allot-conformance-\(name)-\(newUUID()).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let command = "cd '\(ShellScript.root.path)' && ALLOT_BIN='\(ServerProcess.binary.path)' '\(python)' '\(runner ?? "")'"
            + " --server-cmd 'bash scripts/conformance-server.sh {port} {dbdir}' --ports \(ports) \(arguments)"
        let status = await ShellScript.run(command, log: log)
        let output = ShellScript.text(log)
        let summary = ShellScript.lastLine(output)
        #expect(status == 0 && summary.hasSuffix("skipped") && summary.contains(" 0 failed"),
                "run.py \(arguments): \(summary)\n\(output.suffix(6000))")
    }

    @Test(.enabled(if: runner != nil, "the conformance runner is not set up (scripts/test.sh sets it up)"))
    func upstreamFunctionalSuite() async throws {
        try await Self.run("--scope all", name: "main", ports: "18100-18149")
    }

    @Test(.enabled(if: runner != nil && environment["ALLOT_TEST_UPSTREAM_GABBITS"] != nil,
                   "upstream Placement's package is not installed (scripts/test.sh installs it)"))
    func upstreamPolicyAndRBACSuites() async throws {
        let gabbits = Self.environment["ALLOT_TEST_UPSTREAM_GABBITS"] ?? ""
        try await Self.run("--group rbac --gabbits-dir '\(gabbits)'", name: "rbac", ports: "18150-18199")
    }
}
