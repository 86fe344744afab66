import AllotCore
import AllotPlacement
import AllotStore
import AllotTracker
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The HTTP shell routes each call to the API that owns it (Placement, or the compute API and its ledger protocol),
/// and answers for an API the server does not have.
@Suite struct ShellTests {
    /// An agent (no Placement store) serves the version document and the compute API; Placement and the ledger
    /// protocol answer the agent's 404, after authentication and before policy.
    @Test func anAgentAnswersOnlyTheComputeAPI() async throws {
        let logger = Logger(label: "test")
        let database = try await Database.open(.sqliteMemory, logger: logger)
        let ledger = SQLComputeLedger(database: database, logger: logger, now: { Date().timeIntervalSince1970 })
        let app = buildApplication(
            store: nil, configuration: PlacementConfiguration(auth: .noauth), logger: logger,
            compute: ComputeService(ledger: ledger, tracker: nil))
        do {
            try await app.test(.router) { client in
                try await client.execute(uri: "/", method: .get) { #expect($0.status == .ok) }
                try await client.execute(uri: "/compute/v1/nodes", method: .get, headers: .admin()) { response in
                    #expect(response.status == .ok)
                    #expect(response.body.jsonObject["nodes"] as? [Any] != nil)
                }
                for path in ["/resource_providers", "/compute/v1/ledger"] {
                    try await client.execute(uri: path, method: .get) { #expect($0.status == .unauthorized, "\(path)") }
                    // A reader may not call either, yet learns the API is not here rather than a policy refusal.
                    var reader = HTTPFields.admin(token: "someone")
                    reader[.init("x-roles")!] = "reader"
                    try await client.execute(uri: path, method: .get, headers: reader) { response in
                        #expect(response.status == .notFound, "\(path)")
                        #expect(response.body.errorDetail?.contains("serves the compute API (/compute/v1) only") == true,
                                "\(path): \(response.body.errorDetail ?? "")")
                    }
                }
            }
            await database.close()
        } catch {
            await database.close()
            throw error
        }
    }

    /// A server without a compute ledger serves Placement; the compute API and the ledger protocol answer 404.
    @Test func withoutComputeTheComputeAPIIsNotFound() async throws {
        try await TestAPI.with(compute: false) { api in
            try await api.app.test(.router) { client in
                try await client.execute(uri: "/resource_providers", method: .get, headers: .admin()) {
                    #expect($0.status == .ok)
                }
                for path in ["/compute/v1/nodes", "/compute/v1/ledger"] {
                    try await client.execute(uri: path, method: .get, headers: .admin()) { response in
                        #expect(response.status == .notFound, "\(path)")
                        #expect(response.body.errorDetail?.contains("The compute API is not enabled on this server.")
                            == true, "\(path): \(response.body.errorDetail ?? "")")
                    }
                }
            }
        }
    }
}
