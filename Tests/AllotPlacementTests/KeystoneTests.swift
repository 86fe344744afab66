import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// `allot serve --auth keystone` against a real Keystone (PyPI keystone, scripts/keystone.sh), side by side with
/// upstream Placement 16.0.0 behind keystonemiddleware. scripts/test.sh sets `ALLOT_TEST_KEYSTONE` when it could
/// install Keystone (and `ALLOT_TEST_NOVA` when Nova's venv is there for the report client's check).
@Suite(.serialized) struct KeystoneTests {
    static let environment = ProcessInfo.processInfo.environment
    static var enabled: Bool { environment["ALLOT_TEST_KEYSTONE"] == "1" && environment["ALLOT_TEST_UPSTREAM_PLACEMENT"] != nil }
    static var script: String { ShellScript.root.appendingPathComponent("scripts/keystone.sh").path }

    /// scripts/keystone-e2e.sh with Allot as the Placement under test: the `openstack` client with password
    /// authentication through the catalog, Nova's report client through a keystoneauth session (service user),
    /// and every persona × route cell (project admin, member, reader of the same and another project, service,
    /// system-scoped admin, expired, revoked, garbage and no token) compared with upstream's status.
    @Test(.enabled(if: enabled, "Keystone or upstream Placement is not installed (scripts/test.sh installs them)"))
    func catalogClientsAndPolicyMatrixMatchUpstream() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("allot-keystone-e2e-\(newUUID()).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let nova = Self.environment["ALLOT_TEST_NOVA"] == "1" ? "" : " --no-nova"
        let status = await ShellScript.run(
            "cd '\(ShellScript.root.path)' && bash scripts/keystone-e2e.sh\(nova) --allot '\(ServerProcess.binary.path)'",
            log: log)
        let output = ShellScript.text(log)
        let summary = ShellScript.lastLine(output)
        #expect(status == 0 && summary.hasSuffix(" 0 failed"), "keystone-e2e.sh: \(summary)\n\(output.suffix(8000))")
    }

    /// A Keystone of this test's own, on a port below the ephemeral range (another is tried when it is taken).
    struct Keystone {
        let directory: URL
        let port: Int
        let fixture: [String: Any]
        var fixturePath: String { directory.appendingPathComponent("fixture.json").path }
        var url: String { "http://127.0.0.1:\(port)/v3" }

        static func start(in parent: URL) async throws -> Keystone {
            let directory = parent.appendingPathComponent("keystone")
            let log = parent.appendingPathComponent("keystone-start.log")
            for _ in 1...5 {
                let port = Int.random(in: 25000...29999)
                let status = await ShellScript.run("bash '\(script)' start \(port) '\(directory.path)'", log: log)
                if status == 3 { continue }
                guard status == 0 else { break }
                let data = try Data(contentsOf: directory.appendingPathComponent("fixture.json"))
                let fixture = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
                return Keystone(directory: directory, port: port, fixture: fixture)
            }
            throw ServerProcessError.didNotStart("Keystone did not start:\n" + ShellScript.text(log).suffix(4000))
        }

        func stop() async { _ = await ShellScript.run("bash '\(script)' stop '\(directory.path)'", log: directory.appendingPathComponent("stop.log")) }

        func resume() async throws {
            let log = directory.appendingPathComponent("resume.log")
            let status = await ShellScript.run("bash '\(script)' resume \(port) '\(directory.path)'", log: log)
            guard status == 0 else { throw ServerProcessError.didNotStart("Keystone did not resume:\n" + ShellScript.text(log)) }
        }

        func password(_ user: String) -> String {
            ((fixture["users"] as? [String: Any])?[user] as? [String: Any])?["password"] as? String ?? ""
        }

        /// A fresh token of a persona of the fixture.
        func token(_ persona: String) async throws -> String {
            let out = directory.appendingPathComponent("token-\(newUUID())")
            defer { try? FileManager.default.removeItem(at: out) }
            let status = await ShellScript.run("bash '\(script)' token '\(fixturePath)' \(persona) > '\(out.path)'",
                                               log: directory.appendingPathComponent("token.log"))
            let token = ShellScript.text(out).trimmingCharacters(in: .whitespacesAndNewlines)
            guard status == 0, !token.isEmpty else { throw ServerProcessError.didNotStart("no token for \(persona)") }
            return token
        }

