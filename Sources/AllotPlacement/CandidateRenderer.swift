import AllotCore

/// Writes the `GET /allocation_candidates` body straight to bytes (it can hold thousands of candidates, so it
/// skips the intermediate `JSONValue` tree), in the shapes each microversion defines.
struct CandidateRenderer {
    let snapshot: PlacementSnapshot
    let version: Microversion
    /// Classes any group asked for (summaries list only these before 1.27).
    let requested: Set<String>

    func render(_ result: CandidateResult) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + result.candidates.count * 200 + result.summaryProviders.count * 300)
        out.append(contentsOf: "{\"allocation_requests\": [".utf8)
        for (index, candidate) in result.candidates.enumerated() {
            if index > 0 { out.append(contentsOf: ", ".utf8) }
            write(candidate, to: &out)
        }
        out.append(contentsOf: "], \"provider_summaries\": {".utf8)
        for (index, provider) in result.summaryProviders.enumerated() {
            if index > 0 { out.append(contentsOf: ", ".utf8) }
            writeSummary(provider, to: &out)
        }
        out.append(contentsOf: "}}".utf8)
        return out
    }

    private func uuid(_ index: Int) -> String { snapshot.providers[index].uuid }

    private func writeResources(_ amounts: [String: Int], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (index, name) in amounts.keys.sorted().enumerated() {
            if index > 0 { out.append(contentsOf: ", ".utf8) }
            JSONValue.writeString(name, to: &out)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: String(amounts[name]!).utf8)
        }
        out.append(UInt8(ascii: "}"))
    }

    private func write(_ candidate: AllocationCandidate, to out: inout [UInt8]) {
        if !version.isAtLeast(1, 12) {
            out.append(contentsOf: "{\"allocations\": [".utf8)
            for (index, provider) in candidate.providerOrder.enumerated() {
                if index > 0 { out.append(contentsOf: ", ".utf8) }
                out.append(contentsOf: "{\"resource_provider\": {\"uuid\": ".utf8)
                JSONValue.writeString(uuid(provider), to: &out)
                out.append(contentsOf: "}, \"resources\": ".utf8)
                writeResources(candidate.allocations[provider]!, to: &out)
                out.append(UInt8(ascii: "}"))
            }
            out.append(contentsOf: "]}".utf8)
            return
        }
        out.append(contentsOf: "{\"allocations\": {".utf8)
        for (index, provider) in candidate.providerOrder.enumerated() {
            if index > 0 { out.append(contentsOf: ", ".utf8) }
            JSONValue.writeString(uuid(provider), to: &out)
            out.append(contentsOf: ": {\"resources\": ".utf8)
            writeResources(candidate.allocations[provider]!, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        if version.isAtLeast(1, 34) {
            out.append(contentsOf: ", \"mappings\": {".utf8)
            for (index, suffix) in candidate.mappings.keys.sorted().enumerated() {
                if index > 0 { out.append(contentsOf: ", ".utf8) }
                JSONValue.writeString(suffix, to: &out)
                out.append(contentsOf: ": [".utf8)
                for (position, provider) in candidate.mappings[suffix]!.enumerated() {
                    if position > 0 { out.append(contentsOf: ", ".utf8) }
                    JSONValue.writeString(uuid(provider), to: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    private func writeSummary(_ index: Int, to out: inout [UInt8]) {
        let provider = snapshot.providers[index]
        JSONValue.writeString(provider.uuid, to: &out)
        out.append(contentsOf: ": {\"resources\": {".utf8)
        let all = version.isAtLeast(1, 27)
        var first = true
        for name in provider.inventories.keys.sorted() where all || requested.contains(name) {
            if !first { out.append(contentsOf: ", ".utf8) }
            first = false
            JSONValue.writeString(name, to: &out)
            out.append(contentsOf: ": {\"capacity\": ".utf8)
            out.append(contentsOf: String(provider.inventories[name]!.capacity).utf8)
            out.append(contentsOf: ", \"used\": ".utf8)
            out.append(contentsOf: String(provider.used[name] ?? 0).utf8)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        if version.isAtLeast(1, 17) {
            out.append(contentsOf: ", \"traits\": [".utf8)
            for (position, trait) in provider.orderedTraits.enumerated() {
                if position > 0 { out.append(contentsOf: ", ".utf8) }
                JSONValue.writeString(trait, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        if version.isAtLeast(1, 29) {
            out.append(contentsOf: ", \"parent_provider_uuid\": ".utf8)
            if let parent = provider.parent {
                JSONValue.writeString(uuid(parent), to: &out)
            } else {
                out.append(contentsOf: "null".utf8)
            }
            out.append(contentsOf: ", \"root_provider_uuid\": ".utf8)
            JSONValue.writeString(uuid(provider.root), to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}
