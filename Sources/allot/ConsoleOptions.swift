import ArgumentParser
import Foundation

/// The operator console's options of `allot serve` and `allot agent` (docs/console.md).
struct ConsoleOptions: ParsableArguments {
    @Flag(help: "Do not serve the operator console at /ui (a browser opening / then gets the version document).")
    var noConsole = false

    @Option(help: "Serve the console's files from this directory instead of the embedded ones, read at each request: for working on the console without a rebuild (env ALLOT_CONSOLE_DIR).")
    var consoleDir: String = env("ALLOT_CONSOLE_DIR") ?? ""

    /// The directory to serve the console from; `nil`: the embedded files.
    var directory: String? { consoleDir.isEmpty ? nil : consoleDir }

    func validate() throws {
        guard let consoleDir = directory else { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: consoleDir, isDirectory: &isDirectory), isDirectory.boolValue,
            FileManager.default.fileExists(atPath: (consoleDir as NSString).appendingPathComponent("index.html"))
        else {
            throw ValidationError("--console-dir \(consoleDir): not a directory holding the console's index.html")
        }
    }
}
