import AllotCore

/// Writes the `GET /allocation_candidates` body straight to bytes (it can hold thousands of candidates, so it
/// skips the intermediate `JSONValue` tree), in the shapes each microversion defines.
struct CandidateRenderer {
    let snapshot: PlacementSnapshot
    let version: Microversion
    let query: CandidateQuery
    /// Classes any group asked for (summaries list only these before 1.27).
    let requested: Set<String>
    /// Group indexes in suffix order, as `mappings` lists them.
    private let groupsBySuffix: [Int]
    /// Each class name, already quoted.
    private let quotedClasses: [[UInt8]]
    /// Rendered summaries of this snapshot, reused across requests (1.29 and later).
    private let summaries: SummaryCache?

    init(snapshot: PlacementSnapshot, version: Microversion, query: CandidateQuery, summaries: SummaryCache? = nil) {
        self.snapshot = snapshot
        self.summaries = summaries
        self.version = version
        self.query = query
        self.requested = Set(query.groups.flatMap { $0.resources.map(\.0) })
        self.groupsBySuffix = query.groups.indices.sorted { query.groups[$0].suffix < query.groups[$1].suffix }
        self.quotedClasses = snapshot.classNames.map { name in
            var bytes: [UInt8] = []
            JSONValue.writeString(name, to: &bytes)
            return bytes
        }
    }

    func render(_ result: CandidateResult) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + result.candidates.count * 200 + result.summaryProviders.count * 300)
        out.appendLiteral("{\"allocation_requests\": [")
        for (index, candidate) in result.candidates.enumerated() {
            if index > 0 { out.appendLiteral(", ") }
            write(candidate, to: &out)
        }
        out.appendLiteral("], \"provider_summaries\": {")
        let cacheable = version.isAtLeast(1, 29) ? summaries : nil
        for (index, provider) in result.summaryProviders.enumerated() {
            if index > 0 { out.appendLiteral(", ") }
            if let cacheable {
                out.append(contentsOf: cacheable.fragment(provider) {
                    var fragment: [UInt8] = []
                    writeSummary(provider, to: &fragment)
                    return fragment
                })
            } else {
                writeSummary(provider, to: &out)
            }
        }
        out.appendLiteral("}}")
        return out
    }

    private func uuid(_ index: Int) -> String { snapshot.providers[index].uuid }

    /// `{"CLASS": amount, ...}` for one provider's run of items (already in class-name order).
    private func writeResources(_ items: ArraySlice<AllocationCandidate.Item>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for item in items {
            if !first { out.appendLiteral(", ") }
            first = false
            out.append(contentsOf: quotedClasses[item.resourceClass])
            out.appendLiteral(": ")
            JSONValue.writeInt(item.amount, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Calls `body` with each provider and its run of items, in the candidate's provider order.
    private func forEachProvider(
        _ candidate: AllocationCandidate, _ body: (Int, Int, ArraySlice<AllocationCandidate.Item>) -> Void
    ) {
        var start = 0
        var position = 0
        let items = candidate.items
        while start < items.count {
            var end = start + 1
            while end < items.count, items[end].provider == items[start].provider { end += 1 }
            body(position, items[start].provider, items[start..<end])
            position += 1
            start = end
        }
    }

    private func write(_ candidate: AllocationCandidate, to out: inout [UInt8]) {
        if !version.isAtLeast(1, 12) {
            out.appendLiteral("{\"allocations\": [")
            forEachProvider(candidate) { position, provider, items in
                if position > 0 { out.appendLiteral(", ") }
                out.appendLiteral("{\"resource_provider\": {\"uuid\": ")
                JSONValue.writeString(uuid(provider), to: &out)
                out.appendLiteral("}, \"resources\": ")
                writeResources(items, to: &out)
                out.append(UInt8(ascii: "}"))
            }
            out.appendLiteral("]}")
            return
        }
        out.appendLiteral("{\"allocations\": {")
        forEachProvider(candidate) { position, provider, items in
            if position > 0 { out.appendLiteral(", ") }
            JSONValue.writeString(uuid(provider), to: &out)
            out.appendLiteral(": {\"resources\": ")
            writeResources(items, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        if version.isAtLeast(1, 34) {
            out.appendLiteral(", \"mappings\": {")
            for (index, group) in groupsBySuffix.enumerated() {
                if index > 0 { out.appendLiteral(", ") }
                JSONValue.writeString(query.groups[group].suffix, to: &out)
                out.appendLiteral(": [")
                for (position, provider) in candidate.providers(ofGroup: group).enumerated() {
                    if position > 0 { out.appendLiteral(", ") }
                    JSONValue.writeString(uuid(provider), to: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Upstream's `int((total - reserved) * allocation_ratio)`: beyond 64 bits, the float's exact integer value.
    static func writeCapacity(_ inventory: Inventory, to out: inout [UInt8]) {
        let raw = Double(inventory.total - inventory.reserved) * inventory.allocationRatio
        guard raw.isFinite, abs(raw) >= 9.2e18 else {
            JSONValue.writeInt(inventory.capacity, to: &out)
            return
        }
        if raw < 0 { out.append(UInt8(ascii: "-")) }
        // |raw| = significand * 2^exponent, with an integral significand: double a decimal number.
        var digits: [UInt8] = []  // least significant first
        var significand = abs(raw).significandBitPattern | (1 << 52)
        while significand > 0 {
            digits.append(UInt8(significand % 10))
            significand /= 10
        }
        for _ in 0..<(Int(abs(raw).exponent) - 52) {
            var carry: UInt8 = 0
            for position in digits.indices {
                let doubled = digits[position] * 2 + carry
                digits[position] = doubled % 10
                carry = doubled / 10
            }
            if carry > 0 { digits.append(carry) }
        }
        out.append(contentsOf: digits.reversed().map { $0 + UInt8(ascii: "0") })
    }

    private func writeSummary(_ index: Int, to out: inout [UInt8]) {
        let provider = snapshot.providers[index]
        JSONValue.writeString(provider.uuid, to: &out)
        out.appendLiteral(": {\"resources\": {")
        let all = version.isAtLeast(1, 27)
        var first = true
        for name in provider.inventories.keys.sorted() where all || requested.contains(name) {
            if !first { out.appendLiteral(", ") }
            first = false
            JSONValue.writeString(name, to: &out)
            out.appendLiteral(": {\"capacity\": ")
            Self.writeCapacity(provider.inventories[name]!, to: &out)
            out.appendLiteral(", \"used\": ")
            JSONValue.writeInt(provider.used[name] ?? 0, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        if version.isAtLeast(1, 17) {
            out.appendLiteral(", \"traits\": [")
            for (position, trait) in provider.orderedTraits.enumerated() {
                if position > 0 { out.appendLiteral(", ") }
                JSONValue.writeString(trait, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        if version.isAtLeast(1, 29) {
            out.appendLiteral(", \"parent_provider_uuid\": ")
            if let parent = provider.parent {
                JSONValue.writeString(uuid(parent), to: &out)
            } else {
                out.appendLiteral("null")
            }
            out.appendLiteral(", \"root_provider_uuid\": ")
            JSONValue.writeString(uuid(provider.root), to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}
