import Foundation
import ThemisModel

/// Who wrote a chat turn: the model layer's type, named here so that the layers above need not
/// import the model layer.
public typealias Role = ThemisModel.ChatRole

/// One chat turn (the model layer's `ChatMessage`).
public typealias Message = ThemisModel.ChatMessage

/// A prompt: chat turns, and the text the assistant's answer is forced to start with (the
/// judge's verdict prefix), which the model continues rather than answering anew.
public struct Prompt: Codable, Sendable, Hashable {
    public var messages: [Message]
    public var assistantPrefix: String

    public init(messages: [Message], assistantPrefix: String = "") {
        self.messages = messages
        self.assistantPrefix = assistantPrefix
    }

    /// One user message.
    public static func user(_ text: String, assistantPrefix: String = "") -> Prompt {
        Prompt(messages: [.user(text)], assistantPrefix: assistantPrefix)
    }
}

/// A chat completion to run. Equal requests are the same request (answer caches key on it).
public struct ChatRequest: Codable, Sendable, Hashable {
    public var prompt: Prompt
    public var maxTokens: Int
    /// 0: greedy.
    public var temperature: Double
    public var topP: Double
    public var seed: Int?
    public var stop: [String]
    /// Log-probabilities of each generated token with this many alternatives (0...20); nil: none.
    public var logprobs: Int?

    public init(prompt: Prompt, maxTokens: Int = 512, temperature: Double = 0.7, topP: Double = 0.95, seed: Int? = nil,
                stop: [String] = [], logprobs: Int? = nil) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stop = stop
        self.logprobs = logprobs
    }

    /// A single user message.
    public static func user(_ text: String, maxTokens: Int = 512, temperature: Double = 0.7, seed: Int? = nil) -> ChatRequest {
        ChatRequest(prompt: .user(text), maxTokens: maxTokens, temperature: temperature, seed: seed)
    }
}

/// A generated token's log-probability and the most likely alternatives at its position.
public struct TokenLogprob: Codable, Sendable, Equatable {
    public struct Alternative: Codable, Sendable, Equatable {
        public var token: String
        public var logprob: Double
        public init(token: String, logprob: Double) { self.token = token; self.logprob = logprob }
    }
    public var token: String
    public var logprob: Double
    public var top: [Alternative]

    public init(token: String, logprob: Double, top: [Alternative]) {
        self.token = token
        self.logprob = logprob
        self.top = top
    }
}

/// A chat completion's answer (the text after the assistant prefix).
public struct ChatReply: Codable, Sendable, Equatable {
    public var text: String
    /// `stop` (end of generation or a stop string) or `length`.
    public var finishReason: String
    public var promptTokens: Int
    public var completionTokens: Int
    /// The model that answered, as the client names it.
    public var model: String
    /// Per generated token, when asked for.
    public var logprobs: [TokenLogprob]?

    public init(text: String, finishReason: String, promptTokens: Int, completionTokens: Int, model: String,
                logprobs: [TokenLogprob]? = nil) {
        self.text = text
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.model = model
        self.logprobs = logprobs
    }
}

/// Which candidate continuations of a prompt are most likely (a verdict `4]]` after `[[`, a
/// scenario letter).
public struct LabelRequest: Codable, Sendable, Hashable {
    public var prompt: Prompt
    /// The continuations compared, each scored whole (all of its tokens).
    public var candidates: [String]

    public init(prompt: Prompt, candidates: [String]) {
        self.prompt = prompt
        self.candidates = candidates
    }
}

/// How label probabilities were obtained, best first.
public enum LabelSource: String, Codable, Sendable, CaseIterable {
    /// Every candidate's tokens scored after the prompt: `p(candidate | prompt)`, renormalised.
    case exact
    /// The first answer token's `top_logprobs` (at most 20), renormalised over the candidates
    /// found there; the others are listed as missing and get probability 0.
    case topLogprobs = "top_logprobs"
    /// No log-probabilities at all: the answer was sampled and the candidate it starts with gets
    /// probability 1.
    case sampled
}

/// The probability of each candidate, in the request's order.
public struct LabelProbabilities: Codable, Sendable, Equatable {
    public var probabilities: [Double]
    public var source: LabelSource
    /// Candidates the source could not see (`top_logprobs` only).
    public var missing: [String]
    public var promptTokens: Int
    /// Prompt tokens whose keys and values were reused from an earlier prompt (local models).
    public var reusedTokens: Int

    public init(probabilities: [Double], source: LabelSource, missing: [String] = [], promptTokens: Int, reusedTokens: Int = 0) {
        self.probabilities = probabilities
        self.source = source
        self.missing = missing
        self.promptTokens = promptTokens
        self.reusedTokens = reusedTokens
    }

