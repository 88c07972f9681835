import ArgumentParser
import Foundation
import ThemisModel

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model with a LoRA adapter folded into its weights (a GGUF llama.cpp and themis load like any other).")

    @Option(name: .long, help: "Base model: a name (smollm2-135m, qwen2.5-0.5b, gemma3-270m) or a GGUF file.")
    var model: String = "smollm2-135m"
    @Option(name: .long, help: "The LoRA adapter (llama.cpp's GGUF adapter format).") var lora: String
    @Option(name: .customLong("lora-scale"), help: "Factor on the adapter's contribution.") var loraScale: Float = 1
    @Option(name: .long, help: "The merged GGUF to write.") var output: String
    @Option(name: .long, help: "Storage of the adapted weights: f32 (exact) or f16; other tensors keep theirs.")
    var type: GGUFWriter.FloatType = .f32

    func validate() throws {
        if !loraScale.isFinite { throw ValidationError("--lora-scale must be a number") }
    }

    func run() throws {
        reportingErrors {
            var options = ModelOptions()
            options.model = model
            let file = try GGUFFile(path: try options.modelPath())
            let config = try ModelConfig(file: file)
            let adapter = try LoRAAdapterFile(path: lora, config: config)
            let progress = Progress(total: file.tensors.count)
            try LoRAMerge.merge(model: file, adapter: adapter, scale: loraScale, type: type, to: output) { _, _ in progress.step() }
            progress.finish()
            printError("themis: merged \(adapter.entries.count) adapted weights into \(output)")
        }
    }
}

extension GGUFWriter.FloatType: ExpressibleByArgument {}
