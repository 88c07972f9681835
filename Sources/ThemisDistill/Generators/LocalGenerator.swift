import Foundation
import ThemisModel

/// A generator on a local model through the Backend protocol. Generations run one at a time on
/// a thread of their own (the model is not shared between concurrent passes).
public final class LocalGenerator: TextGenerator, @unchecked Sendable {
    public let name: String
    public let model: LanguageModel
    private let session: Session
    private let template: ChatTemplate
    private let queue = DispatchQueue(label: "themis.local-generator")

    public init(model: LanguageModel, name: String) throws {
        self.model = model
        self.name = name
        session = try model.makeSession()
        template = try model.chatTemplate()
    }

    public func generate(_ spec: GenerationSpec) async throws -> GeneratedText {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                continuation.resume(with: Result { try generateNow(spec) })
            }
        }
    }

    func generateNow(_ spec: GenerationSpec) throws -> GeneratedText {
        var messages: [ChatMessage] = []
        for m in spec.messages {
            guard let role = ChatRole(rawValue: m.role) else { throw GeneratorError.local("unknown role '\(m.role)'") }
            messages.append(ChatMessage(role: role, content: m.content))
        }
        let prompt = model.tokenizer.encode(template.renderPrompt(messages), addBOS: template.rendersBOS ? false : nil)
        var sampling = SamplingParameters()
        sampling.temperature = Float(spec.temperature)
        sampling.topP = Float(spec.topP)
        sampling.topK = 0
        sampling.minP = 0
        sampling.seed = spec.seed.map { UInt64(bitPattern: Int64($0)) }
        let budget = min(spec.maxTokens, max(0, session.contextLength - prompt.count - 1))
        let result = try session.generate(prompt: prompt, maxTokens: budget, sampling: sampling, stop: spec.stop)
        let finish = result.stopReason == .maxTokens || result.stopReason == .contextFull ? "length" : "stop"
        return GeneratedText(text: result.text, finishReason: finish, promptTokens: prompt.count,
                             completionTokens: result.tokenIDs.count, model: name)
    }
}
