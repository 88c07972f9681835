import Foundation
import JSONLines
import ThemisJudge
import ThemisClient

/// The distillation pipeline over a directory: each stage reads the previous stage's JSONL and
/// writes its own (`synthesize.jsonl`, `instructions.jsonl`, `respond.jsonl`, `grade.jsonl`,
/// `select.jsonl`, `augment.jsonl`, then `export/`), each with a manifest; every stage resumes.
public final class Pipeline: @unchecked Sendable {
    public static let stages = ["synthesize", "respond", "grade", "select", "augment", "export"]

    public let config: PipelineConfig
    public let directory: String
    public let generators: [String: any ModelClient]
    /// The model scoring IFD (`select.ifd_model`), if any.
    public let ifdModel: (any ModelClient)?
    public let catalogue: ScenarioCatalogue
    /// Stage, done, total: called as items finish.
    public var progress: (@Sendable (String, Int, Int) -> Void)?

    public init(config: PipelineConfig, directory: String, generators: [String: any ModelClient], ifdModel: (any ModelClient)?,
                catalogue: ScenarioCatalogue) {
        self.config = config
        self.directory = directory
        self.generators = generators
        self.ifdModel = ifdModel
        self.catalogue = catalogue
    }

    func path(_ name: String) -> String { directory + "/" + name }

    /// The progress callback of one stage.
    func reporter(_ stage: String) -> (@Sendable (Int, Int) -> Void)? {
        guard let progress else { return nil }
        return { progress(stage, $0, $1) }
    }

    func runner(_ stage: String, _ part: some Encodable, concurrency: Int) -> StageRunner {
        StageRunner(stage: stage, directory: directory, configHash: PipelineConfig.hash(part), concurrency: concurrency)
    }

    /// Runs every stage in order (completed ones are skipped, cut ones resumed).
    public func runAll() async throws -> [StageManifest] {
        var out: [StageManifest] = []
        for stage in Self.stages { out.append(try await run(stage)) }
        return out
    }

    public func run(_ stage: String) async throws -> StageManifest {
        switch stage {
        case "synthesize": return try await synthesize()
        case "respond": return try await respond()
        case "grade": return try await grade()
        case "select": return try await select()
        case "augment": return try await augment()
        case "export": return try await export()
        default: throw DistillError.config("unknown stage '\(stage)' (stages: \(Self.stages.joined(separator: ", ")))")
        }
    }

    func generator(_ name: String) throws -> any ModelClient {
        guard let g = generators[name] else { throw DistillError.config("no generator '\(name)'") }
        return g
    }

    func concurrency(of name: String) -> Int { config.generators[name]?.concurrency ?? (config.generators[name]?.url != nil ? 4 : 1) }

    /// A seed per item, from the pipeline seed and the item id (the same on every run).
    func seed(_ id: String) -> Int {
        Int(FNV1a.hash(id.utf8, basis: FNV1a.offsetBasis ^ UInt64(bitPattern: Int64(config.seed))) % 1_000_000_007)
    }

    /// The records of a completed stage (`stage.jsonl`), with the lines that cannot be used.
    func requireStage<Record: Codable & Sendable>(_ stage: String, as type: Record.Type, id: (Record) -> String) throws -> StageRecords<Record> {
        guard let m = StageManifest.read(path(stage + ".manifest.json")), m.complete else {
            throw DistillError.config("stage \(stage) has not completed in \(directory): run it first")
        }
        return try StageRunner.records(path(stage + ".jsonl"), as: type, id: id)
    }

    // MARK: synthesize

