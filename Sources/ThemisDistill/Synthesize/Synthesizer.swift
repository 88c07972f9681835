import Foundation
import JSONLines
import ThemisClient
import ThemisJudge

/// Controlled instruction generation (the paper's Section 3.2): reference-based questioning for
/// seven scenarios and role-playing quizzing for math-related QA, reading comprehension and
/// programming, then validity checks and de-duplication.
public struct Synthesizer: Sendable {
    /// Scenarios whose instructions come from quizzes written in role.
    public static let quizScenarios: Set<String> = ["math_qa", "reading_comprehension", "programming"]
    /// Scenarios whose instructions are grounded in a reference passage.
    public static let referenceScenarios: Set<String> = [
        "close_qa", "open_qa", "creative_writing", "professional_writing", "rewriting", "translation", "role_playing",
    ]

    public let catalogue: ScenarioCatalogue
    public let config: PipelineConfig.Synthesize
    public let seeds: [String: [String]]

    public init(catalogue: ScenarioCatalogue, config: PipelineConfig.Synthesize) throws {
        self.catalogue = catalogue
        self.config = config
        guard let url = Bundle.module.url(forResource: "seeds", withExtension: "json"),
              let seeds = try? JSONDecoder().decode([String: [String]].self, from: Data(contentsOf: url)) else {
            throw DistillError.io("the bundled seed examples are missing")
        }
        self.seeds = seeds
    }

    /// A passage for reference-based questioning.
    public struct Passage: Sendable, Equatable {
        public var id: String
        public var text: String
    }

