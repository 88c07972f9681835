import Foundation
import ThemisClient

/// Instruction-Following Difficulty (Cherry LLM, Li et al. 2023): how much the instruction helps
/// the model predict the answer.
///
/// `IFD(Q, A) = s(A | Q) / s(A)`, where `s` is the mean cross-entropy (negative log-probability
/// per token) of the answer's tokens. `s(A | Q)` scores the answer as the assistant turn after the
/// instruction, in the model's chat template; `s(A)` scores the same answer after only the start
/// token (BOS, or end-of-text for models without one; a server scores it as its completions
/// endpoint starts a text), i.e. without the instruction. IFD < 1: the instruction helps;
/// IFD >= 1: the answer does not follow from it (the paper and Cherry LLM drop those).
/// `perplexityRatio` gives `exp(s(A|Q)) / exp(s(A))` instead.
public struct IFDScorer: Sendable {
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

    public let client: any ModelClient
    public let metric: Metric

    public init(client: any ModelClient, metric: Metric = .crossEntropyRatio) throws {
        guard client.capabilities.continuationScoring else {
            throw DistillError.config("IFD needs a model that scores continuations; \(client.name) cannot (give a remote model its chat template)")
        }
        self.client = client
        self.metric = metric
    }

    public func score(instruction: String, answer: String) async throws -> Score {
        guard !answer.isEmpty else { throw DistillError.badInput("the answer is empty") }
        let conditioned = try await client.scoreContinuation(answer, after: .prompt(.user(instruction)))
        let unconditioned = try await client.scoreContinuation(answer, after: .start)
        let ifd: Double
        switch metric {
        case .crossEntropyRatio: ifd = conditioned.crossEntropy / unconditioned.crossEntropy
        case .perplexityRatio: ifd = Foundation.exp(conditioned.crossEntropy - unconditioned.crossEntropy)
        }
        return Score(conditioned: conditioned.crossEntropy, unconditioned: unconditioned.crossEntropy, ifd: ifd,
                     answerTokens: conditioned.logprobs.count)
    }
}
