import AllotCore
import AllotPlacement
import AllotStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore

/// An in-process Allot over an in-memory SQLite database.
struct TestAPI {
    let store: SQLPlacementStore
    let app: Application<PlacementResponder>

    /// Runs `body` with a fresh API and closes its database afterwards, however `body` ends.
    static func with<T: Sendable>(
        auth: AuthMode = .noauth, policy: Policy = Policy(), maxBodyBytes: Int = 1 << 20, compute: Bool = false,
        _ body: (TestAPI) async throws -> T
    ) async throws -> T {
        let logger = Logger(label: "test")
        let database = try await Database.open(.sqliteMemory, logger: logger)
        let store = SQLPlacementStore(database: database, logger: logger, now: { Date().timeIntervalSince1970 })
        let ledger = SQLComputeLedger(database: database, logger: logger, now: { Date().timeIntervalSince1970 })
        let app = buildApplication(
            store: store, configuration: PlacementConfiguration(auth: auth, policy: policy, maxBodyBytes: maxBodyBytes),
            logger: logger, compute: compute ? ComputeService(ledger: ledger, tracker: nil) : nil)
        do {
            let result = try await body(TestAPI(store: store, app: app))
            await database.close()
            return result
        } catch {
            await database.close()
            throw error
        }
    }
}

extension HTTPFields {
    /// Headers of an admin call at a microversion.
    static func admin(_ version: String = "1.39", token: String = "admin", json: Bool = true) -> HTTPFields {
        var fields: HTTPFields = [HTTPField.Name("x-auth-token")!: token]
        fields[HTTPField.Name("openstack-api-version")!] = "placement \(version)"
        if json { fields[.contentType] = "application/json" }
        return fields
    }
}

extension ByteBuffer {
    /// The body parsed as a JSON object (empty when it is not one).
    var jsonObject: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(readableBytesView))) as? [String: Any] ?? [:]
    }

    /// `errors[0].code` of a Placement error body.
    var errorCode: String? {
        ((jsonObject["errors"] as? [[String: Any]])?.first)?["code"] as? String
    }

    var errorDetail: String? {
        ((jsonObject["errors"] as? [[String: Any]])?.first)?["detail"] as? String
    }
}

/// A uuid string in Placement's lower-case form.
func newUUID() -> String { UUID().uuidString.lowercased() }
