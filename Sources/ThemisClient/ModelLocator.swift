import Foundation

/// Where a model named on the command line or in a configuration is: a short name in the model
/// store, a GGUF file, or an OpenAI-compatible server.
public enum ModelLocation: Sendable, Equatable {
    case file(path: String)
    case remote(baseURL: String)

    /// The known short names and their files in the model store.
    public static let knownModels: [String: String] = [
        "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "qwen2.5-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "gemma3-270m": "gemma-3-270m-q4_k_m.gguf",
    ]

    /// The model store: `$THEMIS_MODELS`, else `~/.cache/themis/models`.
    public static var modelStore: String {
        if let dir = ProcessInfo.processInfo.environment["THEMIS_MODELS"], !dir.isEmpty { return dir }
        return NSHomeDirectory() + "/.cache/themis/models"
    }

    /// Resolves `spec`: `http(s)://…` is a server (its base URL, up to `/v1`), a known short name
    /// a file in the store (which must be there), anything else a path.
    public static func resolve(_ spec: String) throws -> ModelLocation {
        let lower = spec.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            var base = spec
            while base.hasSuffix("/") { base.removeLast() }
            guard URL(string: base)?.host != nil else { throw ClientError.unsupported("'\(spec)' is not a URL") }
            return .remote(baseURL: base)
        }
        if let file = knownModels[spec] {
            let path = modelStore + "/" + file
            guard FileManager.default.fileExists(atPath: path) else {
                throw ClientError.unsupported("model '\(spec)' is not in \(modelStore); run scripts/fetch-models \(spec)")
            }
            return .file(path: path)
        }
        return .file(path: spec)
    }

    /// A short name for reports and file names: the short name, the file's name without `.gguf`,
    /// or the server's host.
    public static func displayName(_ spec: String) -> String {
        if spec.lowercased().hasPrefix("http"), let host = URL(string: spec)?.host { return host }
        var name = URL(fileURLWithPath: spec).lastPathComponent
        if name.hasSuffix(".gguf") { name.removeLast(5) }
        return name
    }
}