        /// Revokes `token` as Keystone's admin (`DELETE /v3/auth/tokens`).
        func revoke(_ token: String) async throws {
            let admin = try await self.token("admin")
            let log = directory.appendingPathComponent("revoke.log")
            let status = await ShellScript.run(
                "test \"$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H 'X-Auth-Token: \(admin)' "
                    + "-H 'X-Subject-Token: \(token)' '\(url)/auth/tokens')\" = 204", log: log)
            guard status == 0 else { throw ServerProcessError.didNotStart("Keystone did not revoke the token") }
        }
    }

    /// `allot serve --auth keystone` against `keystone`, the service user's password in the environment.
    static func allot(_ keystone: Keystone, directory: URL, name: String, cacheSeconds: Int) async throws -> ServerProcess {
        try await ServerProcess(
            command: ["serve", "--no-agent", "--database", directory.appendingPathComponent("\(name).sqlite").path],
            logDirectory: directory,
            auth: ["--auth", "keystone", "--keystone-url", keystone.url, "--keystone-username", "placement",
                   "--keystone-project", "service", "--keystone-cache-seconds", String(cacheSeconds)],
            environment: ["ALLOT_KEYSTONE_PASSWORD": keystone.password("placement")], logLevel: "trace")
    }

    static func status(_ server: ServerProcess, token: String) async throws -> (HTTPResponse.Status, String) {
        let client = TestClient(host: "127.0.0.1", port: server.port)
        client.connect()
        defer { Task { try? await client.shutdown() } }
        let response = try await client.execute(TestClient.Request(
            "/resource_providers", method: .get,
            headers: [HTTPField.Name("x-auth-token")!: token, HTTPField.Name("openstack-api-version")!: "placement 1.39"]))
        return (response.status, response.body.map { String(buffer: $0) } ?? "")
    }

    /// A revoked token stops working once its cache entry ends (the cache time); with Keystone stopped, tokens
    /// already validated keep working and new ones get 503, and once Keystone is back every token works again;
    /// no token or password reaches Allot's logs, even at trace level.
    @Test(.enabled(if: enabled, "Keystone or upstream Placement is not installed (scripts/test.sh installs them)"))
    func revocationOutageAndNoSecretsInLogs() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-keystone-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keystone = try await Keystone.start(in: directory)
        do {
            try await Self.revocationOutageAndLogs(keystone, directory: directory)
            await keystone.stop()
        } catch {
            await keystone.stop()
            throw error
        }
    }

    static func revocationOutageAndLogs(_ keystone: Keystone, directory: URL) async throws {
        let shortCache = try await Self.allot(keystone, directory: directory, name: "short", cacheSeconds: 2)
        defer { shortCache.stop() }
        let longCache = try await Self.allot(keystone, directory: directory, name: "long", cacheSeconds: 300)
        defer { longCache.stop() }
        var secrets = [keystone.password("placement"), keystone.password("admin")]

        // Revocation: valid, then refused once the cache entry has ended.
        let revoked = try await keystone.token("alpha-admin")
        secrets.append(revoked)
        #expect(try await Self.status(shortCache, token: revoked).0 == .ok)
        try await keystone.revoke(revoked)
        var answers: [HTTPResponse.Status] = []
        for _ in 0..<40 {
            let (status, _) = try await Self.status(shortCache, token: revoked)
            answers.append(status)
            if status == .unauthorized { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(answers.last == .unauthorized, "the revoked token was still answered \(answers)")
        #expect(Set(answers).isSubset(of: [.ok, .unauthorized]))

        // Outage: cached tokens keep working, others get 503; back to normal when Keystone returns.
        let cached = try await keystone.token("nova")
        let fresh = try await keystone.token("alpha-admin")
        secrets += [cached, fresh]
        #expect(try await Self.status(longCache, token: cached).0 == .ok)
        await keystone.stop()
        #expect(try await Self.status(longCache, token: cached).0 == .ok)
        let (down, body) = try await Self.status(longCache, token: fresh)
        #expect(down == .serviceUnavailable)
        #expect(body.contains("The Keystone service is temporarily unavailable."))
        try await keystone.resume()
        #expect(try await Self.status(longCache, token: fresh).0 == .ok)
        #expect(try await Self.status(longCache, token: "garbage").0 == .unauthorized)

        shortCache.stop()
        longCache.stop()
        let logs = ShellScript.text(shortCache.logURL) + ShellScript.text(longCache.logURL)
        #expect(logs.contains("Signed in to Keystone"), "the logs do not show the service's sign-in")
        for secret in secrets where !secret.isEmpty {
            #expect(!logs.contains(secret), "a token or password reached the log")
        }
    }
}
