import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Prepares an earlier output file for a resumed run, losing nothing that was complete:
/// - a last line without its newline is kept (and finished) when it is a whole record, and
///   removed only when it is a partial write;
/// - error records are kept and count as done, unless `retryErrors` asks to do them again
///   (then they are removed and their ids are left to do);
/// - lines that are not records, and ids that appear twice, are kept as they are and reported.
/// Any change is written beside the file and renamed over it, so a kill leaves one whole file.
public enum JSONLResume {
    public struct State: Sendable, Equatable {
        /// Ids of the records kept: these are not done again.
        public var done: Set<String> = []
        /// Records kept.
        public var kept = 0
        /// Error records removed to be done again (`retryErrors`).
        public var retried = 0
        /// Ids found on more than one line.
        public var duplicateIDs: [String] = []
        /// Lines that are not records of the expected kind (kept as they are).
        public var unreadableLines: [Int] = []
        /// Whether a partial last line (a write cut short) was removed.
        public var removedPartialLine = false
        /// Whether a complete last record lacked its newline (now added).
        public var finishedLastLine = false

        public init() {}
    }

    /// Tidies `path` for appending and returns what is already done. A missing file is empty.
    public static func prepare<Record: Decodable & Sendable>(
        _ path: String, as type: Record.Type, id: (Record) -> String, isError: (Record) -> Bool, retryErrors: Bool
    ) throws -> State {
        var state = State()
        guard FileManager.default.fileExists(atPath: path) else { return state }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JSONLError.cannotRead(path: path, reason: "permission denied or unreadable")
        }
        let decoder = JSONDecoder()
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        // the text after the last newline: empty after a clean stop
        let tail = lines.removeLast()
        var output = Data()
        output.reserveCapacity(data.count + 1)
        var seen: [String: Int] = [:]
        var changed = false
        func take(_ line: Data.SubSequence, number: Int, complete: Bool) {
            var body = line
            if body.last == UInt8(ascii: "\r") { body = body.dropLast() }
            switch JSONLReader.decodeLine(body, as: type, decoder: decoder, number: number) {
            case .success(let record):
                if retryErrors && isError(record) {
                    state.retried += 1
                    changed = true
                    return
                }
                let key = id(record)
                seen[key, default: 0] += 1
                if seen[key] == 2 { state.duplicateIDs.append(key) }
                state.done.insert(key)
                state.kept += 1
                if !complete { state.finishedLastLine = true; changed = true }
            case .failure:
                if !complete {
                    state.removedPartialLine = true
                    changed = true
                    return
                }
                if body.contains(where: { !JSONLReader.isBlank($0) }) { state.unreadableLines.append(number) }
            }
            output.append(contentsOf: line)
            output.append(UInt8(ascii: "\n"))
        }
        for (i, line) in lines.enumerated() { take(line, number: i + 1, complete: true) }
        if !tail.isEmpty { take(tail, number: lines.count + 1, complete: false) }
        if changed { try AtomicFile.write(output, to: path) }
        return state
    }
}

/// Crash-safe whole-file writes: the bytes go to a file beside the target, are synced, and are
/// renamed over it in one step, so a reader (or a run after a kill) sees the old file or the new
/// one, never a part. Throws `JSONLError.cannotWrite`.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        // unique per write: several tasks may write the same file (the answer cache) at once
        let temporary = path + ".tmp-\(UUID().uuidString)"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw JSONLError.cannotWrite(path: temporary, reason: String(cString: strerror(errno))) }
        let error = JSONLWriter.writeAll(data, to: fd, sync: true)
        close(fd)
        guard error == nil, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(error ?? errno))
            unlink(temporary)
            throw JSONLError.cannotWrite(path: path, reason: reason)
        }
    }

    public static func write(_ data: Data, to url: URL) throws { try write(data, to: url.path) }
}
