import ArgumentParser
import Foundation
import ThemisBench

extension Statistics.KendallVariant: ExpressibleByArgument {}

/// Metric and output options of a meta-evaluation (shared by `meta-eval` and `eval-judge`).
struct MetaEvalSettings: ParsableArguments {
    @Option(name: .customLong("label-field"), help: "Field with the human label: a rating, or A / B / tie for pairs.")
    var labelField = "label"
    @Flag(name: .customLong("numeric-pair-labels"), help: "Pair labels are 1 / 2 / 0 (A / B / tie), as in LLMBar.")
    var numericPairLabels = false
    @Option(name: .customLong("label-scale"), help: "Rating scale of labels and ratings, LOW-HIGH.") var labelScale = "1-5"
    @Option(name: .customLong("agr-p"), help: "Agr(p, q): agreement counts while |rating - label| < p.") var agrP = 2.0
    @Option(name: .customLong("agr-q"), help: "Agr(p, q): an item scores 1 / (|rating - label| + 1)^q.") var agrQ = 2.0
    @Option(help: "Kendall's tau variant: b or c.") var kendall: Statistics.KendallVariant = .b
    @Option(help: "Bootstrap resamples for the 95% intervals (0: none).") var bootstrap = 1000
    @Option(help: "Seed of the bootstrap.") var seed: UInt64 = 2025
    @Option(help: "Metrics averaged into the aggregate, comma-separated.")
    var aggregate = MetaEvalOptions().aggregateMetrics.joined(separator: ",")
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Option(help: "Write a self-contained HTML report with charts to this file.") var html: String?

    /// Most values a rating scale may have.
    static let maximumScaleValues = 101

    func validate() throws {
        if agrP <= 0 || agrQ < 0 { throw ValidationError("--agr-p must be > 0 and --agr-q >= 0") }
        if bootstrap < 0 || bootstrap > 100_000 { throw ValidationError("--bootstrap must be between 0 and 100000") }
        if !agrP.isFinite || !agrQ.isFinite { throw ValidationError("--agr-p and --agr-q must be finite") }
        _ = try scale()
        for name in aggregateMetrics where !MetaEvalOptions.aggregatable.contains(name) {
            throw ValidationError("--aggregate: unknown metric '\(name)' (known: \(MetaEvalOptions.aggregatable.joined(separator: ", ")))")
        }
    }

    var aggregateMetrics: [String] { aggregate.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    func scale() throws -> ClosedRange<Int> {
        let parts = labelScale.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 2, parts[0] < parts[1] else { throw ValidationError("--label-scale takes LOW-HIGH, e.g. 1-5") }
        // the confusion matrix has a row and a column per value
        guard parts[0] >= 0, parts[1] - parts[0] < MetaEvalSettings.maximumScaleValues else {
            throw ValidationError("--label-scale \(labelScale): at most \(MetaEvalSettings.maximumScaleValues) values from 0 up")
        }
        return parts[0]...parts[1]
    }

    func joinOptions(key: String) throws -> JoinOptions {
        var o = JoinOptions()
        o.key = key
        o.labelField = labelField
        o.scale = try scale()
        o.numericPairLabels = numericPairLabels
        return o
    }

    func options() throws -> MetaEvalOptions {
        var o = MetaEvalOptions()
        o.metrics.agreementP = agrP
        o.metrics.agreementQ = agrQ
        o.metrics.kendall = kendall
        o.metrics.scale = try scale()
        o.bootstrapSamples = bootstrap
        o.seed = seed
        o.aggregateMetrics = aggregateMetrics
        return o
    }

    /// Evaluates joined data and writes the report: Markdown on stdout, JSON and HTML files.
    /// Problems with the inputs go to stderr, the first few in full.
    func report(_ data: JoinedData, title: String) throws {
        for line in data.problems.prefix(10) { printError("themis: \(line)") }
        if data.problems.count > 10 { printError("themis: ... and \(data.problems.count - 10) more problems (all in the JSON report)") }
        if !data.unmatchedPredictions.isEmpty {
            printError("themis: \(data.unmatchedPredictions.count) predictions have no label, e.g. \(data.unmatchedPredictions.prefix(3).joined(separator: ", "))")
        }
        if !data.unmatchedLabels.isEmpty {
            printError("themis: \(data.unmatchedLabels.count) labels have no prediction, e.g. \(data.unmatchedLabels.prefix(3).joined(separator: ", "))")
        }
        let report = try MetaEvaluation.evaluate(data, options: options())
        print(report.markdown, terminator: "")
        if let json { try report.jsonData().write(to: URL(fileURLWithPath: json)) }
        if let html { try Data(report.html(title: title).utf8).write(to: URL(fileURLWithPath: html)) }
    }
}
