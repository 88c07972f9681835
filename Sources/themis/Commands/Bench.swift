import ArgumentParser
import Foundation
import ThemisBench
import ThemisModel

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Speed benchmarks.", subcommands: [BenchModel.self, BenchKernels.self])
}

struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Prefill (ppN) and decode (tgN) tokens/s, as llama-bench reports them.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Prompt tokens for the prefill test (0 = skip).") var pp: Int = 512
    @Option(help: "Tokens for the decode test (0 = skip).") var tg: Int = 128
    @Option(help: "Repetitions of each test.") var reps: Int = 3
    @Option(help: "Sequences decoding together in the decode test (one forward pass per step, as themis serve batches them).")
    var sequences: Int = 1
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        if pp < 0 || tg < 0 || reps < 1 { throw ValidationError("--pp and --tg must be >= 0 and --reps >= 1") }
        if pp == 0 && tg == 0 { throw ValidationError("nothing to measure: give --pp or --tg above 0") }
        if sequences < 1 || sequences > 64 { throw ValidationError("--sequences must be between 1 and 64") }
    }

    func run() throws {
        reportingErrors {
            var options = modelOptions
            if options.contextSize == nil { options.contextSize = max(pp, tg) + 16 }
            let model = try options.load()
            let bench = ModelBench(model: model, repetitions: reps)
            var results: [ModelBench.Result] = []
            if pp > 0 { results.append(try bench.prefill(pp)) }
            if tg > 0 { results.append(try bench.decode(tg, sequences: sequences)) }
            let device = model.backend.device
            let sizeMiB = Double(model.file.fileSize) / Double(1 << 20)
            let name = URL(fileURLWithPath: model.file.path).lastPathComponent
            if json {
                var object: [String: Any] = [
                    "model": name, "device": device.id, "threads": device.computeUnits,
                    "peak_rss_bytes": peakResidentBytes(),
                ]
                for r in results {
                    object[r.test] = r.mean
                    object[r.test + "_stddev"] = r.standardDeviation
                }
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("| model | size | backend | threads | test | t/s |")
                print("| --- | ---: | --- | ---: | ---: | ---: |")
                for r in results {
                    print("| \(name) | \(String(format: "%.2f MiB", sizeMiB)) | \(device.id) | \(device.computeUnits) | \(r.test) | "
                          + String(format: "%.2f ± %.2f", r.mean, r.standardDeviation) + " |")
                }
                print("peak resident memory: \(String(format: "%.1f", Double(peakResidentBytes()) / 1_048_576)) MiB")
            }
        }
    }
}
