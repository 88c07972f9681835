import ArgumentParser
import Foundation
import ThemisJudge

/// Where judged records go: a new file, a resumed one (its ids are skipped), or stdout.
struct JudgeOutput {
    let sink: FileHandle
    let done: Set<String>
    let path: String?

    static func open(_ path: String?, resume: Bool, overwrite: Bool) throws -> JudgeOutput {
        guard let path else { return JudgeOutput(sink: .standardOutput, done: [], path: nil) }
        var done = Set<String>()
        let exists = FileManager.default.fileExists(atPath: path)
        if exists && resume {
            done = try idsAlreadyWritten(path)
        } else if exists && !overwrite {
            throw ValidationError("\(path) exists: pass --resume to continue it or --overwrite to replace it")
        } else {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw ValidationError("cannot create \(path)") }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot write \(path)") }
        handle.seekToEndOfFile()
        return JudgeOutput(sink: handle, done: done, path: path)
    }

    /// Ids in an earlier output; an unfinished last line (a killed run) is cut off first.
    static func idsAlreadyWritten(_ path: String) throws -> Set<String> {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let keep = data.lastIndex(of: UInt8(ascii: "\n")).map { data.prefix(through: $0) } ?? Data()
        if keep.count != data.count {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(keep.count))
            try handle.close()
        }
        var ids = Set<String>()
        for line in keep.split(separator: UInt8(ascii: "\n")) {
            if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let id = object["id"] as? String {
                ids.insert(id)
            }
        }
        return ids
    }

    /// Judges the records not yet written, `group` at a time, writing each output record as it
    /// comes, with progress on stderr; the summary counts this run's records only.
    func judge(_ records: [InputRecord], with batch: BatchJudge, group: Int, labelField: String) async throws -> JudgeSummary {
        let todo = records.filter { !done.contains(batch.id(of: $0)) }
        if !done.isEmpty { printError("themis: resuming: \(done.count) records already in \(path!), \(todo.count) to go") }
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
