import AllotCore
import AllotStore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import AllotPlacement

/// The operator console (`/ui`): its files, headers and the API parts it reads (docs/console.md).
@Suite struct ConsoleTests {
    static var consoleDirectory: URL { ShellScript.root.appendingPathComponent("Sources/AllotPlacement/Console") }

    /// The embedded files are the directory's, byte for byte (`scripts/embed-console.py` was run), and weigh at
    /// most 300 KB together.
    @Test func embeddedFilesAreTheConsoleDirectoryAndSmall() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.consoleDirectory.path)
            .filter { !$0.hasPrefix(".") }.sorted()
        #expect(names == ConsoleAssets.files.keys.sorted(), "run python3 scripts/embed-console.py")
        var total = 0
        for name in names {
            let bytes = try Data(contentsOf: Self.consoleDirectory.appendingPathComponent(name))
            total += bytes.count
            #expect(ConsoleAssets.files[name].map { Data($0.utf8) } == bytes,
                    "\(name) differs from its embedded copy: run python3 scripts/embed-console.py")
        }
        #expect(names.contains("index.html") && names.contains("app.js"))
        #expect(total <= 300_000, "the console weighs \(total) bytes")
        print("console: \(names.count) files, \(total) bytes")
    }

    /// No file of the console runs inline script or loads anything from elsewhere.
    @Test func filesLoadNothingFromElsewhere() {
        for (name, text) in ConsoleAssets.files {
            for needle in ["http://", "https://", "eval(", "new Function", "innerHTML", "document.write"] {
                #expect(!text.contains(needle) || (needle.hasPrefix("http") && Self.onlyNamespaces(text)),
                        "\(name) contains \(needle)")
            }
            if name.hasSuffix(".html") {
                #expect(!text.contains("<script>") && !text.contains("style=\""), "\(name) has inline script or style")
            }
        }
    }

    /// The SVG namespace is the one `http://` a module may name (createElementNS), never a URL it loads.
    static func onlyNamespaces(_ text: String) -> Bool {
        text.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").range(of: "http://") == nil
            && !text.contains("https://")
    }

    @Test func filesAndSessionCarrySecurityHeaders() async throws {
        try await TestAPI.with(auth: .tokens([])) { api in
            try await api.app.test(.router) { client in
                for path in ["/ui", "/ui/", "/ui/index.html", "/ui/app.js", "/ui/style.css"] {
                    try await client.execute(uri: path, method: .get) { response in
                        #expect(response.status == .ok, "\(path)")
                        let policy = response.headers[.contentSecurityPolicy] ?? ""
                        #expect(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'")
                            && !policy.contains("unsafe"), "\(path): \(policy)")
                        #expect(response.headers[.xContentTypeOptions] == "nosniff")
                        #expect(response.headers[HTTPField.Name("x-frame-options")!] == "DENY")
                    }
                }
                try await client.execute(uri: "/ui/", method: .get) { response in
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    #expect(String(buffer: response.body).contains("/ui/app.js"))
                }
                try await client.execute(uri: "/ui/app.js", method: .get) {
                    #expect($0.headers[.contentType] == "text/javascript; charset=utf-8")
                }
                // Public, and says how to log in; the data itself needs a token.
                try await client.execute(uri: "/ui/session.json", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.body.jsonObject["auth"] as? String == "token")
                    #expect(response.body.jsonObject["placement"] as? Bool == true)
                }
                try await client.execute(uri: "/compute/v1/nodes", method: .get) { #expect($0.status == .unauthorized) }
                for path in ["/ui/missing.js", "/ui/.hidden", "/ui/a/b.js", "/ui/..%2Fetc%2Fpasswd"] {
                    try await client.execute(uri: path, method: .get) { #expect($0.status == .notFound, "\(path)") }
                }
                try await client.execute(uri: "/ui/index.html", method: .post) { response in
                    #expect(response.status == .methodNotAllowed)
                    #expect(response.headers[.allow] == "GET, HEAD")
                }
            }
        }
    }

    @Test func browsersAreRedirectedToTheConsoleAndClientsGetTheVersionDocument() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
                try await client.execute(uri: "/", method: .get, headers: [.accept: browser]) { response in
                    #expect(response.status == .found)
                    #expect(response.headers[.location] == "/ui/")
                }
                for headers: HTTPFields in [
                    [:], [.accept: "application/json"], [.accept: "*/*"],
                    [.accept: browser, HTTPField.Name("openstack-api-version")!: "placement 1.39"],
                ] {
                    try await client.execute(uri: "/", method: .get, headers: headers) { response in
                        #expect(response.status == .ok, "\(headers)")
                        #expect(response.body.jsonObject["versions"] != nil)
                    }
                }
            }
        }
    }

    @Test func noConsoleTurnsItOff() async throws {
        let logger = Logger(label: "test")
        let database = try await Database.open(.sqliteMemory, logger: logger)
        let store = SQLPlacementStore(database: database, logger: logger, now: { Date().timeIntervalSince1970 })
        let app = buildApplication(
            store: store, configuration: PlacementConfiguration(auth: .noauth, console: false), logger: logger)
        try await app.test(.router) { client in
            // Then /ui is a path of the API like any unknown one: a token, then 404.
            try await client.execute(uri: "/ui/", method: .get, headers: [.accept: "text/html"]) {
                #expect($0.status == .unauthorized)
            }
            try await client.execute(uri: "/ui/", method: .get, headers: .admin(json: false)) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/", method: .get, headers: [.accept: "text/html"]) {
                #expect($0.status == .ok)
            }
        }
        await database.close()
    }

    /// `GET /compute/v1/fit` agrees with `GET /allocation_candidates` on which trees fit, and says why the others
    /// were left out.
    @Test func fitExplainsWhatAllocationCandidatesLeaveOut() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                func send(_ path: String, _ method: HTTPRequest.Method, _ body: String? = nil) async throws -> [String: Any] {
                    try await client.execute(
                        uri: path, method: method, headers: .admin(), body: body.map { ByteBuffer(string: $0) }
                    ) { response in
                        #expect(response.status.code < 300, "\(method) \(path): \(String(buffer: response.body))")
                        return response.body.jsonObject
                    }
                }
                // name, VCPU total, max_unit, traits
                let fleet: [(String, Int, Int, [String])] = [
                    ("roomy", 8, 8, []), ("small", 3, 4, []), ("capped", 16, 2, []), ("gpu", 8, 8, ["CUSTOM_GPU"]),
                ]
                var uuids: [String: String] = [:]
                for (name, total, maxUnit, traits) in fleet {
                    let uuid = newUUID()
                    uuids[name] = uuid
                    _ = try await send("/resource_providers", .post, "{\"name\": \"\(name)\", \"uuid\": \"\(uuid)\"}")
                    _ = try await send("/resource_providers/\(uuid)/inventories", .put,
                        "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": \(total), "
                            + "\"max_unit\": \(maxUnit)}, \"MEMORY_MB\": {\"total\": 4096}}}")
                    if !traits.isEmpty {
                        _ = try await send("/traits/\(traits[0])", .put)
                        _ = try await send("/resource_providers/\(uuid)/traits", .put,
                            "{\"resource_provider_generation\": 1, \"traits\": [\"\(traits[0])\"]}")
                    }
                }
                let bare = newUUID()
                _ = try await send("/resource_providers", .post, "{\"name\": \"<b>bare</b>\", \"uuid\": \"\(bare)\"}")
                let query = "resources=VCPU:4&required=!CUSTOM_GPU"
                let fit = try await send("/compute/v1/fit?\(query)", .get)
                let candidates = try await send("/allocation_candidates?\(query)", .get)
                let candidateRoots = Set((candidates["provider_summaries"] as? [String: Any] ?? [:]).keys)
                let fitting = (fit["fitting"] as? [[String: Any]] ?? []).compactMap { $0["uuid"] as? String }
                #expect(Set(fitting) == candidateRoots)
                #expect(fitting == [uuids["roomy"]!])
                var kinds: [String: [String]] = [:]
                for entry in fit["excluded"] as? [[String: Any]] ?? [] {
                    let reasons = entry["reasons"] as? [[String: Any]] ?? []
                    kinds[entry["name"] as? String ?? ""] = reasons.compactMap { $0["kind"] as? String }
                    #expect(reasons.allSatisfy { !($0["detail"] as? String ?? "").isEmpty })
                }
                #expect(kinds == ["small": ["capacity"], "capped": ["max_unit"], "gpu": ["trait_forbidden"],
                                  "<b>bare</b>": ["no_inventory"]])
                // An in_tree provider that does not exist: every tree is left out for it.
                let missing = try await send("/compute/v1/fit?resources=VCPU:1&in_tree=\(newUUID())", .get)
                let reasons = (missing["excluded"] as? [[String: Any]] ?? []).map {
                    ($0["reasons"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
                }
                #expect(reasons.count == 5 && reasons.allSatisfy { $0 == ["not_in_tree"] })
                // Unknown names are refused, and so is a version before allocation candidates existed.
                try await client.execute(uri: "/compute/v1/fit?resources=CUSTOM_NOPE:1", method: .get, headers: .admin()) {
                    #expect($0.status == .badRequest)
                }
                try await client.execute(uri: "/compute/v1/fit?resources=VCPU:1", method: .get, headers: .admin("1.9")) {
                    #expect($0.status == .notFound)
                }
            }
        }
    }
}

