import ArgumentParser
import Foundation
import ThemisClient
import ThemisJudge
import ThemisModel

struct JudgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judge",
        abstract: "Judge responses in a JSONL (or JSON array) file: scenario-dependent prompts, single / reference-guided / pairwise grading.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var settings: JudgeSettings
    @Option(help: "Input records: JSON Lines, or a JSON array of objects.") var input: String
    @Option(help: "Output JSONL (default: stdout). Records are appended as they are judged.") var output: String?
    @Option(help: "single, reference, pairwise; default: from each record's fields.") var mode: JudgeMode?
    @Option(help: "Map native fields to the input's: instruction=input,response_a=output_1,...") var fields: String?
    @Option(name: .customLong("keep-fields"), help: "Input fields copied into each output record (comma-separated), e.g. label.")
    var keepFields: String?
    @Option(name: .customLong("label-field"), help: "Field with the human label, for the agreement line of the summary.")
    var labelField = "label"
    @Option(help: "Explanation after the verdict: none, short, full.") var explain: JudgeOptions.Explain = .short
    @Flag(help: "Continue --output: skip the records already in it (error records too, unless --retry-errors).") var resume = false
    @Flag(name: .customLong("retry-errors"), help: "With --resume: judge the records that failed in --output again (implies --resume).")
    var retryErrors = false
    @Flag(help: "Replace an existing --output file.") var overwrite = false
    @Option(help: "Judge only the first N records (before --shard picks its part of them).") var limit: Int?
    @OptionGroup var sharding: ShardOption

    func validate() throws {
        if (resume || retryErrors) && output == nil { throw ValidationError("--resume and --retry-errors need --output") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        await reportingErrors {
            let options = try settings.options(explain: explain)
            let catalogue = try settings.catalogue()
            let fieldMap = try FieldMap(fields)
            var records = try RecordReader.read(input)
            if let limit { records = Array(records.prefix(limit)) }
            let out = try JudgeOutput.open(output, resume: resume || retryErrors, retryErrors: retryErrors, overwrite: overwrite)

            let client = try await makeClient(modelOptions, remote, local: settings.localOptions)
            let judge = Judge(client: client, catalogue: catalogue, options: options)
            var batch = BatchJudge(judge: judge, fields: fieldMap, mode: mode,
                                   keepFields: keepFields.map { $0.split(separator: ",").map(String.init) } ?? [])
            batch.hint = JudgeSettings.hint
            records = sharding.select(records, ids: batch.id(of:))
            let summary = try await out.judge(records, with: batch, group: settings.batch, labelField: labelField)
            var lines = summary.lines
            if let local = client as? LocalModel {
                lines.append("prompt tokens evaluated: \(await local.evaluatedTokens), reused from earlier prompts: \(await local.reusedTokens)")
            }
            if let remote = client as? OpenAIModel {
                lines.append("requests: \(await remote.counters.attempts) attempts, \(await remote.counters.retries) retries, \(await remote.counters.cacheHits) cached")
                try? await remote.shutdown()
            }
            for line in lines {
                if output == nil { printError(line) } else { print(line) }
            }
            if summary.failed > 0 {
                printError("themis: \(summary.failed) of \(summary.count) records failed (error records in the output; --retry-errors judges them again)")
                throw ExitCode(ExitStatus.recordsFailed)
            }
        }
    }
}
