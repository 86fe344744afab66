import Foundation

/// Runs a shell command line through system(3) on a thread of its own (never on the cooperative pool: these
/// scripts run for minutes), its output appended to `log`.
///
/// system(3), not Process: Foundation's Process waits for descriptors that servers started in the background by
/// the scripts (uWSGI) inherit and keep open.
enum ShellScript {
    /// - Returns: the command's exit status (-1 when it could not run).
    static func run(_ command: String, log: URL) async -> Int32 {
        await status("(\(command)) >> '\(log.path)' 2>&1 < /dev/null")
    }

    /// Runs `command` through system(3) on a thread of its own and returns its exit status (-1 when it could not
    /// run). A test waiting on a script must never hold a cooperative thread: the pool has one per core (two
    /// here), and a script that waits minutes for a server would stall every other test of the process, whose
    /// idle connections the servers under test then close.
    static func status(_ command: String) async -> Int32 {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                let status = system(command)
                continuation.resume(returning: status == -1 ? -1 : (status >> 8) & 0xff)
            }
            thread.start()
        }
    }

    /// The text of a log file (empty when there is none).
    static func text(_ log: URL) -> String {
        String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self)
    }

    /// The repository's root (tests run from it under `swift test`; found from this file otherwise).
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The last non-empty line of `text`.
    static func lastLine(_ text: String) -> String {
        text.split(separator: "\n").last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }).map(String.init) ?? ""
    }
}
