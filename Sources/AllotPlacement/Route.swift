import HTTPTypes

/// The Placement routes: a method and path pattern mapped to a handler name.
struct Route: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter
    }

    /// The path as documented (`/resource_providers/{uuid}`): parameters named in braces.
    let pattern: String
    let segments: [Segment]
    /// Handlers by method, in the order upstream lists them in `Allow` headers.
    let methods: [(HTTPRequest.Method, Endpoint)]

    init(_ pattern: String, _ methods: [(HTTPRequest.Method, Endpoint)]) {
        self.pattern = pattern
        segments = pattern.split(separator: "/").map { $0.hasPrefix("{") ? .parameter : .literal(String($0)) }
        self.methods = methods
    }

    /// The path parameters when `path` matches this route.
    func match(_ components: [Substring]) -> [String]? {
        guard components.count == segments.count else { return nil }
        var parameters: [String] = []
        for (segment, component) in zip(segments, components) {
            switch segment {
            case .literal(let text): guard text == component else { return nil }
            case .parameter:
                // As upstream's routes (`[^/]+`): an empty segment matches no parameter, so `…/inventories/` is a 404.
                guard !component.isEmpty else { return nil }
                parameters.append(String(component).removingPercentEncodingSafe.latin1Reading)
            }
        }
        return parameters
    }
}

/// Every operation of the API.
enum Endpoint: Sendable {
    case root
    case listProviders, createProvider, showProvider, updateProvider, deleteProvider
    case listInventories, replaceInventories, deleteInventories
    case createInventory, showInventory, updateInventory, deleteInventory
    case listResourceClasses, createResourceClass, showResourceClass, updateResourceClass, deleteResourceClass
    case listTraits, showTrait, createTrait, deleteTrait
    case providerTraits, setProviderTraits, deleteProviderTraits
    case providerAggregates, setProviderAggregates
    case consumerAllocations, setConsumerAllocations, deleteConsumerAllocations, postAllocations
    case providerAllocations, providerUsages, usages
    case allocationCandidates, reshaper
    /// Allot's "where does it fit?": allocation candidates, and why every other provider tree was left out.
    case computeFit
    // Allot's compute API (`/compute/v1`).
    case computeNodes, computeNode, computeInstances, computeBuild, computeInstance, computeDeleteInstance
    case computeInstanceState, computeInstanceAbort, computeMigrations, computeMove, computeMigration
    case computeMigrationAction, computeAudit, computeEvents
    /// The ledger protocol for agents (`allot serve` only).
    case computeLedgerInfo, computeLedger

    /// Part of Allot's compute API (served by `allot agent` too), rather than of Placement.
    var isCompute: Bool {
        switch self {
        case .computeNodes, .computeNode, .computeInstances, .computeBuild, .computeInstance, .computeDeleteInstance,
            .computeInstanceState, .computeInstanceAbort, .computeMigrations, .computeMove, .computeMigration,
            .computeMigrationAction, .computeAudit, .computeEvents:
            true
        default: false
        }
    }
}

extension Route {
    static let all: [Route] = [
        Route("/", [(.get, .root)]),
        Route("/resource_providers", [(.get, .listProviders), (.post, .createProvider)]),
        Route("/resource_providers/{uuid}", [(.get, .showProvider), (.put, .updateProvider), (.delete, .deleteProvider)]),
        Route("/resource_providers/{uuid}/inventories",
              [(.get, .listInventories), (.post, .createInventory), (.put, .replaceInventories), (.delete, .deleteInventories)]),
        Route("/resource_providers/{uuid}/inventories/{rc}",
              [(.get, .showInventory), (.put, .updateInventory), (.delete, .deleteInventory)]),
        Route("/resource_providers/{uuid}/usages", [(.get, .providerUsages)]),
        Route("/resource_providers/{uuid}/aggregates", [(.get, .providerAggregates), (.put, .setProviderAggregates)]),
        Route("/resource_providers/{uuid}/allocations", [(.get, .providerAllocations)]),
        Route("/resource_providers/{uuid}/traits",
              [(.get, .providerTraits), (.put, .setProviderTraits), (.delete, .deleteProviderTraits)]),
        Route("/resource_classes", [(.get, .listResourceClasses), (.post, .createResourceClass)]),
        Route("/resource_classes/{name}",
              [(.get, .showResourceClass), (.put, .updateResourceClass), (.delete, .deleteResourceClass)]),
        Route("/traits", [(.get, .listTraits)]),
        Route("/traits/{name}", [(.get, .showTrait), (.put, .createTrait), (.delete, .deleteTrait)]),
        Route("/allocations", [(.post, .postAllocations)]),
        Route("/allocations/{consumer_uuid}",
              [(.get, .consumerAllocations), (.put, .setConsumerAllocations), (.delete, .deleteConsumerAllocations)]),
        Route("/allocation_candidates", [(.get, .allocationCandidates)]),
        Route("/usages", [(.get, .usages)]),
        Route("/reshaper", [(.post, .reshaper)]),
        Route("/compute/v1/nodes", [(.get, .computeNodes)]),
        Route("/compute/v1/nodes/{uuid}", [(.get, .computeNode)]),
        Route("/compute/v1/instances", [(.get, .computeInstances), (.post, .computeBuild)]),
        Route("/compute/v1/instances/{uuid}", [(.get, .computeInstance), (.delete, .computeDeleteInstance)]),
        Route("/compute/v1/instances/{uuid}/state", [(.post, .computeInstanceState)]),
        Route("/compute/v1/instances/{uuid}/abort", [(.post, .computeInstanceAbort)]),
        Route("/compute/v1/migrations", [(.get, .computeMigrations), (.post, .computeMove)]),
        Route("/compute/v1/migrations/{uuid}", [(.get, .computeMigration)]),
        Route("/compute/v1/migrations/{uuid}/{action}", [(.post, .computeMigrationAction)]),
        Route("/compute/v1/audit", [(.post, .computeAudit)]),
        Route("/compute/v1/fit", [(.get, .computeFit)]),
        Route("/compute/v1/events", [(.get, .computeEvents)]),
        Route("/compute/v1/ledger", [(.get, .computeLedgerInfo)]),
        Route("/compute/v1/ledger/{call}", [(.post, .computeLedger)]),
    ]
}

extension String {
    /// The UTF-8 bytes read as Latin-1, as a WSGI server hands upstream its path (PEP 3333): non-ASCII names in a
    /// path come out garbled in upstream's messages ("CUSTOM_Ä" is named "CUSTOM_Ã\u{84}").
    var latin1Reading: String {
        guard !utf8.allSatisfy({ $0 < 0x80 }) else { return self }
        var result = ""
        result.unicodeScalars.append(contentsOf: utf8.map { Unicode.Scalar($0) })
        return result
    }

    /// Percent-decoded text; the original when it is not valid percent-encoding.
    var removingPercentEncodingSafe: String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
