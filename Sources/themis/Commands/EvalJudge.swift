import ArgumentParser
import Foundation
import ThemisBench
import ThemisClient
import ThemisJudge
import ThemisModel

struct EvalJudge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-judge",
        abstract: "Run the judge on a human-labelled benchmark and meta-evaluate it in one go.",
        discussion: "Bundled benchmarks: " + JudgeBenchmark.builtIn.map { "\($0.name) (\($0.summary))" }.joined(separator: "; ")
            + ". A FILE is read like `themis judge` input, with a label field.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var remote: RemoteOptions
    @Option(help: "A bundled benchmark name, or a labelled file.") var benchmark: String
    @Option(help: "Judge only the first N records (before --shard picks its part of them).") var limit: Int?
    @OptionGroup var sharding: ShardOption
    @Option(help: "Map native fields to a FILE's fields, as for themis judge.") var fields: String?
    @Option(help: "single, reference, pairwise; default: from each record's fields.") var mode: JudgeMode?
    @Option(help: "Judge output (JSONL); default: eval-<benchmark>-<model>.jsonl here, with the HTML report beside it.")
    var output: String?
    @Flag(help: "Continue an earlier --output, judging only the records it lacks.") var resume = false
    @Flag(name: .customLong("retry-errors"), help: "With --resume: judge the records that failed in --output again (implies --resume).")
    var retryErrors = false
    @Flag(help: "Replace an existing --output file.") var overwrite = false
    @Option(help: "Explanation after the verdict: none, short, full (metrics need none).")
    var explain: JudgeOptions.Explain = .none
    @OptionGroup var judgeSettings: JudgeSettings
    @OptionGroup var settings: MetaEvalSettings

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        await reportingErrors {
            let bench = try JudgeBenchmark.resolve(benchmark, fields: fields, numericPairLabels: settings.numericPairLabels)
            var records = try bench.records()
            if let limit { records = Array(records.prefix(limit)) }
            let modelName = ModelLocation.displayName(modelOptions.model)
            let path = output ?? "eval-\(bench.name)-\(modelName)\(sharding.fileSuffix).jsonl"
            let out = try JudgeOutput.open(path, resume: resume || retryErrors, retryErrors: retryErrors, overwrite: overwrite)

            let client = try await makeClient(modelOptions, remote, local: judgeSettings.localOptions)
            let judge = Judge(client: client, catalogue: try judgeSettings.catalogue(), options: try judgeSettings.options(explain: explain))
            let keep = [settings.labelField, "category"]
            var batch = BatchJudge(judge: judge, fields: try FieldMap(bench.fields), mode: mode, keepFields: keep)
            batch.hint = JudgeSettings.hint
            records = sharding.select(records, ids: batch.id(of:))
            let summary = try await out.judge(records, with: batch, group: judgeSettings.batch, labelField: settings.labelField)
            try? await (client as? OpenAIModel)?.shutdown()
            for line in summary.lines { printError(line) }
            printError("themis: judge output in \(path)")

            var join = try settings.joinOptions(key: "id")
            join.numericPairLabels = bench.numericPairLabels || settings.numericPairLabels
            var data = try MetaEvalInput.join(predictions: [path], labels: bench.labelsPath, options: join)
            if limit != nil || sharding.shard != nil {
                // the labels of records beyond --limit or in other shards were not asked for
                let judged = Set(records.map { batch.id(of: $0) })
                data.unmatchedLabels.removeAll { !judged.contains($0) }
            }
            // the HTML report goes beside the judge output unless told otherwise
            var report = settings
            if report.html == nil { report.html = (path.hasSuffix(".jsonl") ? String(path.dropLast(6)) : path) + ".html" }
            try report.report(data, title: "\(bench.name)\(sharding.shard.map { ", shard \($0)" } ?? ""), judged by \(modelName) on \(modelOptions.device)")
            printError("themis: HTML report in \(report.html!)")
        }
    }
}
