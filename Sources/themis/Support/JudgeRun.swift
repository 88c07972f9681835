import ArgumentParser
import Foundation
import ThemisJudge

/// Where judged records go: a new file, a resumed one (the ids judged there are skipped), or stdout.
struct JudgeOutput {
    let sink: FileHandle
    let done: Set<String>
    /// Error records of the earlier output that this run judges again.
    let retried: Int
    let path: String?

    static func open(_ path: String?, resume: Bool, overwrite: Bool) throws -> JudgeOutput {
        guard let path else { return JudgeOutput(sink: .standardOutput, done: [], retried: 0, path: nil) }
        var done = Set<String>()
        var retried = 0
        let exists = FileManager.default.fileExists(atPath: path)
        if exists && resume {
            (done, retried) = try keepJudged(path)
        } else if exists && !overwrite {
            throw ValidationError("\(path) exists: pass --resume to continue it or --overwrite to replace it")
        } else {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw ValidationError("cannot create \(path)") }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot write \(path)") }
        handle.seekToEndOfFile()
        return JudgeOutput(sink: handle, done: done, retried: retried, path: path)
    }

    /// Prepares an earlier output for resuming: an unfinished last line (a killed run) and the
    /// error records (a server that failed, a record since fixed) are dropped, so that those
    /// records are judged again; returns the ids kept and how many error records were dropped.
    static func keepJudged(_ path: String) throws -> (ids: Set<String>, dropped: Int) {
        guard let data = FileManager.default.contents(atPath: path) else { return ([], 0) }
        let complete = data.lastIndex(of: UInt8(ascii: "\n")).map { data.prefix(through: $0) } ?? Data()
        var ids = Set<String>()
        var kept = Data()
        var dropped = 0
        for line in complete.split(separator: UInt8(ascii: "\n")) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let id = object["id"] as? String else { continue }
            if object["status"] as? String == "error" { dropped += 1; continue }
            ids.insert(id)
            kept += Data(line) + Data("\n".utf8)
        }
        if kept.count != data.count {
            // written beside and renamed, so a kill now leaves either file whole
            let temporary = path + ".resume-\(getpid())"
            try kept.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else {
                unlink(temporary)
                throw ValidationError("cannot rewrite \(path) for resuming: \(String(cString: strerror(errno)))")
            }
        }
        return (ids, dropped)
    }

    /// Judges the records not yet written, `group` at a time, writing each output record as it
    /// comes, with progress on stderr; the summary counts this run's records only.
    func judge(_ records: [InputRecord], with batch: BatchJudge, group: Int, labelField: String) async throws -> JudgeSummary {
        let todo = records.filter { !done.contains(batch.id(of: $0)) }
        if !done.isEmpty || retried > 0 {
            let again = retried > 0 ? " (\(retried) that failed are judged again)" : ""
            printError("themis: resuming: \(done.count) records already in \(path!), \(todo.count) to go\(again)")
        }
        var summary = JudgeSummary()
        let progress = Progress(total: todo.count)
        let start = DispatchTime.now().uptimeNanoseconds
        for first in stride(from: 0, to: todo.count, by: group) {
            let records = Array(todo[first..<min(todo.count, first + group)])
            for (record, out) in zip(records, await batch.process(records)) {
                let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .withoutEscapingSlashes])
                sink.write(data + Data("\n".utf8))
                summary.add(out, label: record.fields[labelField])
                progress.step()
            }
        }
        progress.finish()
        summary.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return summary
    }
}

/// done/total, items/s and ETA on stderr, when stderr is a terminal.
final class Progress {
    let total: Int
    private var done = 0
    private let start = DispatchTime.now().uptimeNanoseconds
    private let enabled = isatty(STDERR_FILENO) != 0

    init(total: Int) { self.total = total }

    func step() {
        done += 1
        guard enabled else { return }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let rate = Double(done) / max(seconds, 1e-9)
        let eta = Double(total - done) / max(rate, 1e-9)
        FileHandle.standardError.write(Data(String(format: "\u{1B}[2K\r%d/%d  %.2f items/s  ETA %.0f s", done, total, rate, eta).utf8))
    }

    func finish() {
        if enabled && done > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// `--shard K/N`: this process judges the K-th of N deterministic parts of the input.
struct ShardOption: ParsableArguments {
    @Option(help: "Judge only part K of N (K from 0: a Kubernetes completion index or a Slurm array task id), chosen by a hash of each record's id; every shard writes its own --output, and meta-eval reads them together.",
            transform: { try Shard($0) })
    var shard: Shard?

    /// The records of this shard (all of them without --shard), in input order.
    func select(_ records: [InputRecord], ids: (InputRecord) -> String) -> [InputRecord] {
        guard let shard else { return records }
        return records.filter { shard.contains(id: ids($0)) }
    }

    /// `-shard-K-of-N` for default file names; empty without --shard.
    var fileSuffix: String { shard.map { "-shard-\($0.index)-of-\($0.count)" } ?? "" }
}
