import AllotStore
import Synchronization

/// The last search state read from the store, reused while the store's change sequence has not moved.
///
/// Every candidate query reads the sequence first (one small query), so a write committed anywhere, also
/// through another replica, is seen by the next query; the allocation write re-checks capacity anyway. When the
/// sequence moved, only the providers changed since are re-read (see `SQLPlacementStore.searchState(updating:)`).
final class SearchStateCache: Sendable {
    private let current = Mutex<(state: SearchState, summaries: SummaryCache)?>(nil)

    /// A state at least as fresh as the store's current change sequence, with its summary cache.
    func state(from store: SQLPlacementStore) async throws -> (state: SearchState, summaries: SummaryCache) {
        let sequence = try await store.changeSequence()
        let cached = current.withLock { $0 }
        if let cached, cached.state.sequence == sequence { return cached }
        let fresh = try await store.searchState(updating: cached?.state)
        let summaries: SummaryCache
        if let cached, let changed = fresh.changedIndexes, cached.state.sequence < fresh.sequence {
            summaries = SummaryCache(carrying: cached.summaries, except: changed)
        } else {
            summaries = SummaryCache()
        }
        return current.withLock { entry in
            if let entry, entry.state.sequence >= fresh.sequence { return entry }
            entry = (fresh, summaries)
            return (fresh, summaries)
        }
    }
}

/// Provider summaries as rendered at microversion 1.29 and later (all classes, traits, parent and root), kept
/// per search state: they only change when the provider does, and a large answer repeats thousands of them.
final class SummaryCache: Sendable {
    private let fragments: Mutex<[Int: [UInt8]]>

    init() { fragments = Mutex([:]) }

    /// Keeps `older`'s fragments except those of the providers in `changed`.
    init(carrying older: SummaryCache, except changed: [Int]) {
        var kept = older.fragments.withLock { $0 }
        for index in changed { kept[index] = nil }
        fragments = Mutex(kept)
    }

    func fragment(_ provider: Int, render: () -> [UInt8]) -> [UInt8] {
        if let cached = fragments.withLock({ $0[provider] }) { return cached }
        let made = render()
        fragments.withLock { $0[provider] = made }
        return made
    }
}
