/// Why a judgement or a judge run failed.
public enum JudgeError: Error, CustomStringConvertible, Equatable, Sendable {
    case badCatalogue(String)
    case badRecord(String)
    case tooLong(promptTokens: Int, context: Int)
    /// A setting of the run that cannot work (a shard outside its count).
    case invalid(String)

    public var description: String {
        switch self {
        case .badCatalogue(let m): return m
        case .badRecord(let m): return m
        case .invalid(let m): return m
        case .tooLong(let tokens, let context):
            return "the prompt needs \(tokens) tokens but the context holds \(context)"
        }
    }
}
