/// Why a tokenizer could not be built from a model file.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// `tokenizer.ggml.model` names a tokenizer other than byte-level BPE (`gpt2`) and SentencePiece (`llama`).
    case unsupportedModel(String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer this engine does not implement.
    case unknownPreTokenizer(String)
    /// A required tokenizer key is missing or has the wrong type.
    case missingKey(String)
    /// The vocabulary is unusable (empty, duplicate entries, arrays of different lengths).
    case malformedVocabulary(String)

    /// A one-line message for users.
    public var description: String {
        switch self {
        case .unsupportedModel(let name):
            return "unsupported tokenizer model '\(name)' (supported: gpt2, byte-level BPE; llama, SentencePiece)"
        case .unknownPreTokenizer(let name):
            return "unknown pre-tokenizer '\(name)' (tokenizer.ggml.pre); supported: "
                + PreTokenizer.supportedNames.joined(separator: ", ")
        case .missingKey(let key):
            return "tokenizer metadata key '\(key)' is missing or has the wrong type"
        case .malformedVocabulary(let reason):
            return "malformed tokenizer vocabulary: \(reason)"
        }
    }
}
