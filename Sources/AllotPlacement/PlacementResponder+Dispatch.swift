import AllotCore
import HTTPTypes

extension PlacementResponder {
    /// The microversion from which an endpoint exists; earlier versions get `404`.
    static func minimumVersion(_ endpoint: Endpoint) -> Microversion {
        switch endpoint {
        case .providerAggregates, .setProviderAggregates: return Microversion(1, 1)
        case .listResourceClasses, .createResourceClass, .showResourceClass, .updateResourceClass,
            .deleteResourceClass:
            return Microversion(1, 2)
        case .listTraits, .showTrait, .createTrait, .deleteTrait, .providerTraits, .setProviderTraits,
            .deleteProviderTraits:
            return Microversion(1, 6)
        case .usages: return Microversion(1, 9)
        case .allocationCandidates: return Microversion(1, 10)
        case .postAllocations: return Microversion(1, 13)
        case .reshaper: return Microversion(1, 30)
        default: return .minimum
        }
    }

    /// Whether the endpoint reads a JSON body (and so requires `Content-Type: application/json`).
    static func takesJSON(_ endpoint: Endpoint, _ version: Microversion) -> Bool {
        switch endpoint {
        case .createProvider, .updateProvider, .replaceInventories, .createInventory, .updateInventory,
            .createResourceClass, .setProviderTraits, .setProviderAggregates, .setConsumerAllocations,
            .postAllocations, .reshaper, .computeBuild, .computeInstanceState, .computeMove, .computeLedger:
            return true
        case .updateResourceClass:
            return !version.isAtLeast(1, 7)
        default:
            return false
        }
    }

    /// The checks of upstream's handler decorators that need no body, in their order: `version_handler` (a version
    /// older than the endpoint: webob's bare 404) and `require_content` (`415` unless the body is JSON).
    static func checkVersionAndContentType(_ endpoint: Endpoint, version: Microversion, headers: HTTPFields) throws {
        guard version >= minimumVersion(endpoint) else {
            // webob's bare HTTPNotFound from upstream's version_handler: no detail.
            throw PlacementError.notFound("")
        }
        if takesJSON(endpoint, version) {
            // As webob's `content_type` (the header up to `;`, compared case-sensitively by upstream).
            let type = headers[.contentType]
            let mediaType = type?.split(separator: ";", omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters() }
            if mediaType != "application/json" {
                let shown = mediaType.flatMap { $0.isEmpty ? nil : $0 } ?? "None"
                var error = PlacementError(.unsupportedMediaType,
                    "The media type \(shown) is not supported, use application/json")
                error.explanation = "The request media type \(type.flatMap { $0.isEmpty ? nil : $0 } ?? "None") is "
                    + "not supported by this server. "
                throw error
            }
        }
    }

    /// Runs the endpoint's handler; `dispatch` has made the checks above (before policy) already.
    func handle(_ endpoint: Endpoint, _ call: Call) async throws -> Reply {
        switch endpoint {
        case .root: return root().cacheHeaders(call, lastModified: nil)
        case .listProviders: return try await listProviders(call)
        case .createProvider: return try await createProvider(call)
        case .showProvider: return try await showProvider(call)
        case .updateProvider: return try await updateProvider(call)
        case .deleteProvider: return try await deleteProvider(call)
        case .listInventories: return try await listInventories(call)
        case .replaceInventories: return try await replaceInventories(call)
        case .deleteInventories: return try await deleteInventories(call)
        case .createInventory: return try await createInventory(call)
        case .showInventory: return try await showInventory(call)
        case .updateInventory: return try await updateInventory(call)
        case .deleteInventory: return try await deleteInventory(call)
        case .listResourceClasses: return try await listResourceClasses(call)
        case .createResourceClass: return try await createResourceClass(call)
        case .showResourceClass: return try await showResourceClass(call)
        case .updateResourceClass: return try await updateResourceClass(call)
        case .deleteResourceClass: return try await deleteResourceClass(call)
        case .listTraits: return try await listTraits(call)
        case .showTrait: return try await showTrait(call)
        case .createTrait: return try await createTrait(call)
        case .deleteTrait: return try await deleteTrait(call)
        case .providerTraits: return try await providerTraits(call)
        case .setProviderTraits: return try await setProviderTraits(call)
        case .deleteProviderTraits: return try await deleteProviderTraits(call)
        case .providerAggregates: return try await providerAggregates(call)
        case .setProviderAggregates: return try await setProviderAggregates(call)
        case .consumerAllocations: return try await consumerAllocations(call)
        case .setConsumerAllocations: return try await setConsumerAllocations(call)
        case .deleteConsumerAllocations: return try await deleteConsumerAllocations(call)
        case .postAllocations: return try await postAllocations(call)
        case .providerAllocations: return try await providerAllocations(call)
        case .providerUsages: return try await providerUsages(call)
        case .usages: return try await usages(call)
        case .allocationCandidates: return try await allocationCandidates(call)
        case .reshaper: return try await reshaper(call)
        case .computeNodes: return try await computeNodes(call)
        case .computeNode: return try await computeNode(call)
        case .computeInstances: return try await computeInstances(call)
        case .computeBuild: return try await computeBuild(call)
        case .computeInstance: return try await computeInstance(call)
        case .computeDeleteInstance: return try await computeOperation(call, .delete(instance: try uuidParameter(call, 0)))
        case .computeInstanceState: return try await computeInstanceState(call)
        case .computeInstanceAbort:
            return try await computeOperation(call, .abortBuild(instance: try uuidParameter(call, 0)))
        case .computeMigrations: return try await computeMigrations(call)
        case .computeMove: return try await computeMove(call)
        case .computeMigration: return try await computeMigration(call)
        case .computeMigrationAction: return try await computeMigrationAction(call)
        case .computeAudit: return try await computeAudit(call)
        case .computeEvents: return try await computeEvents(call)
        case .computeLedgerInfo: return try computeLedgerInfo()
        case .computeLedger: return try await computeLedger(call)
        }
    }

    /// Runs `body`, answering a missing provider with the handler's own 404 (`"<prefix><detail>"`), as the
    /// upstream handlers that catch the lookup's `NotFound` do (their 404 keeps `Vary`).
    func catchingProviderLookup<T>(_ prefix: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PlacementError where error.kind == .notFound && error.escapesHandler {
            throw PlacementError.notFound(prefix + error.detail)
        }
    }

    func root() -> Reply {
        Reply.json(.object([
            "versions": .array([
                .object([
                    "id": "v1.0", "max_version": .string(Microversion.maximum.description),
                    "min_version": .string(Microversion.minimum.description), "status": "CURRENT",
                    "links": .array([.object(["rel": "self", "href": ""])]),
                ])
            ])
        ]))
    }
}
