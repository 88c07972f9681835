import Foundation
import JSONLines
import ThemisClient
import ThemisJudge
import ThemisModel

/// Human-labelled pairs turned into judge training samples: the pairwise judge prompt (our five
/// blocks) in both orders, the human verdict as the answer's score span, and optionally a
/// teacher's explanation after it.
public enum HumanLabels {
    /// Which response the human preferred.
    public enum Label: String, Sendable, Codable { case a = "A", b = "B", tie = "C" }

    /// One labelled pair.
    public struct Pair: Sendable, Equatable {
        public var id: String
        public var instruction: String
        /// Earlier turns of a multi-turn conversation, oldest first.
        public var conversation: [Message]
        public var responseA: String
        public var responseB: String
        public var label: Label
    }

    /// A line that gives no pair, and why.
    public struct Skipped: Sendable, Codable, Equatable {
        public var line: Int
        public var reason: String
        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }
    }

    /// The pairs of a JSON Lines file in any of the shapes `pair(_:)` reads.
    public static func read(_ path: String, idPrefix: String) throws -> (pairs: [Pair], skipped: [Skipped]) {
        var pairs: [Pair] = [], skipped: [Skipped] = []
        for line in try JSONLReader.read(path, as: JSONValue.self) {
            switch line.value {
            case .failure(let error): skipped.append(Skipped(line: line.line, reason: "\(error)"))
            case .success(let value):
                do { pairs.append(try pair(value, id: "\(idPrefix)-\(line.line)")) } catch let error as DistillError {
                    skipped.append(Skipped(line: line.line, reason: error.description))
                }
            }
        }
        return (pairs, skipped)
    }

    /// One record as a pair. Shapes read:
    /// - Anthropic HH-RLHF: `chosen` and `rejected`, each the whole dialogue
    ///   (`\n\nHuman: …\n\nAssistant: …`), equal up to their last assistant turn;
    /// - `instruction` (or `prompt`, `question`) with `chosen` and `rejected`;
    /// - `instruction` with `response_a`/`response_b` (or `output_1`/`output_2`) and a `label`
    ///   (or `winner`, `preference`): A, B, tie/C, or 1, 2 (0 a tie).
    public static func pair(_ record: JSONValue, id: String) throws -> Pair {
        guard case .object(let f) = record else { throw DistillError.badInput("the line is not a JSON object") }
        func text(_ keys: String...) -> String? {
            for k in keys { if let s = f[k]?.string, !s.isEmpty { return s } }
            return nil
        }
        let instruction = text("instruction", "prompt", "question", "input")
        if let chosen = text("chosen"), let rejected = text("rejected") {
            if instruction == nil, chosen.hasPrefix("\n\nHuman:") {
                let c = try dialogue(chosen), r = try dialogue(rejected)
                guard c.turns == r.turns else { throw DistillError.badInput("chosen and rejected differ before their last answer") }
                guard c.last != r.last else { throw DistillError.badInput("chosen and rejected answers are equal") }
                guard let ask = c.turns.last, ask.role == .user else { throw DistillError.badInput("the dialogue does not end with an answer to a question") }
                return Pair(id: id, instruction: ask.content, conversation: Array(c.turns.dropLast()), responseA: c.last,
                            responseB: r.last, label: .a)
            }
            guard let instruction else { throw DistillError.badInput("no instruction (instruction, prompt, question or input)") }
            return Pair(id: id, instruction: instruction, conversation: [], responseA: chosen, responseB: rejected, label: .a)
        }
        guard let instruction else { throw DistillError.badInput("no instruction (instruction, prompt, question or input)") }
        guard let a = text("response_a", "output_1", "answer_a"), let b = text("response_b", "output_2", "answer_b") else {
            throw DistillError.badInput("no chosen/rejected or response_a/response_b")
        }
        let raw = f["label"] ?? f["winner"] ?? f["preference"]
        let label: Label
        switch (raw?.string?.uppercased(), raw?.int) {
        case ("A", _), ("1", _), (_, 1?): label = .a
        case ("B", _), ("2", _), (_, 2?): label = .b
        case ("TIE", _), ("C", _), ("0", _), (_, 0?): label = .tie
        default: throw DistillError.badInput("label is not A, B, tie, 1, 2 or 0")
        }
        return Pair(id: id, instruction: instruction, conversation: [], responseA: a, responseB: b, label: label)
    }

    /// An HH-RLHF dialogue: its turns before the last answer, and that answer.
    static func dialogue(_ text: String) throws -> (turns: [Message], last: String) {
        var turns: [Message] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            let role: ChatRole
            if rest.hasPrefix("\n\nHuman:") {
                role = .user
                rest = rest.dropFirst(8)
            } else if rest.hasPrefix("\n\nAssistant:") {
                role = .assistant
                rest = rest.dropFirst(12)
            } else {
                throw DistillError.badInput("the dialogue is not of \\n\\nHuman: / \\n\\nAssistant: turns")
            }
            let next = [rest.range(of: "\n\nHuman:"), rest.range(of: "\n\nAssistant:")].compactMap { $0?.lowerBound }.min()
                ?? rest.endIndex
            turns.append(Message(role: role, content: rest[..<next].trimmingCharacters(in: .whitespacesAndNewlines)))
            rest = rest[next...]
        }
        guard let last = turns.last, last.role == .assistant, !last.content.isEmpty else {
            throw DistillError.badInput("the dialogue does not end with an assistant answer")
        }
        return (Array(turns.dropLast()), last.content)
    }

    /// The judge answer's opening sentence for `label`.
    public static func verdictSentence(_ label: Label) -> String { PromptBuilder.pairwisePrefix + label.rawValue + "]]" }

    /// The pair as judge samples in both orders (`<id>#ab` and `<id>#ba`: the verdict follows
    /// the responses), in `scenario`'s pairwise prompt. `explain` (a teacher) may add an
    /// explanation after the verdict; without one the answer is the verdict sentence.
    public static func samples(_ pair: Pair, scenario: Scenario,
                               explain: ((_ prompt: String, _ verdict: String) async throws -> String)? = nil) async throws
        -> [ExportSample.OpenAI]
    {
        var out: [ExportSample.OpenAI] = []
        for swapped in [false, true] {
            let input = JudgeInput(instruction: pair.instruction, conversation: pair.conversation,
                                   responseA: swapped ? pair.responseB : pair.responseA,
                                   responseB: swapped ? pair.responseA : pair.responseB)
            let prompt = PromptBuilder.build(mode: .pairwise, scenario: scenario, input: input).text
            let label: Label = pair.label == .tie ? .tie : (pair.label == .a) != swapped ? .a : .b
            var answer = verdictSentence(label)
            if let explain {
                let explanation = try await explain(prompt, answer).trimmingCharacters(in: .whitespacesAndNewlines)
                if !explanation.isEmpty { answer += "\n" + explanation }
            }
            let spans = Pipeline.spans(answer).map { ExportSample.Span(start: $0.range.lowerBound, end: $0.range.upperBound, kind: $0.kind) }
            out.append(ExportSample.OpenAI(
                messages: [.init(role: "user", content: prompt), .init(role: "assistant", content: answer)], spans: spans,
                metadata: .init(id: pair.id + (swapped ? "#ba" : "#ab"), scenario: scenario.id, mode: "pairwise",
                                augmentation: swapped ? "human label, swapped" : "human label")))
        }
        return out
    }
}
