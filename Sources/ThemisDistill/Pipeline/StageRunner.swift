import Foundation
import JSONLines
import ThemisClient

/// One unit of a stage's work (a generation call, a record to grade) with what it works on; its
/// output lines carry `item` (this id), `index` and `of` so a resumed run can tell finished items
/// from cut ones.
public struct WorkItem<Payload: Sendable>: Sendable {
    public var id: String
    public var payload: Payload

    public init(id: String, payload: Payload) {
        self.id = id
        self.payload = payload
    }
}

/// The outcome of one item: its output records, or why it failed (recorded, never lost).
public enum ItemOutcome<Output: Sendable>: Sendable {
    case records([Output])
    case failed(String)
}

/// One line of a stage's output: a record, or an item that failed or gave nothing, with the
/// item bookkeeping beside the record's own fields.
struct StageLine<Output: Codable & Sendable>: Codable, Sendable {
    var id: String
    var item: String
    var index: Int
    var of: Int
    var failed: String?
    var empty: Bool?
    var record: Output?

    enum CodingKeys: String, CodingKey { case id, item, index, of, failed, empty }

    init(id: String, item: String, index: Int, of: Int, failed: String? = nil, empty: Bool? = nil, record: Output? = nil) {
        self.id = id
        self.item = item
        self.index = index
        self.of = of
        self.failed = failed
        self.empty = empty
        self.record = record
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        item = try c.decode(String.self, forKey: .item)
        index = try c.decode(Int.self, forKey: .index)
        of = try c.decode(Int.self, forKey: .of)
        failed = try c.decodeIfPresent(String.self, forKey: .failed)
        empty = try c.decodeIfPresent(Bool.self, forKey: .empty)
        record = failed == nil && empty != true ? try Output(from: decoder) : nil
    }

    func encode(to encoder: any Encoder) throws {
        if let record { try record.encode(to: encoder) }
        var c = encoder.container(keyedBy: CodingKeys.self)
        if record == nil { try c.encode(id, forKey: .id) }
        try c.encode(item, forKey: .item)
        try c.encode(index, forKey: .index)
        try c.encode(of, forKey: .of)
        try c.encodeIfPresent(failed, forKey: .failed)
        try c.encodeIfPresent(empty, forKey: .empty)
    }
}

/// The bookkeeping of a line alone: enough to resume and count, whatever the record.
private struct StageEnvelope: Decodable {
    var item: String
    var of: Int
    var failed: String?
}

/// The records of a finished stage, and the lines that could not be used (with why).
public struct StageRecords<Record: Sendable>: Sendable {
    public var records: [Record]
    /// `(id, reason)` per unusable line: the next stage records each as a failed item.
    public var rejected: [(id: String, reason: String)]
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