/// `GET /compute/v1/nodes` with `limit`, `offset`, `sort`, `q` and `state`, against a real server's fleet.
@Suite(.serialized) struct NodeListingTests {
    @Test func pagesSortsAndFiltersTheFleet() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-listing-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // Twelve nodes, node-00 the smallest; node-03, node-06 … carry CUSTOM_BIG.
        let nodes = (0..<12).map { index in
            "{\"hostname\": \"node-\(String(format: "%02d", index))\", \"vcpus\": \(4 + index), \"memory_mb\": 8192, "
                + "\"disk_gb\": 100\(index % 3 == 0 && index > 0 ? ", \"traits\": [\"CUSTOM_BIG\"]" : "")}"
        }
        try "{\"nodes\": [\(nodes.joined(separator: ", "))]}".write(
            to: directory.appendingPathComponent("nodes.json"), atomically: true, encoding: .utf8)
        let server = try await ComputeServer.start(directory)
        defer { server.stop() }
        func names(_ query: String) async throws -> (names: [String], total: Int?) {
            let response = try await server.request("/compute/v1/nodes?\(query)", method: .get)
            #expect(response.status == .ok, "\(query): \(response.body.map { String(buffer: $0) } ?? "")")
            let object = response.body?.jsonObject ?? [:]
            let list = (object["nodes"] as? [[String: Any]] ?? []).compactMap { $0["hostname"] as? String }
            return (list, object["total"] as? Int)
        }
        let all = try await names("")
        #expect(all.names.count == 12 && all.total == nil)
        let page = try await names("limit=5&offset=5")
        #expect(page.names == ["node-05", "node-06", "node-07", "node-08", "node-09"] && page.total == 12)
        let last = try await names("limit=5&offset=10")
        #expect(last.names == ["node-10", "node-11"] && last.total == 12)
        let beyond = try await names("limit=5&offset=50")
        #expect(beyond.names.isEmpty && beyond.total == 12)
        #expect(try await names("limit=3&sort=-hostname").names == ["node-11", "node-10", "node-09"])
        #expect(try await names("limit=2&sort=-free:VCPU").names == ["node-11", "node-10"])
        #expect(try await names("limit=2&sort=free:VCPU").names == ["node-00", "node-01"])
        let big = try await names("q=custom_big")
        #expect(big.names == ["node-03", "node-06", "node-09"] && big.total == 3)
        #expect(try await names("q=node-1&limit=1").total == 2)
        #expect(try await names("state=disabled").total == 0)
        #expect(try await names("state=enabled").total == 12)
        // A claim moves its node to the top of "most used".
        let node = try #require(((try await server.request("/compute/v1/nodes?q=node-04", method: .get)).body?
            .jsonObject["nodes"] as? [[String: Any]])?.first?["uuid"] as? String)
        let claim = try await server.request(
            "/compute/v1/instances", method: .post, body: ComputeServer.buildBody(newUUID(), node: node, vcpus: 3))
        #expect(claim.status == .created)
        #expect(try await names("limit=1&sort=-used:VCPU").names == ["node-04"])
        // A page in name order (sorted on the stored records, then only its nodes brought up to date) shows the claim.
        let paged = try await server.request("/compute/v1/nodes?q=node-04&limit=1", method: .get)
        let usage = ((paged.body?.jsonObject["nodes"] as? [[String: Any]])?.first?["usage"] as? [String: Any])?["VCPU"]
        #expect(usage as? Int == 3)
        #expect(try await names("limit=1&sort=-usage:VCPU").names == ["node-04"])
        #expect(try await names("limit=1&sort=-instances").names == ["node-04"])
        for bad in ["limit=0", "limit=1001", "limit=x", "offset=-1", "sort=size", "sort=used", "state=broken"] {
            let response = try await server.request("/compute/v1/nodes?\(bad)", method: .get)
            #expect(response.status == .badRequest, "\(bad)")
        }
    }
}

