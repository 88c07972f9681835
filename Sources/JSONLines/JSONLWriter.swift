import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Appends records to a JSON Lines file (or standard output), one `write` per record and, for a
/// file, an `fsync` after it: a kill leaves whole lines plus at most one partial last line, and a
/// failed write (disk full, file-size limit, closed pipe) is an error, never a crash.
///
/// Used from one task at a time.
public final class JSONLWriter {
    /// The file written, or nil for standard output.
    public let path: String?
    private let fd: Int32
    private let syncs: Bool
    private let encoder: JSONEncoder

    /// What to do when the file exists.
    public enum Existing: Sendable {
        /// Refuse (`cannotWrite`).
        case refuse
        /// Start again, empty.
        case replace
        /// Append after what is there (see `JSONLResume.prepare` to tidy it first).
        case append
    }

    /// Opens `path` for appending records; a file that is not there is created.
    public init(path: String, existing: Existing) throws {
        var flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC
        switch existing {
        case .refuse: flags |= O_EXCL
        case .replace: flags |= O_TRUNC
        case .append: break
        }
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "it exists" : String(cString: strerror(errno))
            throw JSONLError.cannotWrite(path: path, reason: reason)
        }
        self.path = path
        self.fd = fd
        syncs = true
        encoder = JSONLWriter.makeEncoder()
        JSONLWriter.ignoreSignals()
    }

    /// A writer to standard output (not synced; a closed pipe is an error).
    public init(standardOutput: Void = ()) {
        path = nil
        fd = STDOUT_FILENO
        syncs = false
        encoder = JSONLWriter.makeEncoder()
        JSONLWriter.ignoreSignals()
    }

    deinit { if path != nil { close(fd) } }

    static func makeEncoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// A full disk is reported by `write`; a file-size limit and a closed pipe raise signals that
    /// would kill the process instead. Ignored, they make `write` fail with EFBIG or EPIPE.
    static func ignoreSignals() {
        signal(SIGXFSZ, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Appends `record` as one line. Throws `cannotWrite` when the bytes could not all be written
    /// and synced; the file then ends with at most a partial line, which resuming removes.
    public func append<Record: Encodable>(_ record: Record) throws {
        var data: Data
        do { data = try encoder.encode(record) } catch {
            throw JSONLError.cannotWrite(path: path ?? "standard output", reason: "cannot encode a record: \(error)")
        }
        data.append(UInt8(ascii: "\n"))
        try appendLine(data)
    }

    /// Appends bytes that already end with a newline.
    public func appendLine(_ data: Data) throws {
        if let error = JSONLWriter.writeAll(data, to: fd, sync: syncs) {
            throw JSONLError.cannotWrite(path: path ?? "standard output", reason: String(cString: strerror(error)))
        }
    }

    /// Writes all of `data` to `fd` (retrying short writes) and syncs it when asked; returns the
    /// `errno` of a failure, or nil.
    static func writeAll(_ data: Data, to fd: Int32, sync: Bool) -> Int32? {
        let error: Int32? = data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return n < 0 ? errno : EIO }
                offset += n
            }
            return nil
        }
        if let error { return error }
        return sync && fsync(fd) != 0 ? errno : nil
    }
}
