import Foundation
import Testing

/// `scripts/schemathesis.sh`: schemathesis, driven by `GET /openapi.json`, against a fresh `allot serve`.
/// Enabled when `ALLOT_TEST_SCHEMATHESIS` is set (scripts/test.sh sets it once the venv is installed).
@Suite(.serialized) struct SchemathesisTests {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    @Test(.enabled(if: environment["ALLOT_TEST_SCHEMATHESIS"] != nil,
                   "schemathesis is not installed (scripts/test.sh installs it)"))
    func noServerErrorsAndTheDocumentHolds() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("schemathesis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("schemathesis.log")
        let script = ShellScript.root.appendingPathComponent("scripts/schemathesis.sh").path
        let status = await ShellScript.run("bash '\(script)' run", log: log)
        let text = ShellScript.text(log)
        let summary = text.split(separator: "\n").last { $0.hasPrefix("schemathesis: ") }.map(String.init) ?? ""
        print(summary)
        // "schemathesis: N requests, M server errors"
        let numbers = summary.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        #expect(numbers.count == 2, "no summary line:\n\(text.suffix(4000))")
        if numbers.count == 2 {
            #expect(numbers[0] >= 5000, "too few requests: \(summary)")
            #expect(numbers[1] == 0, "server errors: \(summary)\n\(text.suffix(8000))")
        }
        #expect(status == 0, "schemathesis.sh failed:\n\(text.suffix(8000))")
    }
}
