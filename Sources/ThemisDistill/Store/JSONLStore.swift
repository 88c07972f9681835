import Foundation
import ThemisClient

/// A stage's output: JSON Lines, one object per record with an `id`, appended as records finish.
/// After a kill the file holds whole lines plus at most one partial line, which `open(resume:)`
/// cuts off; the ids already written are then skipped.
public final class JSONLWriter {
    public let url: URL
    /// Ids of the records already in the file.
    public private(set) var done: Set<String> = []
    private let handle: FileHandle

    /// Opens `path`: a new empty file, or with `resume` the existing one, its partial last line removed.
    public init(path: String, resume: Bool) throws {
        url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        if resume, let data = fm.contents(atPath: path) {
            let keep = data.lastIndex(of: UInt8(ascii: "\n")).map { data.prefix(through: $0) } ?? Data()
            if keep.count != data.count {
                let h = try FileHandle(forWritingTo: url)
                try h.truncate(atOffset: UInt64(keep.count))
                try h.close()
            }
            for line in keep.split(separator: UInt8(ascii: "\n")) {
                if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let id = object["id"] as? String {
                    done.insert(id)
                }
            }
        } else {
            guard fm.createFile(atPath: path, contents: nil) else { throw DistillError.io("cannot create \(path)") }
        }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    /// Appends one record as one write (a kill leaves whole lines or a partial last one).
    public func append(_ object: [String: Any]) throws {
        var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        data.append(UInt8(ascii: "\n"))
        try handle.write(contentsOf: data)
        if let id = object["id"] as? String { done.insert(id) }
    }

    /// Flushes to disk and closes.
    public func close() throws {
        try handle.synchronize()
        try handle.close()
    }
}

/// Reads JSON Lines of objects; a malformed line is an error naming its line.
public enum JSONLReader {
    public static func read(_ path: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DistillError.io("cannot read \(path)") }
        var out: [[String: Any]] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw DistillError.badInput("\(path) line \(i + 1) is not a JSON object")
            }
            out.append(object)
        }
        return out
    }
}

/// What a stage did, written beside its output when it completes (atomically).
public struct StageManifest: Codable, Sendable, Equatable {
    public var stage: String
    /// FNV-1a of the stage's configuration: a resumed run with another configuration is refused.
    public var configHash: String
    public var complete: Bool
    public var counts: [String: Int]
    /// Dropped records by reason.
    public var dropped: [String: Int]

    public init(stage: String, configHash: String, complete: Bool = false, counts: [String: Int] = [:], dropped: [String: Int] = [:]) {
        self.stage = stage
        self.configHash = configHash
        self.complete = complete
        self.counts = counts
        self.dropped = dropped
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try encoder.encode(self), to: URL(fileURLWithPath: path))
    }

    public static func read(_ path: String) -> StageManifest? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(StageManifest.self, from: data)
    }
}

/// Errors of the distillation pipeline.
public enum DistillError: Error, CustomStringConvertible, Sendable {
    case io(String)
    case badInput(String)
    case config(String)

    public var description: String {
        switch self {
        case .io(let s), .badInput(let s), .config(let s): return s
        }
    }
}