    /// Softmax of summed log-probabilities.
    public static func normalised(_ logprobs: [Double]) -> [Double] {
        let top = logprobs.max() ?? 0
        guard top.isFinite else { return logprobs.map { _ in 1 / Double(max(logprobs.count, 1)) } }
        let weights = logprobs.map { Foundation.exp($0 - top) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }
}

/// What a continuation is scored after.
public enum ScoringContext: Codable, Sendable, Hashable {
    /// The chat prompt: the continuation is the assistant's answer.
    case prompt(Prompt)
    /// Only the model's start token (BOS, or end-of-text where there is none): the continuation
    /// on its own.
    case start
}

/// Per-token log-probabilities of a continuation.
public struct ContinuationScore: Codable, Sendable, Equatable {
    public var logprobs: [Double]
    public init(logprobs: [Double]) { self.logprobs = logprobs }
    /// Mean negative log-probability per token.
    public var crossEntropy: Double { -logprobs.reduce(0, +) / Double(max(logprobs.count, 1)) }
}

/// What a client can do; callers check before asking and say what is missing.
public struct Capabilities: Sendable, Equatable {
    /// The best label-probability source the client has.
    public var labels: LabelSource
    /// `scoreContinuation` works.
    public var continuationScoring: Bool
    /// `tokenCount` answers (needed to fit a prompt to the context by cutting a response).
    public var tokenCounts: Bool

    public init(labels: LabelSource, continuationScoring: Bool, tokenCounts: Bool) {
        self.labels = labels
        self.continuationScoring = continuationScoring
        self.tokenCounts = tokenCounts
    }
}

/// Why a client could not answer.
public enum ClientError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The request cannot be served by this client (a capability it lacks, a bad argument).
    case unsupported(String)
    /// The prompt does not fit the model's context.
    case tooLong(promptTokens: Int, context: Int)
    /// The server answered with an HTTP error that is not worth retrying (400, 401, 404, ...).
    case rejected(status: Int, message: String)
    /// Retries exhausted: the last failure (`HTTP 503: ...`, `timed out`, `malformed reply: ...`).
    case gaveUp(attempts: Int, last: String)
    /// The model is busy: too many requests wait (a local model's queue limit).
    case busy(waiting: Int)
    case shuttingDown
    /// The model failed (a local model's error, described).
    case model(String)
    /// The answer is not what was asked for (a sampled verdict that is none of the candidates).
    case badAnswer(String)
    /// The device running a local model failed (device lost, memory exhausted); the model
    /// cannot answer any more.
    case deviceFailed(String)
    /// The device running a local model has no memory left for this request (a new sequence's
    /// cache); later, or with fewer requests at once, it may.
    case outOfMemory(String)

    public var description: String {
        switch self {
        case .unsupported(let s): return s
        case .tooLong(let n, let c): return "the prompt has \(n) tokens but the context holds \(c)"
        case .rejected(let status, let message): return "HTTP \(status): \(message)"
        case .gaveUp(let attempts, let last): return "failed after \(attempts) attempts: \(last)"
        case .busy(let n): return "the model is busy: \(n) requests are waiting; retry later"
        case .shuttingDown: return "the model is shutting down"
        case .model(let s): return s
        case .badAnswer(let s): return s
        case .deviceFailed(let s): return "the model's device failed: \(s)"
        case .outOfMemory(let s): return "the model's device is out of memory: \(s)"
        }
    }
}

/// A model the judge, the distillation and the server can ask: a local GGUF (`LocalModel`) or
/// any OpenAI-compatible server (`OpenAIModel`). Every method may be called concurrently; a
/// local model decodes concurrent chats together.
public protocol ModelClient: Sendable {
    /// A short stable name, recorded with answers (`qwen2.5-0.5b`, `http://host/v1 judge`).
    var name: String { get }
    var capabilities: Capabilities { get }
    /// The context length in tokens, when known.
    var contextLength: Int? { get }

    func chat(_ request: ChatRequest) async throws -> ChatReply
    /// The candidates' probabilities right after the prompt (its assistant prefix included).
    func labelProbabilities(_ request: LabelRequest) async throws -> LabelProbabilities
    /// Per-token log-probabilities of `continuation` after `context`.
    func scoreContinuation(_ continuation: String, after context: ScoringContext) async throws -> ContinuationScore
    /// Tokens of `text` on its own; nil when the client cannot tell.
    func tokenCount(_ text: String) async throws -> Int?
    /// Tokens of the whole prompt as the model sees it; nil when the client cannot tell.
    func promptTokenCount(_ prompt: Prompt) async throws -> Int?
}

extension ModelClient {
    /// Several chats at once; a local model decodes them together, a remote one sends them in
    /// parallel within its concurrency limit. Results are in request order.
    public func chat(batch requests: [ChatRequest]) async -> [Result<ChatReply, any Error>] {
        await withTaskGroup(of: (Int, Result<ChatReply, any Error>).self) { group in
            for (i, request) in requests.enumerated() {
                group.addTask {
                    do { return (i, .success(try await self.chat(request))) } catch { return (i, .failure(error)) }
                }
            }
            var out = [Result<ChatReply, any Error>?](repeating: nil, count: requests.count)
            for await (i, result) in group { out[i] = result }
            return out.map { $0! }
        }
    }
}

/// The sampler's seeded generator (xoshiro256**), for layers above that draw reproducible numbers
/// (the distillation's selection) without importing the model layer.
public typealias SeededGenerator = ThemisModel.SeededGenerator
