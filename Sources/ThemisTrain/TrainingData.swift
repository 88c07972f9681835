import Foundation
import JSONLines
import ThemisDistill
import ThemisModel

/// The paper's multi-objective weighting: each answer token's loss is weighted by the kind of the
/// span it falls in (`score`: verdict, scores and headings; `explanation`: free text). The end of
/// the answer's turn counts as `score` (it is format).
public struct ObjectiveWeights: Codable, Sendable, Equatable {
    public var score: Float = 1
    public var explanation: Float = 1
    public init(score: Float = 1, explanation: Float = 1) {
        self.score = score
        self.explanation = explanation
    }
}

/// Training samples from the distillation's export (`openai.jsonl`: `messages`, `spans`,
/// `metadata`), tokenized with the model's chat template: the prompt as the judge sends it, the
/// answer as the model would generate it after the prompt, and the end of the answer's turn.
public enum TrainingData {
    /// A line that gives no sample, and why.
    public struct Skipped: Sendable, Codable, Equatable {
        public var line: Int
        public var id: String?
        public var reason: String
    }

    public struct Loaded: Sendable {
        public var samples: [TokenizedSample]
        public var skipped: [Skipped]
    }

    /// Reads and tokenizes every line of `path`; lines that cannot be trained on (malformed, no
    /// answer, no spans, longer than `maxTokens`) are skipped with their reason.
    public static func load(_ path: String, tokenizer: Tokenizer, template: ChatTemplate, weights: ObjectiveWeights,
                            maxTokens: Int) throws -> Loaded {
        guard FileManager.default.fileExists(atPath: path) else { throw TrainError.data("\(path) does not exist") }
        var loaded = Loaded(samples: [], skipped: [])
        for line in try JSONLReader.read(path, as: ExportSample.OpenAI.self) {
            switch line.value {
            case .failure(let error):
                loaded.skipped.append(Skipped(line: line.line, id: nil, reason: "\(error)"))
            case .success(let record):
                do {
                    loaded.samples.append(try sample(record, tokenizer: tokenizer, template: template, weights: weights,
                                                     maxTokens: maxTokens))
                } catch let error as TrainError {
                    if case .data(let reason) = error {
                        loaded.skipped.append(Skipped(line: line.line, id: record.metadata.id, reason: reason))
                    } else {
                        throw error
                    }
                }
            }
        }
        return loaded
    }

    /// One record as tokens with weighted targets; throws `TrainError.data` with the reason it
    /// cannot be trained on.
    public static func sample(_ record: ExportSample.OpenAI, tokenizer: Tokenizer, template: ChatTemplate,
                              weights: ObjectiveWeights, maxTokens: Int) throws -> TokenizedSample {
        guard let last = record.messages.last, last.role == "assistant", !last.content.isEmpty else {
            throw TrainError.data("no assistant answer at the end of the messages")
        }
        var prompt: [ChatMessage] = []
        for m in record.messages.dropLast() {
            guard let role = ChatRole(rawValue: m.role) else { throw TrainError.data("unknown role '\(m.role)'") }
            prompt.append(ChatMessage(role: role, content: m.content))
        }
        guard prompt.contains(where: { $0.role == .user }) else { throw TrainError.data("no user message before the answer") }
        guard !record.spans.isEmpty else { throw TrainError.data("no answer spans (score / explanation)") }
        let answer = last.content
        let utf16 = answer.utf16.count
        // UTF-16 offset -> UTF-8 byte offset of the answer
        var byteAt = [Int](repeating: 0, count: utf16 + 1)
        var u16 = 0, u8 = 0
        for scalar in answer.unicodeScalars {
            let n16 = scalar.utf16.count
            for j in 0..<n16 { byteAt[u16 + j] = u8 }
            u16 += n16
            u8 += scalar.utf8.count
        }
        byteAt[utf16] = u8
        var scoreBytes: [Range<Int>] = []
        for span in record.spans {
            guard span.start >= 0, span.start < span.end, span.end <= utf16 else {
                throw TrainError.data("span \(span.start)..<\(span.end) lies outside the answer of \(utf16) characters")
            }
            switch span.kind {
            case "score": scoreBytes.append(byteAt[span.start]..<byteAt[span.end])
            case "explanation": break
            default: throw TrainError.data("span kind '\(span.kind)' is neither score nor explanation")
            }
        }
        let promptIDs = template.tokens(prompt, tokenizer: tokenizer)
        let answerIDs = tokenizer.encodeContinuation(answer)
        // the end of the answer's turn: the template's text after the answer, up to its
        // end-of-generation token
        let full = template.renderPrompt(prompt + [ChatMessage(role: .assistant, content: answer)], addGenerationPrompt: false)
        var endIDs: [Int32] = []
        if let answerRange = full.contentRanges.last {
            let tail = tokenizer.encode(full.split(atByte: answerRange.upperBound).tail, addBOS: false)
            if let eog = tail.firstIndex(where: tokenizer.isEndOfGeneration) { endIDs = Array(tail[...eog]) }
        }
        if endIDs.isEmpty, let eos = tokenizer.eosID { endIDs = [eos] }
        let tokens = promptIDs + answerIDs + endIDs
        guard tokens.count <= maxTokens else {
            throw TrainError.data("\(tokens.count) tokens, longer than the training context of \(maxTokens)")
        }
        guard !answerIDs.isEmpty, !promptIDs.isEmpty else { throw TrainError.data("the answer gives no tokens") }
        var targets: [TokenizedSample.Target] = []
        var offset = 0
        for (i, id) in answerIDs.enumerated() {
            let length = tokenizer.tokenBytes(id, includeSpecial: true).count
            let bytes = offset..<max(offset + length, offset + 1)
            offset += length
            let weight = scoreBytes.contains(where: { $0.overlaps(bytes) }) ? weights.score : weights.explanation
            targets.append(.init(row: promptIDs.count + i - 1, weight: weight))
        }
        for j in endIDs.indices {
            targets.append(.init(row: promptIDs.count + answerIDs.count + j - 1, weight: weights.score))
        }
        targets.removeAll { $0.weight == 0 }
        guard !targets.isEmpty else { throw TrainError.data("no answer token has a loss weight above 0") }
        return TokenizedSample(id: record.metadata.id, tokens: tokens, targets: targets)
    }
}

/// The samples held aside for the evaluation loss, chosen by a hash of each sample's group (its
/// id up to a `#`: both orders of a pair are one group), so a group never straddles the split
/// and the same data always splits the same way.
public enum HeldAside {
    public static func split(_ samples: [TokenizedSample], fraction: Double) -> (train: [TokenizedSample], held: [TokenizedSample]) {
        var train: [TokenizedSample] = [], held: [TokenizedSample] = []
        for s in samples {
            let h = Checkpoint.fnv1a(Data(s.pair.utf8))
            if Double(h % 10_000) < fraction * 10_000 { held.append(s) } else { train.append(s) }
        }
        return (train, held)
    }
}
