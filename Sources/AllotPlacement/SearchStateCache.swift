import AllotStore
import Synchronization

/// The last search state read from the store, reused while the store's change sequence has not moved.
///
/// Every candidate query reads the sequence first (one small query), so a write committed anywhere, also
/// through another replica, is seen by the next query; the allocation write re-checks capacity anyway. When the
/// sequence moved, only the providers changed since are re-read (see `SQLPlacementStore.searchState(updating:)`).
final class SearchStateCache: Sendable {
    private let current = Mutex<SearchState?>(nil)

    /// A state at least as fresh as the store's current change sequence.
    func state(from store: SQLPlacementStore) async throws -> SearchState {
        let sequence = try await store.changeSequence()
        if let cached = current.withLock({ $0 }), cached.sequence == sequence { return cached }
        let fresh = try await store.searchState(updating: current.withLock { $0 })
        current.withLock { state in
            if state == nil || state!.sequence < fresh.sequence { state = fresh }
        }
        return fresh
    }
}