/// `allot agent` serves the console for its own host, read-only: no Placement pages.
@Suite(.serialized) struct AgentConsoleTests {
    @Test func theAgentServesTheConsoleWithoutPlacement() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-agent-ui-\(newUUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try ComputeServer.nodesJSON().write(
            to: directory.appendingPathComponent("nodes.json"), atomically: true, encoding: .utf8)
        let placement = try await ServerProcess(
            database: directory.appendingPathComponent("allot.sqlite").path, logDirectory: directory)
        defer { placement.stop() }
        let agent = try await ServerProcess(
            command: ["agent", "--placement-url", "http://127.0.0.1:\(placement.port)", "--placement-token", "admin",
                      "--database", directory.appendingPathComponent("agent.sqlite").path]
                + ComputeServer.fakeDriver(nodesFile: directory.appendingPathComponent("nodes.json").path),
            logDirectory: directory)
        defer { agent.stop() }
        let session = try await agent.request("/ui/session.json", method: .get)
        #expect(session.status == .ok)
        #expect(session.body?.jsonObject["placement"] as? Bool == false)
        let page = try await agent.request("/ui/", method: .get)
        #expect(page.status == .ok && page.headers[.contentSecurityPolicy] != nil)
        // Its own nodes, paged as the server's; where-does-it-fit needs Placement, which it does not serve.
        let nodes = try await agent.request("/compute/v1/nodes?limit=1", method: .get)
        #expect(nodes.body?.jsonObject["total"] as? Int == 2)
        #expect(try await agent.request("/compute/v1/fit?resources=VCPU:1", method: .get).status == .notFound)
    }
}

