/// A tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata: byte-level BPE (GPT-2 style,
/// `tokenizer.ggml.model = gpt2`) or SentencePiece (`llama`: Llama 1/2, Mistral, Gemma, Phi-3).
///
/// It reproduces llama.cpp's tokenization: the special-token partition; for BPE, the pre-tokenizer
/// named by `tokenizer.ggml.pre` and merges applied lowest rank first; for SentencePiece, the space
/// prefix, spaces as U+2581, pairs merged highest score first and byte fallback (`<0xNN>`).
/// Immutable after `init`, so one instance can be shared by any number of threads.
public final class Tokenizer: Sendable {
    /// The two vocabulary kinds llama.cpp calls BPE and SPM.
    public enum Kind: String, Sendable {
        /// Byte-level BPE (`gpt2`).
        case byteLevelBPE = "gpt2"
        /// SentencePiece with byte fallback (`llama`).
        case sentencePiece = "llama"
    }

    /// Which algorithm splits text into tokens.
    public let kind: Kind
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

    /// Whether SentencePiece text gets a leading space at its start and after every special token
    /// (`tokenizer.ggml.add_space_prefix`, default true; Gemma's files turn it off).
    public let addsSpacePrefix: Bool

    /// Vocabulary spellings (byte-level encoded for BPE; spaces as U+2581 for SentencePiece), by id.
    let tokens: [String]
    /// SentencePiece scores, by id (empty for BPE).
    let scores: [Float]
    /// SentencePiece byte-fallback token of each byte value (`<0xNN>`, else the byte's own
    /// one-character token, else the unknown token; -1 when there is none).
    let byteTokens: [Int32]
    let types: [TokenType]
    let idForToken: [String: Int32]
    /// SentencePiece entries by their exact UTF-8 bytes (Swift's `String` equality would merge
    /// canonically equivalent spellings, which SentencePiece vocabularies hold as distinct tokens).
    let idForBytes: [[UInt8]: Int32]
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
        /// Whitespace after the token is swallowed with it (llama.cpp's `rstrip` token attribute,
        /// which it gives Phi-3's special tokens).
        let stripsRight: Bool
    }

    /// Builds the tokenizer of `gguf`; throws `TokenizerError` when it is neither byte-level BPE nor
    /// SentencePiece, names an unknown pre-tokenizer, or lacks the vocabulary, merges or scores.
    public init(gguf: GGUFFile) throws {
        let metadata = gguf.metadata
        guard let model = metadata["tokenizer.ggml.model"]?.string else {
            throw TokenizerError.missingKey("tokenizer.ggml.model")
        }
        guard let kind = Kind(rawValue: model) else { throw TokenizerError.unsupportedModel(model) }
        // SentencePiece does no pre-tokenization; its files name none or "default"
        let preName = kind == .sentencePiece ? "default" : metadata["tokenizer.ggml.pre"]?.string ?? "default"
        guard let preTokenizer = PreTokenizer(name: preName) else {
            throw TokenizerError.unknownPreTokenizer(preName)
        }
        guard let tokenValues = metadata["tokenizer.ggml.tokens"]?.array else {
            throw TokenizerError.missingKey("tokenizer.ggml.tokens")
        }
        let mergeValues = metadata["tokenizer.ggml.merges"]?.array ?? []
        if kind == .byteLevelBPE && metadata["tokenizer.ggml.merges"]?.array == nil {
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
        var idForBytes: [[UInt8]: Int32] = [:]
        if kind == .sentencePiece { idForBytes.reserveCapacity(count) }
        for (index, value) in tokenValues.enumerated() {
            guard var text = value.string else { throw TokenizerError.missingKey("tokenizer.ggml.tokens") }
            // llama.cpp's spelling for empty entries, so they stay distinct.
            if text.isEmpty { text = "[EMPTY_\(index)]" }
            if kind == .sentencePiece {
                guard idForBytes.updateValue(Int32(index), forKey: Array(text.utf8)) == nil else {
                    throw TokenizerError.malformedVocabulary("duplicate token '\(text)'")
                }
                if idForToken[text] == nil { idForToken[text] = Int32(index) }
            } else {
                guard idForToken.updateValue(Int32(index), forKey: text) == nil else {
                    throw TokenizerError.malformedVocabulary("duplicate token '\(text)'")
                }
            }
            tokens.append(text)
        }
        self.idForBytes = idForBytes

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
        func flag(_ key: String) -> Bool? {
            let value = metadata["tokenizer.ggml.\(key)"]
            return value?.bool ?? value?.int.map { $0 != 0 }
        }
        addsBOS = flag("add_bos_token") ?? (kind == .sentencePiece || preTokenizer.addsBOSByDefault)
        addsSpacePrefix = kind == .sentencePiece && (flag("add_space_prefix") ?? true)

        var scores: [Float] = []
        if kind == .sentencePiece {
            guard let scoreValues = metadata["tokenizer.ggml.scores"]?.array, scoreValues.count >= count else {
                throw TokenizerError.missingKey("tokenizer.ggml.scores")
            }
            scores = try scoreValues.prefix(count).map { value in
                guard let score = value.double.map(Float.init), score.isFinite else {
                    throw TokenizerError.malformedVocabulary("a score in tokenizer.ggml.scores is not a finite number")
                }
                return score
            }
        }
        self.scores = scores
        let unknown = unknownID
        byteTokens = (0..<256).map { byte -> Int32 in
            let hex = String(byte, radix: 16, uppercase: true)
            if let id = idForBytes[Array(("<0x" + (hex.count == 1 ? "0" : "") + hex + ">").utf8)] { return id }
            if let id = idForBytes[[UInt8(byte)]] { return id }
            return unknown ?? -1
        }

        // End of generation, detected by spelling as llama.cpp does; such tokens are treated as
        // control tokens (parsed only with special tokens, rendered only when asked).
        var endOfGeneration = Set<Int32>()
        for id in [eosID, try specialID("eot_token_id"), try specialID("eom_token_id")].compactMap({ $0 }) {
            endOfGeneration.insert(id)
        }
        for text in Tokenizer.endOfGenerationSpellings {
            guard let id = idForToken[text] else { continue }
            endOfGeneration.insert(id)
            if types[Int(id)] != .control { types[Int(id)] = .control }
        }
        // gpt-oss's message markers are always rendered
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let id = idForToken[text] { types[Int(id)] = .userDefined }
        }
        // where <|end|> sits beside <|return|> and <|call|> (or <|calls|> and <|flush|>), it ends a
        // message, not the generation; where </s> sits beside Gemma 4's or PLaMo's own end markers,
        // it is ordinary text
        func eog(_ text: String) -> Int32? { idForToken[text].flatMap { endOfGeneration.contains($0) ? $0 : nil } }
        if let end = eog("<|end|>"),
           (eog("<|return|>") != nil && eog("<|call|>") != nil) || (eog("<|calls|>") != nil && eog("<|flush|>") != nil) {
            endOfGeneration.remove(end)
            types[Int(end)] = .userDefined
        }
        if let s = eog("</s>"), eog("<|tool_response>") != nil || eog("<|plamo:eos|>") != nil {
            endOfGeneration.remove(s)
            types[Int(s)] = .normal
        }
        endOfGenerationIDs = endOfGeneration

        // llama.cpp gives Phi-3's special tokens (recognised by the model's name) the rstrip
        // attribute, except <unk>, <s> and <|endoftext|>
        let name = (metadata["general.name"]?.string ?? "").lowercased()
        let phi3 = name.contains("phi-3") || name.contains("phi3")
        var specials: [SpecialToken] = []
        for id in 0..<count where [.control, .userDefined, .unknown].contains(types[id]) {
            let text = tokens[id]
            specials.append(
                SpecialToken(
                    bytes: Array(text.utf8), id: Int32(id), needsParseSpecial: types[id] != .userDefined,
                    stripsRight: phi3 && !["<unk>", "<s>", "<|endoftext|>"].contains(text)))
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
            pieceBytes.append(contentsOf: Tokenizer.piece(of: tokens[id], type: types[id], kind: kind))
            pieceOffsets.append(Int32(pieceBytes.count))
        }

        self.kind = kind
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

    /// The spellings llama.cpp (the release llama-cpp-python 0.3.36 vendors) takes for the end of
    /// a generation.
    static let endOfGenerationSpellings = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>", "[e~[",
        // Fill-in-the-middle padding, repository and file separators also stop generation in llama.cpp.
        "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<reponame>",
        "<|file_sep|>",
    ]

    static func mergeKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// The bytes a token renders to when special tokens are shown.
    private static func piece(of text: String, type: TokenType, kind: Kind) -> [UInt8] {
        switch type {
        case .normal where kind == .sentencePiece:
            return Array(text.replacingOccurrences(of: SentencePiece.space, with: " ").utf8)
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

    /// The id of the vocabulary entry spelled exactly `text` (byte-level encoded, so a space is "Ġ";
    /// for SentencePiece "▁"), if any.
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
