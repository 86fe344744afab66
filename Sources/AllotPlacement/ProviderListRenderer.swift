import AllotCore

/// Writes the `GET /resource_providers` body for providers of a search snapshot straight to bytes, exactly as
/// `PlacementRoutes.providerJSON` inside `{"resource_providers": [...]}` serializes (same keys, order, links and
/// spacing at every microversion).
struct ProviderListRenderer {
    let snapshot: PlacementSnapshot
    let version: Microversion

    /// The links a provider gets at `version`, after `/resource_providers/<uuid>` (`""` is `self`): this
    /// renderer's and `PlacementRoutes.providerJSON`'s.
    static func linkSuffixes(_ version: Microversion) -> [(rel: StaticString, path: StaticString)] {
        var links: [(rel: StaticString, path: StaticString)] = [
            ("self", ""), ("inventories", "/inventories"), ("usages", "/usages"),
        ]
        if version.isAtLeast(1, 1) { links.append(("aggregates", "/aggregates")) }
        if version.isAtLeast(1, 6) { links.append(("traits", "/traits")) }
        if version.isAtLeast(1, 11) { links.append(("allocations", "/allocations")) }
        return links
    }

    /// The body listing `indexes` (snapshot indexes, in the order given).
    func render(_ indexes: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32 + indexes.count * 700)
        let links = Self.linkSuffixes(version)
        let withTree = version.isAtLeast(1, 14)
        out.appendLiteral("{\"resource_providers\": [")
        for (position, index) in indexes.enumerated() {
            if position > 0 { out.appendLiteral(", ") }
            write(index, links: links, withTree: withTree, to: &out)
        }
        out.appendLiteral("]}")
        return out
    }

    private func write(
        _ index: Int, links: [(rel: StaticString, path: StaticString)], withTree: Bool, to out: inout [UInt8]
    ) {
        let provider = snapshot.providers[index]
        // The uuid as a JSON string, without its quotes, for the links.
        var quoted: [UInt8] = []
        JSONValue.writeString(provider.uuid, to: &quoted)
        let escaped = quoted.dropFirst().dropLast()
        out.appendLiteral("{\"uuid\": ")
        out.append(contentsOf: quoted)
        out.appendLiteral(", \"name\": ")
        JSONValue.writeString(provider.name, to: &out)
        out.appendLiteral(", \"generation\": ")
        JSONValue.writeInt(provider.generation, to: &out)
        out.appendLiteral(", \"links\": [")
        for (position, link) in links.enumerated() {
            if position > 0 { out.appendLiteral(", ") }
            out.appendLiteral("{\"rel\": \"")
            out.appendLiteral(link.rel)
            out.appendLiteral("\", \"href\": \"/resource_providers/")
            out.append(contentsOf: escaped)
            out.appendLiteral(link.path)
            out.appendLiteral("\"}")
        }
        out.append(UInt8(ascii: "]"))
        if withTree {
            out.appendLiteral(", \"parent_provider_uuid\": ")
            if let parent = provider.parent {
                JSONValue.writeString(snapshot.providers[parent].uuid, to: &out)
            } else {
                out.appendLiteral("null")
            }
            out.appendLiteral(", \"root_provider_uuid\": ")
            JSONValue.writeString(snapshot.providers[provider.root].uuid, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}
