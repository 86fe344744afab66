import AllotCore

/// The thread that runs audit passes, at a lower scheduling priority (nice 10): on a busy host a pass over
/// thousands of nodes then yields the CPU to claims at once, instead of after the kernel's time slice.
enum AuditExecutor {
    /// The process's audit thread, started on first use.
    static let shared = DedicatedThread(name: "allot-audit", nice: 10)
}
