import AllotStore
import HummingbirdCore
import Logging
import NIOCore

/// Runs each HTTP connection's task on the connection's own event loop instead of Swift's cooperative pool.
///
/// Hummingbird reads a request on the channel's event loop and hands it to a task on the pool, which answers and
/// hands the response back to the loop: two thread wake-ups per request on top of the request's own (a claim's
/// hop to the SQLite writer and back), each some tens of microseconds on a virtual machine. With the task
/// preferring the loop (`withTaskExecutorPreference`), reading, routing, authorising, rendering and writing stay on
/// one thread; only blocking work leaves it, as before: SQLite for its threads (``DedicatedThread``), audits for
/// theirs. The loops are as many as the cores, and NIO spreads connections over them.
///
/// A handler must therefore never block: none does (database work runs on threads of its own, outgoing HTTP
/// through AsyncHTTPClient), and CPU-heavy answers (allocation candidates) hold their loop no longer than they
/// held a pool thread.
struct EventLoopBoundChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopExecutor(value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}
