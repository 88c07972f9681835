/// Turns token ids, fed one at a time, into text without ever emitting part of a UTF-8 character.
///
/// Bytes that may still become a character when the next token arrives are held back; everything else is emitted
/// at once. The concatenation of all `append` results and `finish()` equals `Tokenizer.decode` of the same ids.
public struct StreamingDecoder: Sendable {
    /// The tokenizer whose pieces are decoded.
    public let tokenizer: Tokenizer
    /// Whether control tokens render as their spelling.
    public let includeSpecial: Bool
    private var pending: [UInt8] = []

    /// A decoder with nothing held back.
    public init(tokenizer: Tokenizer, includeSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.includeSpecial = includeSpecial
    }

    /// Adds one token and returns the text it completes (often empty when a character spans tokens).
    public mutating func append(_ id: Int32) -> String {
        tokenizer.appendBytes(of: id, includeSpecial: includeSpecial, to: &pending)
        let cut = pending.count - StreamingDecoder.incompleteSuffixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Returns whatever is held back, with an unfinished character as U+FFFD, and resets the decoder.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the tail of `bytes` that is the valid start of a multi-byte character still missing bytes.
    ///
    /// Cutting before a lead byte never changes how the bytes before it decode, because no lead byte can
    /// continue an earlier sequence; so holding back exactly this tail keeps streaming equal to one-shot decoding.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        var continuationCount = 0
        var index = bytes.count - 1
        while index >= 0 && continuationCount < 3 {
            let byte = bytes[index]
            if byte & 0xC0 == 0x80 {
                continuationCount += 1
                index -= 1
                continue
            }
            let expected: Int
            switch byte {
            case 0xC2...0xDF: expected = 2
            case 0xE0...0xEF: expected = 3
            case 0xF0...0xF4: expected = 4
            default: return 0
            }
            guard continuationCount + 1 < expected else { return 0 }
            // The second byte of some lead bytes has a narrower range (no overlongs, surrogates, or > U+10FFFF).
            if continuationCount >= 1 {
                let second = bytes[index + 1]
                let valid: Bool
                switch byte {
                case 0xE0: valid = second >= 0xA0
                case 0xED: valid = second <= 0x9F
                case 0xF0: valid = second >= 0x90
                case 0xF4: valid = second <= 0x8F
                default: valid = true
                }
                guard valid else { return 0 }
            }
            return continuationCount + 1
        }
        return 0
    }
}
