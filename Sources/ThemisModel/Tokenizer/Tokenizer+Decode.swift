extension Tokenizer {
    /// The text of `ids`; invalid UTF-8 (a character cut off at either end) becomes U+FFFD.
    ///
    /// Control and unknown tokens render as their spelling only when `includeSpecial`; user-defined tokens
    /// always do; out-of-range ids render as nothing.
    public func decode(_ ids: [Int32], includeSpecial: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids { appendBytes(of: id, includeSpecial: includeSpecial, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The raw bytes token `id` stands for (possibly part of a UTF-8 character), with the same rules as `decode`.
    public func tokenBytes(_ id: Int32, includeSpecial: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = []
        appendBytes(of: id, includeSpecial: includeSpecial, to: &bytes)
        return bytes
    }

    func appendBytes(of id: Int32, includeSpecial: Bool, to bytes: inout [UInt8]) {
        guard id >= 0, Int(id) < vocabularySize else { return }
        if !includeSpecial {
            switch types[Int(id)] {
            case .control, .unknown: return
            default: break
            }
        }
        bytes.append(contentsOf: pieceBytes[Int(pieceOffsets[Int(id)])..<Int(pieceOffsets[Int(id) + 1])])
    }

    /// A decoder for generated tokens that yields text as soon as it is complete UTF-8.
    public func makeStreamingDecoder(includeSpecial: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, includeSpecial: includeSpecial)
    }
}