    func synthesize() async throws -> StageManifest {
        let synthesizer = try Synthesizer(catalogue: catalogue, config: config.synthesize)
        let passages = try Synthesizer.passages(config.synthesize.passages)
        let items = synthesizer.workItems(passages: passages, seed: config.seed)
        let g = try generator(config.synthesize.generator)
        let c = config.synthesize
        let runner = runner("synthesize", [PipelineConfig.hash(c), String(config.seed)], concurrency: concurrency(of: c.generator))
        var manifest = try await runner.run(items, progress: reporter("synthesize")) { (item: WorkItem<Synthesizer.Task>) async -> ItemOutcome<InstructionRecord> in
            do {
                let spec = ChatRequest.user(try synthesizer.prompt(item), maxTokens: c.max_tokens, temperature: c.temperature,
                                               seed: self.seed(item.id))
                let answer = try await g.chat(spec)
                let task = item.payload
                let lines = Synthesizer.parseList(answer.text)
                if lines.isEmpty { return .failed("no numbered instructions in the generator's answer") }
                return .records(lines.enumerated().map { k, line in
                    InstructionRecord(id: "\(item.id)-\(k + 1)", scenario: task.scenario, method: task.method, instruction: line,
                                      generator: g.name, passageID: task.passage?.id,
                                      dropped: synthesizer.invalidity(line, passage: task.passage?.text, scenario: task.scenario))
                })
            } catch {
                return .failed("\(error)")
            }
        }
        // validity and de-duplication over the whole stage, in order
        let all = try StageRunner.records(path("synthesize.jsonl"), as: InstructionRecord.self, id: \.id).records
        var dropped: [String: Int] = [:]
        let valid = all.filter { r in
            if let why = r.dropped { dropped[why.hasPrefix("too short") ? "too short" : why, default: 0] += 1; return false }
            return true
        }
        let dedup = Deduplicator(n: c.dedup_ngram, threshold: c.dedup_threshold)
        let (kept, dups) = dedup.filter(valid.map { (id: $0.id, text: $0.instruction) })
        dropped["duplicate", default: 0] += dups.count
        let keep = Set(kept)
        let writer = try JSONLWriter(path: path("instructions.jsonl"), existing: .replace)
        for r in valid where keep.contains(r.id) { try writer.append(r) }
        manifest.counts["instructions"] = kept.count
        manifest.dropped.merge(dropped) { $0 + $1 }
        try manifest.write(to: runner.manifestPath)
        let reasons = all.compactMap { r in r.dropped.map { DroppedInstruction(id: r.id, reason: $0) } }
            + dups.map { DroppedInstruction(id: $0.id, reason: $0.reason) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(reasons), to: URL(fileURLWithPath: path("synthesize.dropped.json")))
        return manifest
    }

    /// Why an instruction of the synthesize stage was not kept (`synthesize.dropped.json`).
    struct DroppedInstruction: Codable {
        var id: String
        var reason: String
    }

    // MARK: respond

    func respond() async throws -> StageManifest {
        guard FileManager.default.fileExists(atPath: path("instructions.jsonl")) else {
            throw DistillError.config("no instructions.jsonl in \(directory): run synthesize first")
        }
        _ = try requireStage("synthesize", as: InstructionRecord.self, id: \.id)
        let instructions = try StageRunner.plainRecords(path("instructions.jsonl"), as: InstructionRecord.self, id: \.id)
        let c = config.respond
        var items: [WorkItem<(instruction: InstructionRecord, generator: String)>] = []
        for r in instructions.records {
            for name in c.generators { items.append(WorkItem(id: "resp-\(r.id)-\(name)", payload: (r, name))) }
        }
        var responders: [String: any ModelClient] = [:]
        for name in c.generators { responders[name] = try generator(name) }
        let width = c.generators.map(concurrency(of:)).max() ?? 1
        return try await runner("respond", c, concurrency: width).run(items, rejected: instructions.rejected, progress: reporter("respond")) {
            [responders] item async -> ItemOutcome<ResponseRecord> in
            let (instruction, name) = item.payload
            guard let responder = responders[name] else { return .failed("no generator '\(name)'") }
            do {
                let answer = try await responder.chat(ChatRequest.user(instruction.instruction, maxTokens: c.max_tokens,
                                                                       temperature: c.temperature, seed: self.seed(item.id)))
                guard !answer.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return .failed("empty response") }
                return .records([ResponseRecord(id: item.id, instructionID: instruction.id, scenario: instruction.scenario,
                                                instruction: instruction.instruction, generator: name, response: answer.text,
                                                finishReason: answer.finishReason, model: answer.model)])
            } catch {
                return .failed("\(error)")
            }
        }
    }
}
