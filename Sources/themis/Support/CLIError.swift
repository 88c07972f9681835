import ArgumentParser
import Foundation
import ThemisBackend
import ThemisModel

/// The exit statuses of every command.
enum ExitStatus {
    /// Everything done.
    static let ok: Int32 = 0
    /// Nothing (or not everything) could be done: a fatal error.
    static let fatal: Int32 = 1
    /// A usage error (bad option or argument) or a device that does not exist.
    static let usage: Int32 = 2
    /// The run finished, but some records failed (they are error records in the output).
    static let recordsFailed: Int32 = 3
}

/// Errors of the command line itself (input it cannot work with).
enum CLIError: Error, CustomStringConvertible {
    case input(String)

    var description: String {
        switch self {
        case .input(let s): s
        }
    }
}

/// Prints one `themis: ...` line for `error` on stderr and exits with its status:
/// 2 for a device that does not exist, 1 for everything else.
func exitWithError(_ error: any Error) -> Never {
    if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
    if error is ValidationError {
        printError("themis: error: \(describe(error))")
        Foundation.exit(ExitStatus.usage)
    }
    let status: Int32
    if case BackendError.deviceNotFound = error { status = ExitStatus.usage } else { status = ExitStatus.fatal }
    printError("themis: error: \(describe(error))")
    Foundation.exit(status)
}

/// The message of an error: its `description` for our error enums.
func describe(_ error: any Error) -> String { String(describing: error) }

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Runs `body`, turning any thrown error into one stderr line and an exit status.
func reportingErrors<T>(_ body: () async throws -> T) async -> T {
    do { return try await body() } catch { exitWithError(error) }
}

/// Runs `body`, turning any thrown error into one stderr line and an exit status.
func reportingErrors<T>(_ body: () throws -> T) -> T {
    do { return try body() } catch { exitWithError(error) }
}
