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
        case .allocationCandidates, .computeFit: return Microversion(1, 10)
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

    /// Runs the endpoint's handler on the routes that own it; `dispatch` has made the checks above (before policy)
    /// already.
    func handle(_ endpoint: Endpoint, _ call: Call) async throws -> Reply {
        if endpoint == .root {
            if call.method == .get, console != nil, Console.wantsConsole(call.headers) {
                // A browser opening the service's address: the console (API clients still get the version document).
                return Reply(status: .found, body: nil, headers: [(.location, "/ui/"), (.cacheControl, "no-cache")])
            }
            return root().cacheHeaders(call, lastModified: nil)
        }
        if endpoint.isCompute || endpoint.isLedger {
            guard let compute else { throw PlacementError.notFound(ComputeRoutes.notEnabled) }
            return try await compute.handle(endpoint, call)
        }
        guard let placement else { throw PlacementError.notFound(Self.agentOnly) }
        return try await placement.handle(endpoint, call)
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
