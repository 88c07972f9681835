import ArgumentParser
import Foundation
import ThemisBench

struct MetaEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meta-eval",
        abstract: "Compare judge output with human labels: MAE, Agr(p,q), correlations, pair accuracy and position bias, per scenario, with bootstrap intervals.")

    @Option(help: "Judge output (themis judge records); repeat for several runs, e.g. single and reference.")
    var predictions: [String]
    @Option(help: "Labels file (JSONL or JSON array); default: the label field of the predictions.") var labels: String?
    @Option(help: "Field joining predictions and labels (records without it are line-N).") var key = "id"
    @OptionGroup var settings: MetaEvalSettings

    func validate() throws {
        if predictions.isEmpty { throw ValidationError("give at least one --predictions file") }
    }

    func run() throws {
        reportingErrors {
            for path in predictions + (labels.map { [$0] } ?? []) where !FileManager.default.fileExists(atPath: path) {
                throw ValidationError("cannot read \(path): no such file")
            }
            let data = try MetaEvalInput.join(predictions: predictions, labels: labels, options: settings.joinOptions(key: key))
            try settings.report(data, title: "Meta-evaluation: " + predictions.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", "))
        }
    }
}
