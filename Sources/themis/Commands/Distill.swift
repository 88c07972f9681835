import ArgumentParser
import Foundation
import JSONLines
import ThemisDistill
import ThemisJudge
import ThemisClient
import ThemisModel

struct Distill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build judge training data: synthesize instructions, collect responses, grade with a teacher, select, augment, export.",
        subcommands: [DistillRun.self, DistillSynthesize.self, DistillRespond.self, DistillGrade.self, DistillSelect.self,
                      DistillAugment.self, DistillExport.self, DistillImport.self])
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
        let progress = Progress(total: 0)
        pipeline.progress = { stage, done, total in progress.update(done: done, total: total, label: stage) }
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

struct DistillImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn human-labelled pairs into judge training samples (both orders, the human verdict as the score span) in the export formats.",
        discussion: """
            Reads JSON Lines of Anthropic HH-RLHF dialogues ({chosen, rejected}), {instruction, chosen, rejected}, or \
            {instruction, response_a, response_b, label: A|B|tie}. Writes DIR/openai.jsonl (what themis train reads), \
            sharegpt.json, alpaca.json, README.md and skipped.jsonl. With --teacher, each answer gets the teacher's \
            explanation after the human verdict.
            """)

    @Option(help: "Human-labelled pairs (JSON Lines; .gz is read too). Repeat for several files.") var input: [String]
    @Option(help: "Output directory.") var output: String
    @Option(help: "At most this many pairs (the first ones of the inputs, in order).") var limit: Int?
    @Option(help: "Scenario id of the judge prompt (the pairs carry none): \(Self.scenarioIDs).") var scenario = "open_qa"
    @Option(name: .customLong("classify-with"),
            help: "A model that picks each pair's scenario as the judge does when a record has none (a name, GGUF file or server URL); instead of --scenario for every pair.")
    var classifier: String?
    @Option(help: "A model that writes an explanation after each human verdict (a name, GGUF file or server URL).")
    var teacher: String?
    @Option(name: .customLong("teacher-max-tokens")) var teacherMaxTokens = 256
    @Option(help: "Device of a local teacher.") var device = "auto"
    @OptionGroup var remote: RemoteOptions
    @Option(help: "Export formats: openai, sharegpt, alpaca.") var formats = "openai,sharegpt,alpaca"

    static var scenarioIDs: String {
        ((try? ScenarioCatalogue.bundled().scenarios.map(\.id)) ?? []).joined(separator: ", ")
    }

    func run() async throws {
        do {
            let catalogue = try ScenarioCatalogue.bundled()
            guard let scenario = catalogue.scenarios.first(where: { $0.id == scenario }) else {
                throw ValidationError("--scenario: '\(scenario)' is not one of \(Self.scenarioIDs)")
            }
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            var pairs: [HumanLabels.Pair] = []
            var skipped: [HumanLabels.Skipped] = []
            for (i, path) in input.enumerated() {
                let plain = try Gzip.plainFile(path, scratch: output + "/.input-\(i).jsonl")
                defer { if plain != path { try? FileManager.default.removeItem(atPath: plain) } }
                let name = URL(fileURLWithPath: path).lastPathComponent.components(separatedBy: ".").first ?? "input\(i)"
                let read = try HumanLabels.read(plain, idPrefix: name)
                pairs += read.pairs
                skipped += read.skipped.map { HumanLabels.Skipped(line: $0.line, reason: "\(path): \($0.reason)") }
            }
            if let limit { pairs = Array(pairs.prefix(limit)) }
            var explain: ((String, String) async throws -> String)?
            var client: (any ModelClient)?
            if let teacher {
                let options = try ModelOptions.parse(["--model", teacher, "--device", device])
                let c = try await makeClient(options, remote, local: LocalModelOptions())
                client = c
                let maxTokens = teacherMaxTokens
                explain = { prompt, verdict in
                    let request = ChatRequest(prompt: Prompt(messages: [.user(prompt)], assistantPrefix: verdict + "\n"),
                                              maxTokens: maxTokens, temperature: 0)
                    return try await c.chat(request).text
                }
            }
            var judge: Judge?
            if let classifier {
                let options = try ModelOptions.parse(["--model", classifier, "--device", device])
                judge = Judge(client: try await makeClient(options, remote, local: LocalModelOptions()), catalogue: catalogue,
                              options: JudgeOptions())
            }
            let progress = Progress(total: pairs.count)
            var samples: [ExportSample.OpenAI] = []
            var scenarios: [String: Int] = [:]
            for pair in pairs {
                let chosen = try await judge?.classify(pair.instruction).0 ?? scenario
                scenarios[chosen.id, default: 0] += 1
                samples += try await HumanLabels.samples(pair, scenario: chosen, explain: explain)
                progress.step()
            }
            if let remoteJudge = judge?.client as? OpenAIModel { try? await remoteJudge.shutdown() }
            progress.finish()
            if let remoteClient = client as? OpenAIModel { try? await remoteClient.shutdown() }
            try ExportSample.write(samples, formats: formats.split(separator: ",").map(String.init), to: output)
            let writer = try JSONLWriter(path: output + "/skipped.jsonl", existing: .replace)
            for s in skipped { try writer.append(s) }
            var card = "# Judge training data from human labels\n\n"
            card += "\(samples.count) samples from \(pairs.count) human-labelled pairs (both orders) of \(input.joined(separator: ", "))"
            card += "; \(skipped.count) lines skipped (skipped.jsonl).\n\n"
            card += "Prompt: the pairwise judge prompt of "
                + (classifier.map { "the scenario \($0) classified each instruction into (" } ?? "scenario (")
                + scenarios.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + " pairs). Answer: the human verdict"
            card += teacher.map { " followed by an explanation from \($0)" } ?? " sentence only"
            card += " (`\(HumanLabels.verdictSentence(.a))`), tagged as a score span.\n"
            try AtomicFile.write(Data(card.utf8), to: URL(fileURLWithPath: output + "/README.md"))
            print("import: \(samples.count) samples from \(pairs.count) pairs, \(skipped.count) lines skipped -> \(output)/openai.jsonl")
        } catch {
            exitWithError(error)
        }
    }
}
