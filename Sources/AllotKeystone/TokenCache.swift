import Foundation

/// Validated tokens and recent refusals, keyed by the token's SHA-256 digest (the token itself is never kept),
/// bounded in size: the entry closest to its end goes first when the cache is full.
///
/// A value type: the validator keeps it under its lock and changes it there.
struct TokenCache: Sendable {
    enum Entry: Sendable {
        case valid(KeystoneToken)
        case invalid
    }

    private struct Slot: Sendable {
        var entry: Entry
        var until: Date
    }

    private var slots: [TokenDigest: Slot] = [:]
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    var count: Int { slots.count }

    /// The entry for `digest` while it is fresh at `now`.
    mutating func lookup(_ digest: TokenDigest, now: Date) -> Entry? {
        guard let slot = slots[digest] else { return nil }
        guard slot.until > now else {
            slots[digest] = nil
            return nil
        }
        return slot.entry
    }

    /// Keeps `entry` until `until`, making room first when the cache is full.
    mutating func store(_ entry: Entry, for digest: TokenDigest, until: Date, now: Date) {
        guard until > now else { return }
        if slots[digest] == nil, slots.count >= capacity {
            slots = slots.filter { $0.value.until > now }
            if slots.count >= capacity, let first = slots.min(by: { $0.value.until < $1.value.until }) {
                slots[first.key] = nil
            }
        }
        slots[digest] = Slot(entry: entry, until: until)
    }

    mutating func remove(_ digest: TokenDigest) {
        slots[digest] = nil
    }
}
