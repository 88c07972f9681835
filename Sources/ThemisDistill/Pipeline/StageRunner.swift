import Foundation
import ThemisClient

/// One unit of a stage's work (a generation call, a record to grade); its output records carry
/// `item` (this id), `index` and `of` so a resumed run can tell finished items from cut ones.
/// A record of a stage's output: JSON-compatible values.
public typealias Record = [String: any Sendable]

public struct WorkItem: Sendable {
    public var id: String
    public var payload: Record

    public init(id: String, payload: Record) {
        self.id = id
        self.payload = payload
    }
}

/// The outcome of one item: its output records, or why it failed (recorded, never lost).
public enum ItemOutcome: Sendable {
    case records([Record])
    case failed(String)
}

/// Runs a stage's items with bounded concurrency and writes their records in item order to
/// `<dir>/<stage>.jsonl`, then the manifest `<dir>/<stage>.manifest.json`. Resumable: a rerun
/// keeps the items whose records are all present (cut ones are removed) and does the rest, so a
/// killed and resumed stage writes the same file as an uninterrupted one.
public struct StageRunner: Sendable {
    public var stage: String
    public var directory: String
    public var configHash: String
    public var concurrency: Int

    public init(stage: String, directory: String, configHash: String, concurrency: Int) {
        self.stage = stage
        self.directory = directory
        self.configHash = configHash
        self.concurrency = max(1, concurrency)
    }

    public var outputPath: String { directory + "/" + stage + ".jsonl" }
    public var manifestPath: String { directory + "/" + stage + ".manifest.json" }

    /// Whether the stage already completed with this configuration.
    public var isComplete: Bool {
        guard let m = StageManifest.read(manifestPath) else { return false }
        return m.complete && m.configHash == configHash && FileManager.default.fileExists(atPath: outputPath)
    }

    public func run(_ items: [WorkItem], progress: (@Sendable (Int, Int) -> Void)? = nil,
                    work: @escaping @Sendable (WorkItem) async -> ItemOutcome) async throws -> StageManifest {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let m = StageManifest.read(manifestPath), m.configHash != configHash {
            throw DistillError.config("\(stage): \(outputPath) was made with another configuration; remove it or choose another output directory")
        }
        try StageManifest(stage: stage, configHash: configHash).write(to: manifestPath)
        let done = try keepFinishedItems()
        let writer = try JSONLWriter(path: outputPath, resume: true)
        let todo = items.filter { !done.contains($0.id) }
        var finished = items.count - todo.count
        progress?(finished, items.count)
        // a window of running items; outcomes are written in item order
        try await withThrowingTaskGroup(of: (Int, ItemOutcome).self) { group in
            var next = 0, pending: [Int: ItemOutcome] = [:], written = 0
            func launch() {
                guard next < todo.count else { return }
                let i = next, item = todo[i]
                next += 1
                group.addTask { (i, await work(item)) }
            }
            for _ in 0..<concurrency { launch() }
            while let (i, outcome) = try await group.next() {
                pending[i] = outcome
                while let ready = pending.removeValue(forKey: written) {
                    try write(todo[written], ready, to: writer)
                    written += 1
                    finished += 1
                    progress?(finished, items.count)
                }
                launch()
            }
        }
        try writer.close()
        var manifest = StageManifest(stage: stage, configHash: configHash, complete: true)
        for record in try JSONLReader.read(outputPath) {
            if let reason = record["failed"] as? String {
                manifest.dropped[reason, default: 0] += 1
                manifest.counts["failed", default: 0] += 1
            } else {
                manifest.counts["records", default: 0] += 1
            }
        }
        manifest.counts["items"] = items.count
        try manifest.write(to: manifestPath)
        return manifest
    }

    private func write(_ item: WorkItem, _ outcome: ItemOutcome, to writer: JSONLWriter) throws {
        switch outcome {
        case .failed(let reason):
            try writer.append(["id": item.id, "item": item.id, "index": 0, "of": 1, "failed": reason])
        case .records(let records):
            if records.isEmpty { try writer.append(["id": item.id, "item": item.id, "index": 0, "of": 1, "empty": true]) }
            for (k, r) in records.enumerated() {
                var object: [String: Any] = r.mapValues { $0 as Any }
                object["item"] = item.id
                object["index"] = k
                object["of"] = records.count
                if object["id"] == nil { object["id"] = "\(item.id)-\(k)" }
                try writer.append(object)
            }
        }
    }

    /// Ids of the items whose records are all in the output; the records of cut items (and a
    /// partial last line) are removed first.
    private func keepFinishedItems() throws -> Set<String> {
        guard let data = FileManager.default.contents(atPath: outputPath) else { return [] }
        let whole = data.lastIndex(of: UInt8(ascii: "\n")).map { data.prefix(through: $0) } ?? Data()
        var lines: [(item: String, of: Int, line: Data)] = []
        for line in whole.split(separator: UInt8(ascii: "\n")) {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let item = o["item"] as? String, let of = o["of"] as? Int else { continue }
            lines.append((item, of, Data(line)))
        }
        var counts: [String: Int] = [:]
        for l in lines { counts[l.item, default: 0] += 1 }
        let complete = Set(lines.filter { counts[$0.item] == $0.of }.map(\.item))
        var kept = Data()
        for l in lines where complete.contains(l.item) { kept.append(l.line); kept.append(UInt8(ascii: "\n")) }
        if kept != data { try AtomicFile.write(kept, to: URL(fileURLWithPath: outputPath)) }
        return complete
    }
}

extension StageRunner {
    /// The successful records of a finished stage, in order.
    public static func records(_ path: String) throws -> [[String: Any]] {
        try JSONLReader.read(path).filter { $0["failed"] == nil && $0["empty"] == nil }
    }
}