    /// Passages from JSON Lines (`text`, optional `id`) or text files (paragraphs).
    public static func passages(_ paths: [String]) throws -> [Passage] {
        var out: [Passage] = []
        for path in paths {
            let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            if path.hasSuffix(".jsonl") {
                for line in try JSONLReader.read(path, as: PassageLine.self) {
                    switch line.value {
                    case .failure(let error): throw DistillError.badInput("\(path) \(error)")
                    case .success(let p):
                        guard !p.text.isEmpty else { throw DistillError.badInput("\(path) line \(line.line): empty 'text'") }
                        out.append(Passage(id: p.id ?? "\(name)-\(line.line)", text: p.text))
                    }
                }
            } else {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DistillError.io("cannot read \(path)") }
                let paragraphs = text.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
                out += paragraphs.enumerated().map { Passage(id: "\(name)-\($0.offset + 1)", text: $0.element) }
            }
        }
        return out
    }

    /// One generation call: a passage to question (reference) or a quiz to write in role.
    public struct Task: Sendable, Equatable {
        public var method: String
        public var scenario: String
        public var passage: Passage?
        public var difficulty = "medium", audience = "a student", subject = "general knowledge"
    }

    /// The generation calls: passages spread over the reference scenarios, then the quizzes.
    public func workItems(passages: [Passage], seed: Int) -> [WorkItem<Task>] {
        var items: [WorkItem<Task>] = []
        var p = 0
        for (scenario, count) in config.reference_scenarios.sorted(by: { $0.key < $1.key }) where !passages.isEmpty {
            for _ in 0..<count {
                let passage = passages[p % passages.count]
                p += 1
                items.append(WorkItem(id: "syn-\(scenario)-\(passage.id)", payload: Task(method: "reference", scenario: scenario, passage: passage)))
            }
        }
        var rng = SeededGenerator(seed: UInt64(bitPattern: Int64(seed)))
        for (scenario, count) in config.quizzes.sorted(by: { $0.key < $1.key }) {
            for q in 0..<count {
                var task = Task(method: "quiz", scenario: scenario)
                task.difficulty = config.difficulties.randomElement(using: &rng) ?? task.difficulty
                task.audience = config.audiences.randomElement(using: &rng) ?? task.audience
                task.subject = config.subjects.randomElement(using: &rng) ?? task.subject
                items.append(WorkItem(id: "quiz-\(scenario)-\(q + 1)", payload: task))
            }
        }
        return items
    }

    /// The prompt of a call.
    public func prompt(_ item: WorkItem<Task>) throws -> String {
        let task = item.payload
        guard let scenario = catalogue.scenario(named: task.scenario) else {
            throw DistillError.config("unknown scenario '\(task.scenario)' in \(item.id)")
        }
        let examples = (seeds[scenario.id] ?? []).map { "- \($0)" }.joined(separator: "\n")
        let n = config.per_call
        guard task.method == "reference", let passage = task.passage else {
            return """
                You are an experienced test writer. Write \(n) new \(task.difficulty) questions on \(task.subject) \
                for \(task.audience), in the scenario [\(scenario.name)]: \(scenario.description)
                Each question must be self-contained, answerable, and different from the others.
                Examples of the style (do not copy them):
                \(examples)
                Write only the \(n) new questions, one per line, numbered 1. to \(n).
                """
        }
        return """
            Write \(n) different instructions that a user could give an AI assistant in the scenario [\(scenario.name)]: \(scenario.description)
            Base them on the reference passage below; each instruction must make sense on its own (quote what it needs from the passage).
            [Passage Begin]
            \(passage.text)
            [Passage End]
            Examples of instructions in this scenario, for their style only (do not copy them; ask about the passage):
            \(examples)
            Write only the \(n) new instructions, one per line, numbered 1. to \(n).
            """
    }

    /// The numbered (or bulleted) lines of a model's answer, without their markers.
    public static func parseList(_ text: String) -> [String] {
        var out: [String] = []
        for raw in text.split(separator: "\n") {
            var line = raw.trimmingCharacters(in: .whitespaces)
            guard let first = line.first else { continue }
            if first.isNumber {
                let digits = line.prefix { $0.isNumber }
                let rest = line.dropFirst(digits.count)
                guard let marker = rest.first, marker == "." || marker == ")" || marker == ":" else { continue }
                line = String(rest.dropFirst()).trimmingCharacters(in: .whitespaces)
            } else if first == "-" || first == "*" || first == "•" {
                line = String(line.dropFirst()).trimmingCharacters(in: .whitespaces)
            } else {
                continue
            }
            // markdown emphasis, and labels such as "Question 2:" before the text
            line = line.trimmingCharacters(in: CharacterSet(charactersIn: "*_ \t"))
            if let label = line.range(of: #"^(question|instruction|task|q)\s*\d*\s*[:.)-]\s*"#, options: [.regularExpression, .caseInsensitive]) {
                line = String(line[label.upperBound...]).trimmingCharacters(in: CharacterSet(charactersIn: "*_ \t"))
            }
            // a heading ("Explanation:", "Sample Code:") is not an instruction
            if line.hasSuffix(":") && line.split(separator: " ").count <= 3 { continue }
            if !line.isEmpty { out.append(line) }
        }
        return out
    }

    /// Why an instruction is unusable, or nil.
    public func invalidity(_ instruction: String, passage: String?, scenario: String) -> String? {
        let norm = Deduplicator.normalise(instruction)
        if (seeds[scenario] ?? []).contains(where: { norm.hasPrefix(Deduplicator.normalise($0)) }) { return "copies a seed example" }
        return Self.invalidity(instruction, passage: passage)
    }

    /// Why an instruction is unusable whatever its scenario, or nil.
    public static func invalidity(_ instruction: String, passage: String?) -> String? {
        let words = instruction.split(separator: " ").count
        if words < 4 { return "too short (\(words) words)" }
        if instruction.count > 1500 { return "too long (\(instruction.count) characters)" }
        if let passage, Deduplicator.normalise(passage).contains(Deduplicator.normalise(instruction)), words > 12 {
            return "copies the passage"
        }
        let lower = instruction.lowercased()
        if lower.hasPrefix("instruction") || lower.hasPrefix("question:") && words < 6 { return "a label, not an instruction" }
        return nil
    }
}