    /// Runs `items` (and records each of `rejected`, the unusable lines of the stage's input, as
    /// a failed item first), writing `Output` records.
    public func run<Payload: Sendable, Output: Codable & Sendable>(
        _ items: [WorkItem<Payload>], rejected: [(id: String, reason: String)] = [], producing: Output.Type = Output.self,
        progress: (@Sendable (Int, Int) -> Void)? = nil,
        work: @escaping @Sendable (WorkItem<Payload>) async -> ItemOutcome<Output>
    ) async throws -> StageManifest {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let m = StageManifest.read(manifestPath), m.configHash != configHash {
            throw DistillError.config("\(stage): \(outputPath) was made with another configuration; remove it or choose another output directory")
        }
        try StageManifest(stage: stage, configHash: configHash).write(to: manifestPath)
        let done = try keepFinishedItems()
        let writer = try JSONLWriter(path: outputPath, existing: .append)
        for r in rejected where !done.contains(r.id) {
            try writer.append(StageLine<Output>(id: r.id, item: r.id, index: 0, of: 1, failed: r.reason))
        }
        let todo = items.filter { !done.contains($0.id) }
        var finished = items.count - todo.count
        progress?(finished, items.count)
        // a window of running items; outcomes are written in item order
        try await withThrowingTaskGroup(of: (Int, ItemOutcome<Output>).self) { group in
            var next = 0, pending: [Int: ItemOutcome<Output>] = [:], written = 0
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
        var manifest = StageManifest(stage: stage, configHash: configHash, complete: true)
        for line in try JSONLReader.read(outputPath, as: StageEnvelope.self) {
            guard case .success(let envelope) = line.value else { continue }
            if let reason = envelope.failed {
                manifest.dropped[reason.hasPrefix("line ") ? "unreadable input line" : reason, default: 0] += 1
                manifest.counts["failed", default: 0] += 1
            } else {
                manifest.counts["records", default: 0] += 1
            }
        }
        manifest.counts["items"] = items.count + rejected.count
        try manifest.write(to: manifestPath)
        return manifest
    }

    private func write<Payload, Output: Codable & Sendable>(_ item: WorkItem<Payload>, _ outcome: ItemOutcome<Output>,
                                                           to writer: JSONLWriter) throws {
        switch outcome {
        case .failed(let reason):
            try writer.append(StageLine<Output>(id: item.id, item: item.id, index: 0, of: 1, failed: reason))
        case .records(let records):
            if records.isEmpty { try writer.append(StageLine<Output>(id: item.id, item: item.id, index: 0, of: 1, empty: true)) }
            for (k, r) in records.enumerated() {
                try writer.append(StageLine(id: item.id, item: item.id, index: k, of: records.count, record: r))
            }
        }
    }

    /// Ids of the items whose lines are all in the output; the lines of cut items (and a partial
    /// last line) are removed first.
    private func keepFinishedItems() throws -> Set<String> {
        guard let data = FileManager.default.contents(atPath: outputPath) else { return [] }
        let whole = data.lastIndex(of: UInt8(ascii: "\n")).map { data.prefix(through: $0) } ?? Data()
        let decoder = JSONDecoder()
        var lines: [(item: String, of: Int, line: Data)] = []
        for line in whole.split(separator: UInt8(ascii: "\n")) {
            guard let e = try? decoder.decode(StageEnvelope.self, from: Data(line)) else { continue }
            lines.append((e.item, e.of, Data(line)))
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
    /// The records of a finished stage, in order. A line that is not a record of the stage, and
    /// a second record with an id already seen, are rejected with their line number.
    public static func records<Record: Codable & Sendable>(_ path: String, as type: Record.Type, id: (Record) -> String)
        throws -> StageRecords<Record> {
        try collect(path, lines: JSONLReader.read(path, as: StageLine<Record>.self), id: id) { $0.record }
    }

    /// The records of a file written without the item bookkeeping (`instructions.jsonl`).
    public static func plainRecords<Record: Codable & Sendable>(_ path: String, as type: Record.Type, id: (Record) -> String)
        throws -> StageRecords<Record> {
        try collect(path, lines: JSONLReader.read(path, as: Record.self), id: id) { $0 }
    }

    private static func collect<Line: Sendable, Record: Sendable>(
        _ path: String, lines: [JSONLLine<Line>], id: (Record) -> String, record: (Line) -> Record?
    ) -> StageRecords<Record> {
        let name = URL(fileURLWithPath: path).lastPathComponent
        var out = StageRecords<Record>(records: [], rejected: [])
        var firstLine: [String: Int] = [:]
        for line in lines {
            switch line.value {
            case .failure(let error):
                let reason: String
                if case .badLine(_, let r) = error { reason = r } else { reason = "\(error)" }
                out.rejected.append(("\(name)-line-\(line.line)", "line \(line.line) of \(name): \(reason)"))
            case .success(let l):
                guard let r = record(l) else { continue }
                let key = id(r)
                if let first = firstLine[key] {
                    out.rejected.append(("\(name)-line-\(line.line)", "line \(line.line) of \(name): id '\(key)' is already on line \(first)"))
                    continue
                }
                firstLine[key] = line.line
                out.records.append(r)
            }
        }
        return out
    }
}
