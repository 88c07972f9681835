/// Why a model could not be loaded or run.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(String)
    case badHyperParameter(String)
    case contextOverflow(tokens: Int, context: Int)
    case emptyPrompt
    case invalidSampling(String)
    case unknownModel(String)
    /// One sequence's KV cache for `tokens` would take `bytes` (nil: more than an `Int` holds).
    case contextTooLarge(tokens: Int, bytes: Int?, available: UInt64)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a):
            return "unsupported model architecture '\(a)' (supported: \(Architectures.names.joined(separator: ", ")))"
        case .badHyperParameter(let s): return "invalid model hyper-parameter: \(s)"
        case .contextOverflow(let t, let c):
            return "prompt of \(t) tokens does not fit the context of \(c) tokens (use --ctx-size or a shorter prompt)"
        case .emptyPrompt: return "the prompt is empty"
        case .invalidSampling(let s): return "invalid sampling setting: \(s)"
        case .unknownModel(let s): return s
        case .contextTooLarge(let t, let b, let a):
            let need = b.map { "\($0 >> 20) MiB" } ?? "more memory than can be addressed"
            return "a context of \(t) tokens needs \(need) of KV cache; the device has \(a >> 20) MiB"
        }
    }
}
