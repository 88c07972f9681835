import Foundation
import ThemisModel

/// Instruction-Following Difficulty (Cherry LLM, Li et al. 2023): how much the instruction helps
/// the model predict the answer.
///
/// `IFD(Q, A) = s(A | Q) / s(A)`, where `s` is the mean cross-entropy (negative log-probability
/// per token) of the answer's tokens. `s(A | Q)` scores the answer as the assistant turn after the
/// instruction, in the model's chat template; `s(A)` scores the same answer tokens after only the
/// start token (BOS, or end-of-text for models without one), i.e. without the instruction. IFD < 1:
/// the instruction helps; IFD >= 1: the answer does not follow from it (the paper and Cherry LLM
/// drop those). `perplexityRatio` gives `exp(s(A|Q)) / exp(s(A))` instead.
public final class IFDScorer {
    public enum Metric: String, Sendable, CaseIterable {
        case crossEntropyRatio = "ce-ratio"
        case perplexityRatio = "ppl-ratio"
    }

    /// One scored record.
    public struct Score: Sendable, Equatable {
        public var conditioned: Double
        public var unconditioned: Double
        public var ifd: Double
        public var answerTokens: Int
    }

    public let model: LanguageModel
    public let metric: Metric
    private let session: Session
    private let template: ChatTemplate

    public init(model: LanguageModel, metric: Metric = .crossEntropyRatio) throws {
        self.model = model
        self.metric = metric
        session = try model.makeSession()
        template = try model.chatTemplate()
    }

    /// The prompt tokens that precede the answer when conditioned on `instruction`.
    public func conditionedPrefix(_ instruction: String) -> [Int32] {
        model.tokenizer.encode(template.renderPrompt([ChatMessage(role: .user, content: instruction)]),
                               addBOS: template.rendersBOS ? false : nil)
    }

    /// The single start token the unconditioned answer follows.
    public var startToken: [Int32] {
        let t = model.tokenizer
        return [t.bosID ?? t.eosID ?? 0]
    }

    public func answerTokens(_ answer: String) -> [Int32] {
        model.tokenizer.encode(answer, parseSpecial: false, addBOS: false)
    }

    public func score(instruction: String, answer: String) throws -> Score {
        let tokens = answerTokens(answer)
        guard !tokens.isEmpty else { throw DistillError.badInput("the answer is empty") }
        let conditioned = -Self.mean(try session.logProbabilities(prefix: conditionedPrefix(instruction), continuation: tokens))
        let unconditioned = -Self.mean(try session.logProbabilities(prefix: startToken, continuation: tokens))
        let ifd: Double
        switch metric {
        case .crossEntropyRatio: ifd = conditioned / unconditioned
        case .perplexityRatio: ifd = Foundation.exp(conditioned - unconditioned)
        }
        return Score(conditioned: conditioned, unconditioned: unconditioned, ifd: ifd, answerTokens: tokens.count)
    }

    static func mean(_ values: [Float]) -> Double {
        values.reduce(0.0) { $0 + Double($1) } / Double(max(values.count, 1))
    }
}
