import ArgumentParser
import Foundation
import ThemisModel

/// `--model`, `--device`, `--ctx-size`, `--chat-template`: shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model name (smollm2-135m, qwen2.5-0.5b) or path to a GGUF file.")
    var model: String = "smollm2-135m"

    @Option(name: .long, help: "Device: auto, cpu, or vulkan[:N] (see `themis devices`).")
    var device: String = "auto"

    @Option(name: .customLong("ctx-size"), help: "Context length in tokens (default: the model's, at most 4096).")
    var contextSize: Int?

    @Flag(name: .customLong("exact-decode"),
          help: "CPU: keep one-token activations in f32 instead of rounding them to 8 bits (slower; the Vulkan backend always does).")
    var exactDecode = false

    @Option(name: .customLong("chat-template"), help: "Chat template when the model's is not recognised: chatml, llama3, mistral.")
    var chatTemplate: ChatTemplateKind?

    func validate() throws {
        if let c = contextSize, c < 1 { throw ValidationError("--ctx-size must be at least 1") }
    }

    /// The known short names and their files in the model store.
    static let knownModels: [String: String] = [
        "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "qwen2.5-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ]

    /// The model store: `$THEMIS_MODELS`, else `~/.cache/themis/models`.
    static var modelStore: String {
        if let dir = ProcessInfo.processInfo.environment["THEMIS_MODELS"], !dir.isEmpty { return dir }
        return NSHomeDirectory() + "/.cache/themis/models"
    }

    /// The file `--model` names.
    func modelPath() throws -> String {
        if let file = Self.knownModels[model] {
            let path = Self.modelStore + "/" + file
            guard FileManager.default.fileExists(atPath: path) else {
                throw ModelError.unknownModel("model '\(model)' is not in \(Self.modelStore); run scripts/fetch-models \(model)")
            }
            return path
        }
        return model
    }

    /// Loads the model on the chosen device.
    func load() throws -> LanguageModel {
        let path = try modelPath()
        let backend = try DeviceSelection.open(device, exactDecode: exactDecode)
        return try LanguageModel(path: path, backend: backend, contextLength: contextSize, chatTemplate: chatTemplate)
    }
}

extension ChatTemplateKind: ExpressibleByArgument {}
