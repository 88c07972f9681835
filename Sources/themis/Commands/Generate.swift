import ArgumentParser
import Foundation
import ThemisClient
import ThemisModel

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt or a chat message.",
        discussion: "With --model http://host:port/v1 the server generates: --chat goes to its chat endpoint, --prompt to its completions endpoint; temperature, top-p, seed and stop strings are sent, the other sampling options apply to local models only, and the text is printed when it is complete.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(help: "Raw prompt text (special tokens are not parsed).") var prompt: String?
    @Option(help: "A user message, formatted with the model's chat template.") var chat: String?
    @Option(help: "System prompt for --chat (default: the template's own).") var system: String?
    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.") var maxTokens: Int = 256
    @Option(name: .customLong("stop"), help: "A stop string (repeatable).") var stops: [String] = []
    @Flag(help: "Print one JSON object instead of streaming text.") var json = false

    func validate() throws {
        if (prompt == nil) == (chat == nil) { throw ValidationError("give exactly one of --prompt and --chat") }
        if system != nil && chat == nil { throw ValidationError("--system needs --chat") }
        if maxTokens < 0 { throw ValidationError("--max-tokens must be >= 0") }
    }

    func run() async throws {
        await reportingErrors {
            try sampling.parameters.validate()
            if case .remote(let base) = try ModelLocation.resolve(modelOptions.model) {
                let client = try await makeRemoteClient(base, modelOptions, remote)
                do { try await generateRemotely(client) } catch { try? await client.shutdown(); throw error }
                try? await client.shutdown()
                return
            }
            let model = try modelOptions.load()
            let ids: [Int32]
            if let messages = chatMessages {
                ids = try model.chatTemplate().tokens(messages, tokenizer: model.tokenizer)
            } else {
                ids = model.tokenizer.encode(prompt!, parseSpecial: false)
            }
            let session = try model.makeSession()
            let out = FileHandle.standardOutput
            let result = try session.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling.parameters,
                                              stop: stops) { piece in
                if !json { out.write(Data(piece.utf8)) }
            }
            if json {
                let object: [String: Any] = [
                    "text": result.text,
                    "token_ids": result.tokenIDs.map { Int($0) },
                    "prompt_tokens": result.promptTokens,
                    "generated_tokens": result.tokenIDs.count,
                    "stop_reason": result.stopReason.rawValue,
                    "prefill_tokens_per_second": result.prefillTokensPerSecond,
                    "tokens_per_second": result.decodeTokensPerSecond,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                out.write(data + Data("\n".utf8))
            } else {
                out.write(Data("\n".utf8))
            }
        }
    }

    /// `--chat` (after `--system`) as chat turns; nil for `--prompt`.
    var chatMessages: [ChatMessage]? {
        guard let chat else { return nil }
        return (system.map { [ChatMessage(role: .system, content: $0)] } ?? []) + [ChatMessage(role: .user, content: chat)]
    }

    /// The server generates; the reply is printed as local generation prints it.
    func generateRemotely(_ client: OpenAIModel) async throws {
        let p = sampling.parameters
        let seed = p.seed.map { Int(truncatingIfNeeded: $0) }
        let reply: ChatReply
        if let messages = chatMessages {
            reply = try await client.chat(ChatRequest(prompt: Prompt(messages: messages), maxTokens: maxTokens,
                                                      temperature: Double(p.temperature), topP: Double(p.topP), seed: seed, stop: stops))
        } else {
            reply = try await client.complete(prompt!, maxTokens: maxTokens, temperature: Double(p.temperature), topP: Double(p.topP),
                                              seed: seed, stop: stops)
        }
        let out = FileHandle.standardOutput
        if json {
            let object: [String: Any] = [
                "text": reply.text,
                "model": reply.model,
                "prompt_tokens": reply.promptTokens,
                "generated_tokens": reply.completionTokens,
                "stop_reason": reply.finishReason,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            out.write(data + Data("\n".utf8))
        } else {
            out.write(Data((reply.text + "\n").utf8))
        }
    }
}
