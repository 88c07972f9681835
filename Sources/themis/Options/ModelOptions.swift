import ArgumentParser
import Foundation
import ThemisClient
import ThemisModel

/// `--model`, `--device`, `--ctx-size`, `--chat-template`, `--lora`: shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model: a name (smollm2-135m, qwen2.5-0.5b, gemma3-270m), a GGUF file, or an OpenAI-compatible server's base URL (http://host:port/v1; commands that can use one).")
    var model: String = "smollm2-135m"

    @Option(name: .long, help: "Device: auto, cpu, or vulkan[:N] (see `themis devices`).")
    var device: String = "auto"

    @Option(name: .customLong("ctx-size"), help: "Context length in tokens (default: the model's, at most 4096).")
    var contextSize: Int?

    @Flag(name: .customLong("exact-decode"),
          help: "CPU: keep activations in f32 instead of rounding them to 8 bits for quantised weights (slower; the Vulkan backend always does).")
    var exactDecode = false

    @Option(name: .customLong("chat-template"),
            help: "Chat template when the model's is not recognised: chatml, llama3, mistral, llama2, gemma, phi3, qwen3 (ChatML with thinking off). With a server URL: the served model's template (a kind, or a GGUF file to read it from), rendered here for exact label probabilities.")
    var chatTemplateSpec: String?

    @Option(name: .long, help: "A LoRA adapter (llama.cpp's GGUF adapter format, as themis train writes) applied to the model on the fly.")
    var lora: String?

    @Option(name: .customLong("lora-scale"), help: "Factor on the adapter's contribution (llama.cpp's --lora-scaled).")
    var loraScale: Float = 1

    /// `--lora` and `--lora-scale`, when an adapter is given.
    var loraOptions: LoRAOptions? { lora.map { LoRAOptions(path: $0, scale: loraScale) } }

    /// `--chat-template` as a template kind, when it names one.
    var chatTemplate: ChatTemplateKind? {
        get { chatTemplateSpec.flatMap(ChatTemplateKind.init(rawValue:)) }
        set { chatTemplateSpec = newValue?.rawValue }
    }

    func validate() throws {
        if let c = contextSize, c < 1 { throw ValidationError("--ctx-size must be at least 1") }
        if !loraScale.isFinite { throw ValidationError("--lora-scale must be a number") }
        if let t = chatTemplateSpec, chatTemplate == nil, !t.hasSuffix(".gguf") {
            throw ValidationError("--chat-template takes \(ChatTemplateKind.allCases.map(\.rawValue).joined(separator: ", ")), or a GGUF file to read the template from")
        }
    }

    /// The file `--model` names (a server URL is an error here: the command runs the model itself).
    func modelPath() throws -> String {
        switch try ModelLocation.resolve(model) {
        case .file(let path): return path
        case .remote: throw ValidationError("--model \(model): this command runs the model itself; give a name or a GGUF file")
        }
    }

    /// The chat template of `--chat-template` for rendering on this side (a kind, or a GGUF's).
    func clientTemplate() throws -> ChatTemplate? {
        guard let spec = chatTemplateSpec else { return nil }
        if let kind = ChatTemplateKind(rawValue: spec) { return ChatTemplate(kind: kind) }
        return try ChatTemplate(gguf: try GGUFFile(path: spec))
    }

    /// Loads the model on the chosen device.
    func load() throws -> LanguageModel {
        let path = try modelPath()
        let backend = try DeviceSelection.open(device, exactDecode: exactDecode)
        do {
            return try LanguageModel(path: path, backend: backend, contextLength: contextSize, chatTemplate: chatTemplate,
                                     lora: loraOptions)
        } catch let error where device == "auto" && backend.device.kind != .cpu && DeviceSelection.isDeviceFailure(error) {
            // the GPU `auto` chose cannot hold the model (memory, a lost device): the CPU can
            printError("themis: \(backend.device.id) cannot run the model (\(error)); running on the CPU")
            let cpu = try DeviceSelection.open("cpu", exactDecode: exactDecode)
            return try LanguageModel(path: path, backend: cpu, contextLength: contextSize, chatTemplate: chatTemplate,
                                     lora: loraOptions)
        }
    }
}

