import AllotTracker
import Synchronization
import Testing

/// The one retry helper: pauses grow by the multiplier up to the cap, jitter only shortens them, and only
/// retryable failures are retried. The sleep is injected: nothing here waits.
@Suite struct RetryTests {
    struct Passing: Error {}
    struct Fatal: Error {}

    /// Records the pauses instead of sleeping.
    final class Sleeps: Sendable {
        let pauses = Mutex<[Duration]>([])
        var recorded: [Duration] { pauses.withLock { $0 } }
        func sleep(_ pause: Duration) { pauses.withLock { $0.append(pause) } }
    }

    @Test func pausesGrowUpToTheCapWithoutJitter() {
        let backoff = Backoff(initial: .seconds(1), multiplier: 2, cap: .seconds(30), jitter: 0.2)
        let pauses = (1...8).map { backoff.pause(afterAttempt: $0, random: 0) }
        #expect(pauses == [1, 2, 4, 8, 16, 30, 30, 30].map { Duration.seconds($0) })
    }

    @Test(arguments: [0.0, 0.25, 0.5, 0.999])
    func jitterShortensAPauseByAtMostItsFraction(random: Double) {
        let backoff = Backoff(initial: .seconds(1), multiplier: 2, cap: .seconds(30), jitter: 0.2)
        for attempt in 1...8 {
            let full = backoff.pause(afterAttempt: attempt, random: 0)
            let jittered = backoff.pause(afterAttempt: attempt, random: random)
            #expect(jittered <= full)
            #expect(jittered >= full * 0.8)
            #expect(jittered == full * (1 - 0.2 * random))
        }
    }

    @Test func aRetryableFailureIsRetriedAfterEachPauseUntilSuccess() async throws {
        let sleeps = Sleeps()
        let calls = Mutex(0)
        let retry = Retry(
            backoff: Backoff(initial: .milliseconds(100), multiplier: 3, cap: .seconds(1), jitter: 0.5),
            sleep: { sleeps.sleep($0) }, random: { 0 })
        var told: [Int] = []
        let value = try await retry.run(isRetryable: { $0 is Passing }, willRetry: { _, attempt, _ in told.append(attempt) }) {
            let n = calls.withLock { count in
                count += 1
                return count
            }
            if n < 5 { throw Passing() }
            return n
        }
        #expect(value == 5)
        #expect(told == [1, 2, 3, 4])
        #expect(sleeps.recorded == [.milliseconds(100), .milliseconds(300), .milliseconds(900), .seconds(1)])
    }

    @Test func aFailureThatIsNotRetryableIsThrownAtOnce() async {
        let sleeps = Sleeps()
        let retry = Retry(sleep: { sleeps.sleep($0) }, random: { 0 })
        await #expect(throws: Fatal.self) {
            try await retry.run(isRetryable: { $0 is Passing }) { () async throws -> Int in throw Fatal() }
        }
        #expect(sleeps.recorded.isEmpty)
    }

    @Test func maxAttemptsCountsTheFirstAndRethrowsTheLastFailure() async {
        let sleeps = Sleeps()
        let calls = Mutex(0)
        let retry = Retry(maxAttempts: 3, sleep: { sleeps.sleep($0) }, random: { 0 })
        await #expect(throws: Passing.self) {
            try await retry.run(isRetryable: { _ in true }) { () async throws -> Int in
                calls.withLock { $0 += 1 }
                throw Passing()
            }
        }
        #expect(calls.withLock { $0 } == 3)
        #expect(sleeps.recorded == [.seconds(1), .seconds(2)])
    }

    @Test func theRedactedURLKeepsNoUserinfoQueryOrFragment() {
        #expect(RedactedURL("https://admin:s3cret@controller:8778/placement?token=abc#x").description
            == "https://controller:8778/placement")
        #expect(RedactedURL("http://127.0.0.1:8778").description == "http://127.0.0.1:8778")
        #expect(RedactedURL("not a url").description == "<unparsable URL>")
    }
}
