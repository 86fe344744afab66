/// Pauses between retries that grow geometrically up to a cap, each shortened by a random jitter (so that many
/// agents restarted together do not knock on the server's door in step).
public struct Backoff: Sendable, Equatable {
    /// The pause before the first retry (before jitter).
    public var initial: Duration
    /// How much each pause grows over the one before.
    public var multiplier: Double
    /// No pause is longer than this.
    public var cap: Duration
    /// The largest fraction of a pause the jitter removes (0: none, 1: anything down to zero).
    public var jitter: Double

    /// Makes a backoff; the defaults pause 1 s, 2 s, 4 s… up to 30 s, each up to 20 % shorter at random.
    /// - Parameters:
    ///   - initial: `Duration`, default 1 s.
    ///   - multiplier: `Double` ≥ 1, default 2.
    ///   - cap: `Duration`, default 30 s.
    ///   - jitter: `Double` in 0…1, default 0.2.
    public init(
        initial: Duration = .seconds(1), multiplier: Double = 2, cap: Duration = .seconds(30), jitter: Double = 0.2
    ) {
        self.initial = initial
        self.multiplier = max(1, multiplier)
        self.cap = cap
        self.jitter = min(1, max(0, jitter))
    }

    /// The pause after failed attempt number `attempt` (1 for the first), with `random` drawn from 0..<1.
    public func pause(afterAttempt attempt: Int, random: Double) -> Duration {
        var pause = initial
        for _ in 1..<max(1, attempt) {
            pause = pause * multiplier
            if pause >= cap { break }
        }
        pause = min(pause, cap)
        return pause * (1 - jitter * min(1, max(0, random)))
    }
}

/// Runs an operation again after a failure the caller deems passing, pausing by a ``Backoff``: the one retry
/// loop of the agent and the CLI. The sleep and the random source are injected so tests control both.
public struct Retry: Sendable {
    public var backoff: Backoff
    /// Attempts in all, the first included; `nil`: until success or a failure that is not retryable.
    public var maxAttempts: Int?
    let sleep: @Sendable (Duration) async throws -> Void
    let random: @Sendable () -> Double

    /// Makes a retry policy.
    /// - Parameters:
    ///   - backoff: the pauses (default ``Backoff/init(initial:multiplier:cap:jitter:)``'s).
    ///   - maxAttempts: attempts in all, default unlimited.
    ///   - sleep: waits (default `Task.sleep`, which throws `CancellationError` when the task is cancelled).
    ///   - random: a number in 0..<1 for the jitter (default the system's generator).
    public init(
        backoff: Backoff = Backoff(), maxAttempts: Int? = nil,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.backoff = backoff
        self.maxAttempts = maxAttempts
        self.sleep = sleep
        self.random = random
    }

    /// Runs `operation` until it succeeds, throws an error `isRetryable` refuses, or runs out of attempts.
    /// - Parameters:
    ///   - isRetryable: whether a failure may pass (a server that is not up yet, a generation conflict).
    ///   - willRetry: told of each failure that will be retried, with the attempt's number and the pause.
    /// - Returns: the operation's result.
    /// - Throws: the operation's last error, or the sleep's (cancellation).
    public func run<T>(
        isRetryable: (any Error) -> Bool,
        willRetry: (_ error: any Error, _ attempt: Int, _ pause: Duration) -> Void = { _, _, _ in },
        _ operation: () async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await operation()
            } catch {
                guard isRetryable(error), maxAttempts.map({ attempt < $0 }) ?? true else { throw error }
                let pause = backoff.pause(afterAttempt: attempt, random: random())
                willRetry(error, attempt, pause)
                try await sleep(pause)
                attempt += 1
            }
        }
    }
}
