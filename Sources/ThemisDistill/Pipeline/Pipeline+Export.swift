import Foundation
import JSONLines
import ThemisClient

extension Pipeline {
    /// Training files from the augmented records: OpenAI messages JSONL, ShareGPT and Alpaca JSON,
    /// each sample with the answer's spans tagged `score` (verdict sentence, `[[n]]` scores,
    /// section headings: trained with cross-entropy) or `explanation` (free text: the paper's
    /// similarity loss), and a Markdown dataset card.
    func export() async throws -> StageManifest {
        let input = try requireStage("augment", as: GradedRecord.self, id: \.id)
        let records = input.records
        let dir = path("export")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var samples: [ExportSample.OpenAI] = []
        for r in records {
            let spans = Self.spans(r.judgement).map { ExportSample.Span(start: $0.range.lowerBound, end: $0.range.upperBound, kind: $0.kind) }
            let meta = ExportSample.Metadata(id: r.id, scenario: r.task.scenario, mode: r.task.mode.rawValue, augmentation: r.augmentation ?? "original")
            samples.append(ExportSample.OpenAI(messages: [.init(role: "user", content: r.prompt), .init(role: "assistant", content: r.judgement)],
                                               spans: spans, metadata: meta))
        }
        try ExportSample.write(samples, formats: config.export.formats, to: dir)
        try AtomicFile.write(Data(datasetCard(records).utf8), to: URL(fileURLWithPath: dir + "/README.md"))
        var manifest = StageManifest(stage: "export", configHash: PipelineConfig.hash(config.export), complete: true)
        manifest.counts["samples"] = records.count
        for r in input.rejected { manifest.dropped[r.reason, default: 0] += 1 }
        try manifest.write(to: path("export.manifest.json"))
        return manifest
    }

    /// Character ranges of the answer: `score` for the verdict sentence, every `[[n]]`, and
    /// heading lines (`Strengths:`); `explanation` for the rest. Offsets count UTF-16 units, as
    /// JavaScript and Python's `str` index the text, and cover the whole answer.
    static func spans(_ text: String) -> [(range: Range<Int>, kind: String)] {
        let units = Array(text.utf16)
        var marks = [Bool](repeating: false, count: units.count)
        let ns = text as NSString
        // the verdict sentence: from the start to the first "]]"
        let first = ns.range(of: "]]")
        if first.location != NSNotFound && first.location < 400 { for i in 0..<(first.location + 2) { marks[i] = true } }
        var search = NSRange(location: 0, length: ns.length)
        while true {
            let open = ns.range(of: "[[", options: [], range: search)
            guard open.location != NSNotFound else { break }
            let close = ns.range(of: "]]", options: [], range: NSRange(location: open.location, length: ns.length - open.location))
            guard close.location != NSNotFound else { break }
            for i in open.location..<(close.location + 2) { marks[i] = true }
            search = NSRange(location: close.location + 2, length: ns.length - close.location - 2)
        }
        var lineStart = 0
        for (i, u) in units.enumerated() where u == 10 || i == units.count - 1 {
            let end = u == 10 ? i : i + 1
            let line = ns.substring(with: NSRange(location: lineStart, length: end - lineStart)).trimmingCharacters(in: .whitespaces)
            if line.hasSuffix(":") && line.count < 40 { for j in lineStart..<end { marks[j] = true } }
            lineStart = i + 1
        }
        var out: [(Range<Int>, String)] = []
        var start = 0
        for i in 1...max(units.count, 1) where i == units.count || marks[i] != marks[start] {
            if units.isEmpty { break }
            out.append((start..<i, marks[start] ? "score" : "explanation"))
            start = i
        }
        return out
    }

