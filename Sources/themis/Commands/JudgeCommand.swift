import ArgumentParser
import Foundation
import ThemisJudge
import ThemisModel

extension JudgeMode: ExpressibleByArgument {}
extension JudgeOptions.Explain: ExpressibleByArgument {}
extension JudgeOptions.PairwiseResolve: ExpressibleByArgument {}

struct JudgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judge",
        abstract: "Judge responses in a JSONL (or JSON array) file: scenario-dependent prompts, single / reference-guided / pairwise grading.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Input records: JSON Lines, or a JSON array of objects.") var input: String
    @Option(help: "Output JSONL (default: stdout). Records are appended as they are judged.") var output: String?
    @Option(help: "single, reference, pairwise; default: from each record's fields.") var mode: JudgeMode?
    @Option(help: "Map native fields to the input's: instruction=input,response_a=output_1,...") var fields: String?
    @Option(name: .customLong("keep-fields"), help: "Input fields copied into each output record (comma-separated), e.g. label.")
    var keepFields: String?
    @Option(name: .customLong("label-field"), help: "Field with the human label, for the agreement line of the summary.")
    var labelField = "label"
    @Option(help: "Scenario catalogue JSON (default: the bundled one).") var criteria: String?
    @Option(help: "Rating scale, e.g. 1-10 (default 1-5).") var scale = "1-5"
    @Option(help: "Explanation after the verdict: none, short, full.") var explain: JudgeOptions.Explain = .short
    @Flag(name: .customLong("free-verdict"), help: "Let the model write the verdict and parse it from its text.")
    var freeVerdict = false
    @Option(name: .customLong("pairwise-resolve"), help: "When the two orders disagree: tie, or probability.")
    var pairwiseResolve: JudgeOptions.PairwiseResolve = .tie
    @Flag(name: .customLong("no-prefix-reuse"), help: "Prefill every prompt whole (for measuring the reuse).")
    var noPrefixReuse = false
    @Option(name: .customLong("prefix-cache-mib"), help: "Memory for the reused prompt heads' keys and values (MiB).")
    var prefixCacheMiB = 256
    @Flag(help: "Cut the middle of a response that does not fit the context, with a marker.") var truncate = false
    @Flag(help: "Skip records whose id is already in --output.") var resume = false
    @Flag(help: "Replace an existing --output file.") var overwrite = false
    @Option(help: "Judge only the first N records.") var limit: Int?
    @Option(help: "Records judged together (their explanations are decoded in shared forward passes).")
    var batch = 4

    func validate() throws {
        if resume && output == nil { throw ValidationError("--resume needs --output") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if batch < 1 || batch > 32 { throw ValidationError("--batch must be between 1 and 32") }
        if prefixCacheMiB < 0 { throw ValidationError("--prefix-cache-mib must be >= 0") }
    }

    func run() throws {
        reportingErrors {
            let parts = scale.split(separator: "-").compactMap { Int($0) }
            guard parts.count == 2 else { throw ValidationError("--scale takes LOW-HIGH, e.g. 1-10") }
            var options = JudgeOptions()
            options.scale = try RatingScale(lower: parts[0], upper: parts[1])
            options.explain = explain
            options.freeVerdict = freeVerdict
            options.pairwiseResolve = pairwiseResolve
            options.reusePrefix = !noPrefixReuse
            options.truncate = truncate
            options.prefixCacheBytes = prefixCacheMiB << 20
            let catalogue = try criteria.map(ScenarioCatalogue.load) ?? ScenarioCatalogue.bundled()
            let fieldMap = try FieldMap(fields)
            var records = try RecordReader.read(input)
            if let limit { records = Array(records.prefix(limit)) }

            // output: resume, overwrite or a new file
            var done = Set<String>()
            var sink: FileHandle
            if let output {
                let exists = FileManager.default.fileExists(atPath: output)
                if exists && resume {
                    done = try Self.idsAlreadyWritten(output)
                } else if exists && !overwrite {
                    throw ValidationError("\(output) exists: pass --resume to continue it or --overwrite to replace it")
                } else {
                    guard FileManager.default.createFile(atPath: output, contents: nil) else {
                        throw ValidationError("cannot create \(output)")
                    }
                }
                guard let handle = FileHandle(forWritingAtPath: output) else { throw ValidationError("cannot write \(output)") }
                handle.seekToEndOfFile()
                sink = handle
            } else {
                sink = FileHandle.standardOutput
            }

            let model = try modelOptions.load()
            let judge = try Judge(model: model, catalogue: catalogue, options: options)
            let batch = BatchJudge(judge: judge, fields: fieldMap, mode: mode,
                                   keepFields: keepFields.map { $0.split(separator: ",").map(String.init) } ?? [])
            let todo = records.filter { !done.contains(batch.id(of: $0)) }
            if !done.isEmpty { printError("themis: resuming: \(done.count) records already in \(output!), \(todo.count) to go") }
            var summary = JudgeSummary()
            let progress = Progress(total: todo.count)
            let start = DispatchTime.now().uptimeNanoseconds
            for start in stride(from: 0, to: todo.count, by: self.batch) {
                let group = Array(todo[start..<min(todo.count, start + self.batch)])
                for (record, out) in zip(group, batch.process(group)) {
                    let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .withoutEscapingSlashes])
                    sink.write(data + Data("\n".utf8))
                    summary.add(out, label: record.fields[labelField])
                    progress.step()
                }
            }
            progress.finish()
            summary.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let lines = summary.lines + [
                "prompt tokens evaluated: \(judge.evaluatedTokens), reused from shared heads: \(judge.reusedTokens)",
            ]
            for line in lines {
                if output == nil { printError(line) } else { print(line) }
            }
            if summary.failed > 0 {
                printError("themis: \(summary.failed) of \(summary.count) records failed")
                throw ExitCode(Int32(min(summary.failed, 100)))
            }
        }
    }

    /// Ids in an earlier output; an unfinished last line (a killed run) is cut off first.
    static func idsAlreadyWritten(_ path: String) throws -> Set<String> {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var keep = data
        if let last = data.lastIndex(of: UInt8(ascii: "\n")) {
            keep = data.prefix(through: last)
        } else {
            keep = Data()
        }
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
