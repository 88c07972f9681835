import ArgumentParser
import Foundation
import JSONLines
import ThemisJudge

/// Where judged records go: a new file, a resumed one (the ids judged there are skipped), or stdout.
struct JudgeOutput {
    let writer: JSONLWriter
    let done: Set<String>
    /// Error records of the earlier output that this run judges again.
    let retried: Int
    let path: String?

    static func open(_ path: String?, resume: Bool, retryErrors: Bool, overwrite: Bool) throws -> JudgeOutput {
        guard let path else { return JudgeOutput(writer: JSONLWriter(), done: [], retried: 0, path: nil) }
        if FileManager.default.fileExists(atPath: path) && !resume && !overwrite {
            throw ValidationError("\(path) exists: pass --resume to continue it or --overwrite to replace it")
        }
        var state = JSONLResume.State()
        if resume {
            state = try JSONLResume.prepare(path, as: JudgeRecord.self, id: \.id, isError: { $0.status == .error },
                                            retryErrors: retryErrors)
            if state.removedPartialLine { printError("themis: \(path): removed a partial last line (a write that was cut short)") }
            if !state.unreadableLines.isEmpty {
                printError("themis: \(path): \(state.unreadableLines.count) lines are not judge records (kept as they are), e.g. line \(state.unreadableLines[0])")
            }
            if !state.duplicateIDs.isEmpty {
                printError("themis: \(path) holds \(state.duplicateIDs.count) ids more than once: \(state.duplicateIDs.prefix(5).joined(separator: ", "))")
            }
        }
        let writer = try JSONLWriter(path: path, existing: resume ? .append : .replace)
        return JudgeOutput(writer: writer, done: state.done, retried: state.retried, path: path)
    }

    /// Refuses input in which two records share an id: output, resuming and meta-evaluation
    /// tell records apart by id.
    static func checkUniqueIDs(_ records: [InputRecord], id: (InputRecord) -> String) throws {
        var first: [String: Int] = [:]
        var duplicates: [String] = []
        for r in records {
            let key = id(r)
            if let line = first[key] { duplicates.append("'\(key)' on lines \(line) and \(r.line)") } else { first[key] = r.line }
        }
        guard duplicates.isEmpty else {
            throw CLIError.input("\(duplicates.count) input records repeat an earlier id (\(duplicates.prefix(3).joined(separator: "; ")))"
                + ": give every record its own id")
        }
    }

    /// Judges the records not yet written, `group` at a time, writing each output record as it
    /// comes, with progress on stderr; the summary counts this run's records only.
    func judge(_ records: [InputRecord], with batch: BatchJudge, group: Int, labelField: String) async throws -> JudgeSummary {
        try Self.checkUniqueIDs(records, id: batch.id(of:))
        let todo = records.filter { !done.contains(batch.id(of: $0)) }
        if !done.isEmpty || retried > 0 {
            let again = retried > 0 ? " (\(retried) that failed are judged again)" : ""
            printError("themis: resuming: \(done.count) records already in \(path ?? "the output"), \(todo.count) to go\(again)")
        }
        var summary = JudgeSummary()
        let progress = Progress(total: todo.count)
        let start = DispatchTime.now().uptimeNanoseconds
        for first in stride(from: 0, to: todo.count, by: group) {
            let records = Array(todo[first..<min(todo.count, first + group)])
            for (record, out) in zip(records, await batch.process(records)) {
                try writer.append(out)
                summary.add(out, label: record.fields[labelField])
                progress.step()
            }
        }
        progress.finish()
        summary.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return summary
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