extension ChatTemplateKind: ExpressibleByArgument {}
extension LabelSource: ExpressibleByArgument {}

/// How to ask a model served elsewhere (`--model http://…/v1`).
struct RemoteOptions: ParsableArguments {
    @Option(name: .customLong("remote-model"), help: "With a server URL: the model name it serves (default: the first it lists).")
    var remoteModel: String?
    @Option(name: .customLong("api-key-env"), help: "With a server URL: the environment variable holding its API key.")
    var apiKeyEnv: String?
    @Option(help: "With a server URL: requests in flight at once.") var concurrency = 4
    @Option(name: .customLong("requests-per-second"), help: "With a server URL: requests started per second at most.")
    var requestsPerSecond: Double?
    @Option(name: .customLong("request-timeout"), help: "With a server URL: seconds for one attempt.") var requestTimeout = 120.0
    @Option(name: .customLong("max-attempts"), help: "With a server URL: attempts per request (retries on 429, 5xx, timeouts).")
    var maxAttempts = 5
    @Option(name: .customLong("answer-cache"), help: "With a server URL: a directory caching its answers by request.")
    var answerCache: String?
    @Option(name: .customLong("label-source"),
            help: "With a server URL: how verdict and scenario probabilities are asked for: exact (needs --chat-template; one completions request with echo per label), top_logprobs (one request per verdict: the first token's 20 alternatives; through the completions endpoint with --chat-template), sampled (a greedy answer, parsed). Default: exact with --chat-template, else top_logprobs, sampled if the server gives no log-probabilities.")
    var labelSource: LabelSource?

    func validate() throws {
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if maxAttempts < 1 { throw ValidationError("--max-attempts must be at least 1") }
        if requestTimeout <= 0 { throw ValidationError("--request-timeout must be > 0") }
        if let r = requestsPerSecond, r <= 0 { throw ValidationError("--requests-per-second must be > 0") }
    }
}

/// The model client `--model` names: a `LocalModel` on the chosen device, or an `OpenAIModel`.
func makeClient(_ model: ModelOptions, _ remote: RemoteOptions, local: LocalModelOptions) async throws -> any ModelClient {
    switch try ModelLocation.resolve(model.model) {
    case .remote(let base):
        return try await makeRemoteClient(base, model, remote)
    case .file:
        let loaded = try model.load()
        return try LocalModel(model: loaded, name: ModelLocation.displayName(model.model), options: local)
    }
}

/// The `OpenAIModel` of a server URL given to `--model`, with the remote options.
func makeRemoteClient(_ base: String, _ model: ModelOptions, _ remote: RemoteOptions) async throws -> OpenAIModel {
    if model.lora != nil { throw ValidationError("--lora applies to a model run here; a server applies its own adapters") }
    var o = OpenAIModelOptions(baseURL: base, model: remote.remoteModel ?? "")
    o.apiKeyEnv = remote.apiKeyEnv
    o.concurrency = remote.concurrency
    o.requestsPerSecond = remote.requestsPerSecond
    o.timeout = remote.requestTimeout
    o.maxAttempts = remote.maxAttempts
    o.cacheDirectory = remote.answerCache
    o.chatTemplate = try model.clientTemplate()
    o.contextLength = model.contextSize
    o.labelMethod = remote.labelSource
    if o.labelMethod == .exact && o.chatTemplate == nil {
        throw ValidationError("--label-source exact needs --chat-template (the served model's template, rendered here)")
    }
    if remote.remoteModel == nil {
        guard let first = try await OpenAIModel.servedModels(o).first else {
            throw ValidationError("--model \(base): the server lists no models; name one with --remote-model")
        }
        o.model = first
    }
    return try OpenAIModel(options: o)
}
