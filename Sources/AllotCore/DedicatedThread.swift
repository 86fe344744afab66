import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A thread of its own that runs the jobs of the tasks that prefer it (`withTaskExecutorPreference`): blocking work
/// (SQLite statements and the `COMMIT` that waits for the disk, audit passes) runs there instead of on Swift's
/// cooperative pool, which on a 2-core machine is two threads.
///
/// ``stop()`` ends the thread once the jobs queued so far have run. A job that still arrives afterwards (the tail of
/// a task that was leaving its preference scope) runs on a short-lived thread of its own, so no task is stranded.
package final class DedicatedThread: TaskExecutor, Sendable {
    private struct State {
        var jobs: [UnownedJob] = []
        var next = 0
        var stopping = false
        var ended = false
    }

    private let state = Mutex(State())
    private let ready = DispatchSemaphore(value: 0)
    private let name: String

    /// Starts the thread.
    /// - Parameter nice: on Linux, the thread's own nice value (10 for audits, so that claims get the CPU first).
    ///   Not `SCHED_IDLE`, which was tried: under other CPU load (guests on a compute host) an idle-class audit got
    ///   next to no CPU while claims waited on work it had started (with four CPU hogs, agent claims timed out
    ///   after 15 s; with nice 10 alone they passed).
    package init(name: String, nice: Int32 = 0) {
        self.name = name
        let thread = Thread { [self] in
            #if canImport(Glibc)
            // On Linux the nice value belongs to the thread, and `who` 0 is the calling one: this thread only.
            if nice != 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice) }
            #endif
            runLoop()
        }
        thread.name = name
        thread.start()
    }

    private func runLoop() {
        while true {
            ready.wait()
            let job: UnownedJob? = state.withLock { state in
                guard state.next < state.jobs.count else {
                    if state.stopping { state.ended = true }
                    return nil
                }
                let job = state.jobs[state.next]
                state.next += 1
                // Compact now and then instead of removing from the front each time.
                if state.next >= 256, state.next * 2 >= state.jobs.count {
                    state.jobs.removeFirst(state.next)
                    state.next = 0
                }
                return job
            }
            if let job {
                job.runSynchronously(on: asUnownedTaskExecutor())
            } else if state.withLock({ $0.ended }) {
                return
            }
        }
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let queued = state.withLock { state in
            if state.ended { return false }
            state.jobs.append(unowned)
            return true
        }
        if queued {
            ready.signal()
        } else {
            let executor = asUnownedTaskExecutor()
            let straggler = Thread { unowned.runSynchronously(on: executor) }
            straggler.name = name
            straggler.start()
        }
    }

    /// Ends the thread after the jobs already queued. Idempotent.
    package func stop() {
        let first = state.withLock { state in
            defer { state.stopping = true }
            return !state.stopping
        }
        if first { ready.signal() }
    }
}

/// Work that must yield to requests: the tracker's audit passes run under it. The store sends the SQLite reads made
/// under it to a read connection of their own whose thread runs at the audit's low priority (nice 10), so a pass
/// over thousands of nodes neither takes the CPU from claims on a normal-priority reader thread nor keeps claims'
/// reads waiting for a read connection.
package enum BackgroundWork {
    @TaskLocal package static var active = false
}
