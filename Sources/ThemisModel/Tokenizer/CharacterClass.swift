/// The Unicode classes the pre-tokenizer patterns test (`\p{L}`, `\p{N}`, `\p{P}`, `\s`), as a bit set per scalar.
///
/// `\s` is the White_Space property (what llama.cpp's tables and Python's `regex` use), independent of the
/// general category: U+00A0 is both a separator and whitespace.
struct CharacterClass: OptionSet, Sendable {
    let rawValue: UInt8

    static let letter = CharacterClass(rawValue: 1 << 0)
    static let number = CharacterClass(rawValue: 1 << 1)
    static let whitespace = CharacterClass(rawValue: 1 << 2)
    static let punctuation = CharacterClass(rawValue: 1 << 3)
    static let symbol = CharacterClass(rawValue: 1 << 4)

    /// `[\s\p{L}\p{N}]`: what GPT-2 style patterns exclude from their "other characters" run.
    static let wordOrSpace: CharacterClass = [.letter, .number, .whitespace]

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init(_ scalar: Unicode.Scalar) {
        if scalar.value < 128 {
            self = CharacterClass.ascii[Int(scalar.value)]
            return
        }
        var result: CharacterClass = scalar.properties.isWhitespace ? .whitespace : []
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            result.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            result.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            result.insert(.punctuation)
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            result.insert(.symbol)
        default:
            break
        }
        self = result
    }

    private static let ascii: [CharacterClass] = (0..<128).map { value in
        switch UInt8(value) {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"): return .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case 0x09...0x0D, 0x20: return .whitespace
        case UInt8(ascii: "$"), UInt8(ascii: "+"), UInt8(ascii: "<"), UInt8(ascii: "="), UInt8(ascii: ">"),
            UInt8(ascii: "^"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return .symbol
        case 0x21...0x7E: return .punctuation
        default: return []
        }
    }
}
