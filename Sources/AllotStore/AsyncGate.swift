/// A first-come, first-served lock for async code: one holder at a time, waiters resumed in order.
///
/// The SQLite backend has one connection; a transaction spans awaits, so it needs an async lock,
/// not a `Mutex`.
actor AsyncGate {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !held {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            held = false
        } else {
            waiters.removeFirst().resume()
        }
    }

    /// Runs `body` while holding the gate, releasing it however `body` ends.
    nonisolated func withGate<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }
}
