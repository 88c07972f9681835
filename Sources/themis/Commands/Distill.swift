import ArgumentParser
import Foundation
import ThemisDistill
import ThemisJudge
import ThemisClient
import ThemisModel

struct Distill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build judge training data: synthesize instructions, collect responses, grade with a teacher, select, augment, export.",
        subcommands: [DistillRun.self, DistillSynthesize.self, DistillRespond.self, DistillGrade.self, DistillSelect.self,
                      DistillAugment.self, DistillExport.self])
}

/// `--config` and `--output`, and the generators a configuration names.
struct DistillOptions: ParsableArguments {
    @Option(help: "Pipeline configuration (YAML).") var config: String
    @Option(help: "Output directory (stages resume from what is there).") var output: String

    /// The configuration, the generators (local models on their devices, endpoints with an answer
    /// cache in the output directory) and the IFD model.
    func pipeline() throws -> Pipeline {
        let config = try PipelineConfig.load(self.config)
        var generators: [String: any ModelClient] = [:]
        for (name, g) in config.generators {
            if let local = g.local {
                guard case .file(let path) = try ModelLocation.resolve(local) else {
                    throw DistillError.config("generators.\(name).local must be a model name or a GGUF file; a server goes in url")
                }
                let backend = try DeviceSelection.open(g.device ?? "auto", exactDecode: false)
                let model = try LanguageModel(path: path, backend: backend,
                                              lora: g.lora.map { LoRAOptions(path: $0, scale: g.lora_scale ?? 1) })
                generators[name] = try LocalModel(model: model, name: name)
            } else {
                var o = OpenAIModelOptions(baseURL: g.url!, model: g.model ?? "default")
                o.apiKeyEnv = g.api_key_env
                o.concurrency = g.concurrency ?? 4
                o.requestsPerSecond = g.requests_per_second
                o.maxAttempts = g.max_attempts ?? 5
                o.timeout = g.timeout_seconds ?? 120
                o.cacheDirectory = output + "/cache/" + name
                if let t = g.chat_template {
                    o.chatTemplate = try ChatTemplateKind(rawValue: t).map { ChatTemplate(kind: $0) } ?? ChatTemplate(gguf: GGUFFile(path: t))
                }
                generators[name] = try OpenAIModel(options: o)
            }
        }
        let pipeline = Pipeline(config: config, directory: output, generators: generators,
                                ifdModel: config.select.ifd_model.flatMap { generators[$0] }, catalogue: try ScenarioCatalogue.bundled())
        if isatty(STDERR_FILENO) != 0 {
            let start = Date()
            pipeline.progress = { stage, done, total in
                let rate = Double(done) / max(Date().timeIntervalSince(start), 1e-3)
                FileHandle.standardError.write(Data(String(format: "\u{1B}[2K\r%@ %d/%d  %.2f/s", stage, done, total, rate).utf8))
                if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            }
        }
        return pipeline
    }

    static func report(_ m: StageManifest) {
        let counts = m.counts.keys.sorted().map { "\($0) \(m.counts[$0]!)" }.joined(separator: ", ")
        var line = "\(m.stage): \(counts)"
        if !m.dropped.isEmpty { line += "; dropped: " + m.dropped.keys.sorted().map { "\($0) (\(m.dropped[$0]!))" }.joined(separator: ", ") }
        print(line)
    }

    static func shutdown(_ pipeline: Pipeline) async {
        for g in pipeline.generators.values { try? await (g as? OpenAIModel)?.shutdown() }
    }
}

struct DistillRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run every stage (finished ones are skipped, cut ones resumed).")
    @OptionGroup var options: DistillOptions

    func run() async throws {
        do {
            let pipeline = try options.pipeline()
            defer { Task { await DistillOptions.shutdown(pipeline) } }
            for stage in Pipeline.stages { DistillOptions.report(try await pipeline.run(stage)) }
            print("export: \(options.output)/export (openai.jsonl, sharegpt.json, alpaca.json, README.md)")
        } catch {
            exitWithError(error)
        }
    }
}

/// One stage on its own: `themis distill <stage> --config C --output DIR`.
protocol DistillStageCommand: AsyncParsableCommand {
    static var stage: String { get }
    var options: DistillOptions { get }
}

extension DistillStageCommand {
    func run() async throws {
        do {
            let pipeline = try options.pipeline()
            DistillOptions.report(try await pipeline.run(Self.stage))
            await DistillOptions.shutdown(pipeline)
        } catch {
            exitWithError(error)
        }
    }
}

struct DistillSynthesize: DistillStageCommand {
    static let stage = "synthesize"
    static let configuration = CommandConfiguration(
        commandName: stage, abstract: "Reference-based questioning and role-playing quizzes, validity checks, de-duplication.")
    @OptionGroup var options: DistillOptions
}

struct DistillRespond: DistillStageCommand {
    static let stage = "respond"
    static let configuration = CommandConfiguration(commandName: stage, abstract: "Responses from every configured generator.")
    @OptionGroup var options: DistillOptions
}

struct DistillGrade: DistillStageCommand {
    static let stage = "grade"
    static let configuration = CommandConfiguration(
        commandName: stage, abstract: "The teacher grades with the judge prompts (single, reference, pairwise in both orders).")
    @OptionGroup var options: DistillOptions
}

struct DistillSelect: DistillStageCommand {
    static let stage = "select"
    static let configuration = CommandConfiguration(
        commandName: stage, abstract: "IFD scoring, then random / ifd / ifd-z selection with score balancing and scenario targets.")
    @OptionGroup var options: DistillOptions
}

struct DistillAugment: DistillStageCommand {
    static let stage = "augment"
    static let configuration = CommandConfiguration(
        commandName: stage, abstract: "Scale mapping, criteria dropping with re-derived overall scores, criteria paraphrases.")
    @OptionGroup var options: DistillOptions
}

struct DistillExport: DistillStageCommand {
    static let stage = "export"
    static let configuration = CommandConfiguration(
        commandName: stage, abstract: "OpenAI messages JSONL, ShareGPT and Alpaca with tagged spans, and a dataset card.")
    @OptionGroup var options: DistillOptions
}
