import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One thread of its own, at a lower scheduling priority (nice 10), that runs audit passes: on a busy host a pass
/// over thousands of nodes then yields the CPU to claims at once, instead of after the kernel's time slice.
final class AuditExecutor: TaskExecutor, Sendable {
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    /// The process's audit thread, started on first use.
    static let shared = AuditExecutor()

    private init() {
        let thread = Thread { [self] in
            #if canImport(Glibc)
            // On Linux the nice value belongs to the thread, and `who` 0 is the calling one: this thread only.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
            #endif
            while true {
                ready.wait()
                guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.name = "allot-audit"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        jobs.withLock { $0.append(unowned) }
        ready.signal()
    }
}