    func datasetCard(_ records: [GradedRecord]) -> String {
        func table(_ title: String, _ key: ((GradedRecord) -> String)) -> String {
            let counts = Dictionary(grouping: records, by: key).mapValues(\.count)
            return "## \(title)\n\n| \(title.lowercased()) | samples |\n| --- | ---: |\n"
                + counts.sorted { $0.key < $1.key }.map { "| \($0.key) | \($0.value) |" }.joined(separator: "\n") + "\n\n"
        }
        var card = "# Judge training data\n\n\(records.count) samples: judge prompts (the paper's five blocks) and the teacher's judgements.\n\n"
        card += "Made by `themis distill` with seed \(config.seed); teacher: \(config.grade.teacher); responders: "
            + config.respond.generators.joined(separator: ", ") + ".\n\n"
        card += table("Scenario") { $0.task.scenario }
        card += table("Score") { r in
            guard let score = r.score else { return "pairwise: " + (r.verdict ?? "?") }
            let augmentation = r.augmentation ?? ""
            return "\(score) on " + (augmentation.hasPrefix("scale ") ? String(augmentation.dropFirst(6)) : "1-5")
        }
        card += table("Mode") { $0.task.mode.rawValue }
        card += table("Source model") { r in r.task.responder ?? "\(r.task.responderA ?? "?") vs \(r.task.responderB ?? "?")" }
        card += table("Augmentation") { $0.augmentation ?? "original" }
        let ifds = records.compactMap(\.ifd)
        if !ifds.isEmpty {
            card += "## IFD\n\nIFD = mean cross-entropy of the judgement given the prompt / without it (Cherry LLM).\n\n"
            card += "| IFD | samples | |\n| --- | ---: | --- |\n"
            let edges = stride(from: 0.0, to: 1.2, by: 0.1).map { $0 }
            for lo in edges {
                let n = ifds.filter { $0 >= lo && ($0 < lo + 0.1 || lo >= 1.1) }.count
                if n == 0 { continue }
                card += String(format: "| %.1f-%.1f | %d | %@ |\n", lo, lo + 0.1, n, String(repeating: "#", count: min(40, n)))
            }
            card += "\n"
        }
        card += "Spans: each sample's `spans` tag the answer's characters (UTF-16 offsets) as `score` (verdict and scores, "
            + "trained with cross-entropy) or `explanation` (free text, the paper's similarity loss).\n"
        return card
    }
}

/// The export formats' samples: the prompt and the teacher's judgement with its tagged spans.
/// `openai.jsonl` lines are what `themis train` reads.
public enum ExportSample {
    /// Characters `start ..< end` (UTF-16 offsets) of the answer are of `kind`: `score` or `explanation`.
    public struct Span: Codable, Sendable, Equatable {
        public var start: Int, end: Int, kind: String
        public init(start: Int, end: Int, kind: String) {
            self.start = start
            self.end = end
            self.kind = kind
        }
    }
    public struct Metadata: Codable, Sendable, Equatable {
        public var id: String, scenario: String, mode: String, augmentation: String
        public init(id: String, scenario: String, mode: String, augmentation: String) {
            self.id = id
            self.scenario = scenario
            self.mode = mode
            self.augmentation = augmentation
        }
    }
    public struct Message: Codable, Sendable, Equatable {
        public var role: String, content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }
    public struct Turn: Codable, Sendable, Equatable { var from: String, value: String }
    /// One line of `openai.jsonl`.
    public struct OpenAI: Codable, Sendable, Equatable {
        public var messages: [Message], spans: [Span], metadata: Metadata
        public init(messages: [Message], spans: [Span], metadata: Metadata) {
            self.messages = messages
            self.spans = spans
            self.metadata = metadata
        }
    }
    /// One item of `sharegpt.json`.
    struct ShareGPT: Codable { var id: String, conversations: [Turn], spans: [Span], metadata: Metadata }
    /// One item of `alpaca.json`.
    struct Alpaca: Codable { var instruction: String, input: String, output: String, spans: [Span], metadata: Metadata }

    /// Writes `samples` (a prompt and its answer each) into `directory` in `formats`: `openai`
    /// (`openai.jsonl`), `sharegpt` (`sharegpt.json`), `alpaca` (`alpaca.json`).
    public static func write(_ samples: [OpenAI], formats: [String], to directory: String) throws {
        let line = JSONEncoder()
        line.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        func parts(_ s: OpenAI) -> (prompt: String, answer: String) {
            (s.messages.first { $0.role == "user" }?.content ?? "", s.messages.last?.content ?? "")
        }
        if formats.contains("openai") {
            var data = Data()
            for s in samples { data += try line.encode(s) + Data("\n".utf8) }
            try AtomicFile.write(data, to: URL(fileURLWithPath: directory + "/openai.jsonl"))
        }
        if formats.contains("sharegpt") {
            let items = samples.map { s in
                ShareGPT(id: s.metadata.id, conversations: [.init(from: "human", value: parts(s).prompt), .init(from: "gpt", value: parts(s).answer)],
                         spans: s.spans, metadata: s.metadata)
            }
            try AtomicFile.write(try pretty.encode(items), to: URL(fileURLWithPath: directory + "/sharegpt.json"))
        }
        if formats.contains("alpaca") {
            let items = samples.map { s in
                Alpaca(instruction: parts(s).prompt, input: "", output: parts(s).answer, spans: s.spans, metadata: s.metadata)
            }
            try AtomicFile.write(try pretty.encode(items), to: URL(fileURLWithPath: directory + "/alpaca.json"))
        }
    }
}
