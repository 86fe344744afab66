package import NIOCore

/// An event loop as a task executor: jobs run on the loop's thread, in order with its I/O.
///
/// `allot serve` runs each HTTP connection's task on the connection's loop; a PostgreSQL transaction runs on its
/// connection's loop (``Database/leasing(_:progress:_:)``), so that each statement's answer resumes the
/// transaction where it arrived instead of waking another thread (a claim is about fifteen statements).
package final class EventLoopExecutor: TaskExecutor {
    package let eventLoop: any EventLoop

    package init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}
