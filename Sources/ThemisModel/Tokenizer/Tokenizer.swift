/// A byte-level BPE tokenizer (GPT-2 style) built from a GGUF file's `tokenizer.ggml.*` metadata.
///
/// It reproduces llama.cpp's tokenization: the special-token partition, the pre-tokenizer named by
/// `tokenizer.ggml.pre`, and BPE merges applied lowest rank first. Immutable after `init`, so one instance can be
/// shared by any number of threads.
public final class Tokenizer: Sendable {
    /// The name in `tokenizer.ggml.pre` (or "default" when the file has none).
    public let preTokenizerName: String
    /// Number of vocabulary entries; valid token ids are `0..<vocabularySize`.
    public let vocabularySize: Int
    /// Beginning-of-sequence token, if the file names one.
    public let bosID: Int32?
    /// End-of-sequence token, if the file names one.
    public let eosID: Int32?
    /// Unknown-token id, if the file names one.
    public let unknownID: Int32?
    /// Padding token, if the file names one.
    public let paddingID: Int32?
    /// Whether `encode` prepends BOS when not told otherwise (`tokenizer.ggml.add_bos_token`).
    public let addsBOS: Bool
    /// Every token that ends a generation: EOS plus end-of-turn markers such as `<|im_end|>`, `<|eot_id|>`
    /// and `<|endoftext|>` (the same set llama.cpp uses).
    public let endOfGenerationIDs: Set<Int32>

    /// Vocabulary spellings (byte-level encoded), by id.
    let tokens: [String]
    let types: [TokenType]
    let idForToken: [String: Int32]
    /// Strings that occur in merges but are not vocabulary entries; their symbol ids follow the vocabulary's.
    let extraSymbols: [String]
    /// Merge rules keyed by `mergeKey(left, right)` of symbol ids.
    let merges: [UInt64: MergeRule]
    /// Symbol id of each single byte.
    let byteSymbols: [Int32]
    let preTokenizer: PreTokenizer
    /// Tokens matched as a whole before BPE, longest first.
    let specialTokens: [SpecialToken]
    /// Bytes each token renders to (control tokens as their text); token `i` owns
    /// `pieceBytes[pieceOffsets[i]..<pieceOffsets[i + 1]]`.
    let pieceBytes: [UInt8]
    let pieceOffsets: [Int32]

    struct MergeRule: Sendable {
        let rank: Int32
        let result: Int32
    }

    struct SpecialToken: Sendable {
        let bytes: [UInt8]
        let id: Int32
        /// Control and unknown tokens are matched only when special tokens are parsed; user-defined ones always.
        let needsParseSpecial: Bool
    }

