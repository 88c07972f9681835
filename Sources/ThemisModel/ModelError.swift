/// Why a model could not be loaded or run.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(String)
    case badHyperParameter(String)
    case contextOverflow(tokens: Int, context: Int)
    case emptyPrompt
    case invalidSampling(String)
    case unknownModel(String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a): return "unsupported model architecture '\(a)' (supported: llama, qwen2)"
        case .badHyperParameter(let s): return "invalid model hyper-parameter: \(s)"
        case .contextOverflow(let t, let c):
            return "prompt of \(t) tokens does not fit the context of \(c) tokens (use --ctx-size or a shorter prompt)"
        case .emptyPrompt: return "the prompt is empty"
        case .invalidSampling(let s): return "invalid sampling setting: \(s)"
        case .unknownModel(let s): return s
        }
    }
}
