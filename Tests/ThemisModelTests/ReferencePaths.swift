import Foundation

/// Where the shared reference data and the model files are.
enum ReferencePaths {
    /// The package root (three levels above this file).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// `../shared` beside the checkout.
    static let shared = root.deletingLastPathComponent().appendingPathComponent("shared")

    static let modelFiles = [
        "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "qwen2.5-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ]

    /// The path of a default model; fails the test with a clear message when it is missing.
    static func model(_ name: String) throws -> String {
        let dir = ProcessInfo.processInfo.environment["THEMIS_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSHomeDirectory() + "/.cache/themis/models"
        let path = dir + "/" + modelFiles[name]!
        guard FileManager.default.fileExists(atPath: path) else {
            throw MissingModel(path: path)
        }
        return path
    }

    struct MissingModel: Error, CustomStringConvertible {
        let path: String
        var description: String { "model file \(path) is missing: run scripts/fetch-models (make test does)" }
    }
}