    /// Builds the tokenizer of `gguf`; throws `TokenizerError` when it is not byte-level BPE, names an unknown
    /// pre-tokenizer, or lacks the vocabulary or merges.
    public init(gguf: GGUFFile) throws {
        let metadata = gguf.metadata
        guard let model = metadata["tokenizer.ggml.model"]?.string else {
            throw TokenizerError.missingKey("tokenizer.ggml.model")
        }
        guard model == "gpt2" else { throw TokenizerError.unsupportedModel(model) }
        let preName = metadata["tokenizer.ggml.pre"]?.string ?? "default"
        guard let preTokenizer = PreTokenizer(name: preName) else {
            throw TokenizerError.unknownPreTokenizer(preName)
        }
        guard let tokenValues = metadata["tokenizer.ggml.tokens"]?.array else {
            throw TokenizerError.missingKey("tokenizer.ggml.tokens")
        }
        guard let mergeValues = metadata["tokenizer.ggml.merges"]?.array else {
            throw TokenizerError.missingKey("tokenizer.ggml.merges")
        }
        guard !tokenValues.isEmpty, tokenValues.count < Int(Int32.max) / 2 else {
            throw TokenizerError.malformedVocabulary("\(tokenValues.count) tokens")
        }
        let count = tokenValues.count

        var tokens: [String] = []
        tokens.reserveCapacity(count)
        var idForToken: [String: Int32] = [:]
        idForToken.reserveCapacity(count)
        for (index, value) in tokenValues.enumerated() {
            guard var text = value.string else { throw TokenizerError.missingKey("tokenizer.ggml.tokens") }
            // llama.cpp's spelling for empty entries, so they stay distinct.
            if text.isEmpty { text = "[EMPTY_\(index)]" }
            guard idForToken.updateValue(Int32(index), forKey: text) == nil else {
                throw TokenizerError.malformedVocabulary("duplicate token '\(text)'")
            }
            tokens.append(text)
        }

        var types = [TokenType](repeating: .normal, count: count)
        if let typeValues = metadata["tokenizer.ggml.token_type"]?.array {
            guard typeValues.count >= count else {
                throw TokenizerError.malformedVocabulary("\(typeValues.count) token types for \(count) tokens")
            }
            for index in 0..<count {
                types[index] = typeValues[index].int.flatMap(TokenType.init(rawValue:)) ?? .undefined
            }
        }

        // A special token id the file names must be a token: an id outside the vocabulary would
        // be fed to the model or never recognised as the end of a generation.
        func specialID(_ key: String) throws -> Int32? {
            guard let raw = metadata["tokenizer.ggml.\(key)"] else { return nil }
            guard let value = raw.int, value >= 0, value < count else {
                throw TokenizerError.malformedVocabulary("tokenizer.ggml.\(key) is \(raw.int.map(String.init) ?? "not an integer"), outside the \(count) tokens")
            }
            return Int32(value)
        }
        bosID = try specialID("bos_token_id")
        eosID = try specialID("eos_token_id")
        unknownID = try specialID("unknown_token_id")
        paddingID = try specialID("padding_token_id")
        let addBOSValue = metadata["tokenizer.ggml.add_bos_token"]
        addsBOS = addBOSValue?.bool ?? addBOSValue?.int.map { $0 != 0 } ?? preTokenizer.addsBOSByDefault

        // End of generation, detected by spelling as llama.cpp does; such tokens are treated as control tokens.
        var endOfGeneration = Set<Int32>()
        for id in [eosID, try specialID("eot_token_id"), try specialID("eom_token_id")].compactMap({ $0 }) {
            endOfGeneration.insert(id)
        }
        for text in Tokenizer.endOfGenerationSpellings {
            guard let id = idForToken[text] else { continue }
            endOfGeneration.insert(id)
            if types[Int(id)] != .control { types[Int(id)] = .control }
        }
        endOfGenerationIDs = endOfGeneration

        var specials: [SpecialToken] = []
        for id in 0..<count where [.control, .userDefined, .unknown].contains(types[id]) {
            specials.append(
                SpecialToken(
                    bytes: Array(tokens[id].utf8), id: Int32(id), needsParseSpecial: types[id] != .userDefined))
        }
        specialTokens = specials.sorted { ($0.bytes.count, -$0.id) > ($1.bytes.count, -$1.id) }

        // Intern every string the merges mention; most are vocabulary entries.
        var extraSymbols: [String] = []
        var extraIDs: [String: Int32] = [:]
        func intern(_ text: String) -> Int32 {
            if let id = idForToken[text] { return id }
            if let id = extraIDs[text] { return id }
            let id = Int32(count + extraSymbols.count)
            extraSymbols.append(text)
            extraIDs[text] = id
            return id
        }
        let byteSymbols = (0..<256).map { intern(String(ByteLevel.scalarForByte[$0])) }
        var merges: [UInt64: MergeRule] = [:]
        merges.reserveCapacity(mergeValues.count)
        for (rank, value) in mergeValues.enumerated() {
            guard let rule = value.string else { throw TokenizerError.missingKey("tokenizer.ggml.merges") }
            // Split at the first space after the first byte, as llama.cpp does, so a leading space survives.
            let utf8 = rule.utf8
            guard utf8.count > 2,
                let space = utf8[utf8.index(after: utf8.startIndex)...].firstIndex(of: UInt8(ascii: " "))
            else { continue }
            let left = String(rule[..<space])
            let right = String(rule[rule.index(after: space)...])
            let key = Tokenizer.mergeKey(intern(left), intern(right))
            if merges[key] == nil {
                merges[key] = MergeRule(rank: Int32(rank), result: intern(left + right))
            }
        }

        var pieceBytes: [UInt8] = []
        pieceBytes.reserveCapacity(count * 8)
        var pieceOffsets: [Int32] = [0]
        pieceOffsets.reserveCapacity(count + 1)
        for id in 0..<count {
            pieceBytes.append(contentsOf: Tokenizer.piece(of: tokens[id], type: types[id]))
            pieceOffsets.append(Int32(pieceBytes.count))
        }

        self.preTokenizerName = preName
        self.preTokenizer = preTokenizer
        self.vocabularySize = count
        self.tokens = tokens
        self.types = types
        self.idForToken = idForToken
        self.extraSymbols = extraSymbols
        self.merges = merges
        self.byteSymbols = byteSymbols
        self.pieceBytes = pieceBytes
        self.pieceOffsets = pieceOffsets
    }

    static let endOfGenerationSpellings = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
        "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
        // Fill-in-the-middle padding, repository and file separators also stop generation in llama.cpp.
        "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<reponame>",
        "<|file_sep|>",
    ]

    static func mergeKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// The bytes a token renders to when special tokens are shown.
    private static func piece(of text: String, type: TokenType) -> [UInt8] {
        switch type {
        case .normal:
            return ByteLevel.decode(text)
        case .control, .unknown, .userDefined:
            return Array(text.utf8)
        case .byte:
            // `<0xNN>`
            let utf8 = Array(text.utf8)
            guard utf8.count == 6, let value = UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
            else { return [] }
            return [value]
        case .unused, .undefined:
            return []
        }
    }

    /// The id of the vocabulary entry spelled exactly `text` (byte-level encoded, so a space is "Ġ"), if any.
    public func id(of text: String) -> Int32? { idForToken[text] }

    /// The vocabulary spelling of `id` (byte-level encoded), or nil when out of range.
    public func spelling(of id: Int32) -> String? {
        id >= 0 && Int(id) < vocabularySize ? tokens[Int(id)] : nil
    }

    /// The type of `id`; `.undefined` when out of range.
    public func tokenType(_ id: Int32) -> TokenType {
        id >= 0 && Int(id) < vocabularySize ? types[Int(id)] : .undefined
    }

    /// Whether generating `id` ends the turn (see `endOfGenerationIDs`).
    public func isEndOfGeneration(_ id: Int32) -> Bool { endOfGenerationIDs.contains(id) }
}
