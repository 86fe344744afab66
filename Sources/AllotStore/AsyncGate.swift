import Synchronization

/// A first-come, first-served lock for async code: one holder at a time, waiters resumed in order.
///
/// The SQLite backend has one connection; a transaction spans awaits, so it needs an async lock, not a `Mutex`
/// held across suspension points. Taking a free gate does not suspend (no actor or executor hop); only waiters
/// suspend. The `Mutex` orders the memory effects between successive holders.
final class AsyncGate: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func acquire() async {
        let acquired = state.withLock { state in
            if state.held { return false }
            state.held = true
            return true
        }
        if acquired { return }
        await withCheckedContinuation { continuation in
            // The gate may have been released between the check above and now: then take it at once.
            let resumeNow = state.withLock { state in
                if state.held {
                    state.waiters.append(continuation)
                    return false
                }
                state.held = true
                return true
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Takes the gate if it is free, without waiting.
    func tryAcquire() -> Bool {
        state.withLock { state in
            if state.held { return false }
            state.held = true
            return true
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()  // the gate passes to it, still held
        }
        next?.resume()
    }

    /// Runs `body` while holding the gate, releasing it however `body` ends.
    func withGate<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        do {
            let result = try await body()
            release()
            return result
        } catch {
            release()
            throw error
        }
    }
}