/// The console in a real headless Chromium, through the DevTools protocol (`scripts/console-check.py`): every page
/// against the API's answers, no console error, a claim from the CLI shown live, markup in names as text, a reader's
/// view, and the time a 5,000-node fleet takes to be interactive (reported). Enabled when `ALLOT_TEST_CHROMIUM`
/// names the browser (scripts/test.sh sets it when Chromium is installed; `.ci/run` installs it).
@Suite(.serialized) struct ConsoleBrowserTests {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    @Test(.enabled(if: environment["ALLOT_TEST_CHROMIUM"] != nil,
                   "Chromium is not installed (apt-get install chromium; .ci/run installs it)"))
    func everyPageShowsWhatTheAPISays() async throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("console-check-\(newUUID())")
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("console-check-\(newUUID()).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let script = ShellScript.root.appendingPathComponent("scripts/console-check.py").path
        let binary = ServerProcess.binary.path
        let chromium = Self.environment["ALLOT_TEST_CHROMIUM"]!
        let status = await ShellScript.run(
            "python3 '\(script)' --allot '\(binary)' --chromium '\(chromium)' --out '\(out.path)'", log: log)
        let text = ShellScript.text(log)
        let summary = text.split(separator: "\n").last { $0.hasPrefix("console-check: ") && $0.contains(" checks, ") }
        let numbers = summary.map { $0.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) } } ?? []
        print(summary ?? "console-check: no summary")
        print("console-check: screenshots and report in \(out.path)")
        if let timing = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }) { print("console-check: \(timing)") }
        #expect(numbers.count == 2, "no summary line:\n\(text.suffix(6000))")
        if numbers.count == 2 {
            #expect(numbers[0] >= 18, "too few checks ran: \(text.suffix(6000))")
            #expect(numbers[1] == 0, "failed checks:\n\(text.suffix(8000))")
        }
        #expect(status == 0, "console-check.py failed:\n\(text.suffix(8000))")
    }
}
