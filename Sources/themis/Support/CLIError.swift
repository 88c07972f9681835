import ArgumentParser
import Foundation
import ThemisBackend
import ThemisModel

/// Prints one `themis: ...` line for `error` on stderr and exits with its status:
/// 2 for a device that does not exist, 1 for everything else.
func exitWithError(_ error: any Error) -> Never {
    if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
    let status: Int32
    if case BackendError.deviceNotFound = error { status = 2 } else { status = 1 }
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
