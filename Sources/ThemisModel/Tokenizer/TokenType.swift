/// The kind of a vocabulary entry, as stored in `tokenizer.ggml.token_type`.
public enum TokenType: Int, Sendable, CaseIterable {
    /// No or an unknown type value; renders as nothing.
    case undefined = 0
    /// Ordinary byte-level BPE entries.
    case normal = 1
    /// The unknown-token placeholder; rendered only when special tokens are asked for.
    case unknown = 2
    /// Structural markers such as `<|im_start|>`; rendered only when special tokens are asked for.
    case control = 3
    /// Added tokens that are always matched as a whole and always rendered as text.
    case userDefined = 4
    /// Reserved padding entries; render as nothing.
    case unused = 5
    /// Byte-fallback entries spelled `<0xNN>`.
    case byte = 6
}
