import Foundation

/// One chat turn of a generation request.
public struct PromptMessage: Codable, Sendable, Hashable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// What a generator is asked for; equal requests are the same request (the answer cache keys on it).
public struct GenerationSpec: Codable, Sendable, Hashable {
    public var messages: [PromptMessage]
    public var maxTokens: Int
    public var temperature: Double
    public var topP: Double
    public var seed: Int?
    public var stop: [String]

    public init(messages: [PromptMessage], maxTokens: Int = 512, temperature: Double = 0.7, topP: Double = 0.95,
                seed: Int? = nil, stop: [String] = []) {
        self.messages = messages
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stop = stop
    }

    /// A single user message.
    public static func user(_ text: String, maxTokens: Int = 512, temperature: Double = 0.7, seed: Int? = nil) -> GenerationSpec {
        GenerationSpec(messages: [PromptMessage(role: "user", content: text)], maxTokens: maxTokens, temperature: temperature, seed: seed)
    }
}

/// A generator's answer.
public struct GeneratedText: Codable, Sendable, Equatable {
    public var text: String
    /// `stop` (end of generation or a stop string) or `length`.
    public var finishReason: String
    public var promptTokens: Int
    public var completionTokens: Int
    /// The model that answered, as the generator names it.
    public var model: String

    public init(text: String, finishReason: String, promptTokens: Int, completionTokens: Int, model: String) {
        self.text = text
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.model = model
    }
}

/// Why a generation failed, after any retries.
public enum GeneratorError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The endpoint answered with an HTTP error that is not worth retrying (400, 401, 404, ...).
    case rejected(status: Int, message: String)
    /// Retries exhausted: the last failure (`HTTP 503: ...`, `timed out`, `malformed JSON: ...`).
    case gaveUp(attempts: Int, last: String)
    case local(String)

    public var description: String {
        switch self {
        case .rejected(let status, let message): return "HTTP \(status): \(message)"
        case .gaveUp(let attempts, let last): return "failed after \(attempts) attempts: \(last)"
        case .local(let s): return s
        }
    }
}

/// Something that writes text for prompts: a local model or an OpenAI-compatible endpoint. The
/// distillation stages see only this.
public protocol TextGenerator: Sendable {
    /// A short stable name, recorded with every answer (`smollm2-135m`, `http://host/v1 qwen`).
    var name: String { get }
    func generate(_ spec: GenerationSpec) async throws -> GeneratedText
}
