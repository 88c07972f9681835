import Foundation

/// Gzip-compressed inputs, read through the system's `gzip` (Debian has it everywhere).
enum Gzip {
    /// `path` itself, or for a `.gz` file its contents decompressed into `scratch`.
    static func plainFile(_ path: String, scratch: String) throws -> String {
        guard path.hasSuffix(".gz") else { return path }
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError.input("\(path) does not exist") }
        FileManager.default.createFile(atPath: scratch, contents: nil)
        guard let out = FileHandle(forWritingAtPath: scratch) else { throw CLIError.input("cannot write \(scratch)") }
        defer { try? out.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-dc", "--", path]
        process.standardOutput = out
        let errors = Pipe()
        process.standardError = errors
        do { try process.run() } catch { throw CLIError.input("cannot run gzip to read \(path): \(error)") }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            try? FileManager.default.removeItem(atPath: scratch)
            throw CLIError.input("\(path) is not a readable gzip file: \(String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return scratch
    }
}
