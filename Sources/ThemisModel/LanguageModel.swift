import ThemisBackend

/// A loaded model: GGUF file, tokenizer, chat template and transformer on one backend.
///
/// This is what the judge, distillation and benchmark layers receive; they never see a
/// concrete backend.
public final class LanguageModel: @unchecked Sendable {
    // Immutable after init; the transformer is used by one session at a time.
    public let file: GGUFFile
    public let config: ModelConfig
    public let tokenizer: Tokenizer
    public let transformer: Transformer
    /// The context length sessions get by default.
    public let contextLength: Int
    private let templateOverride: ChatTemplateKind?
    /// The LoRA adapter applied on the fly, if any.
    public let adapter: LoRAAdapter?

    /// Loads `path` onto `backend`, with the adapter `lora` applied on the fly when given.
    /// `contextLength` defaults to min(model's, 4096).
    public init(path: String, backend: any Backend, contextLength: Int? = nil,
                chatTemplate: ChatTemplateKind? = nil, maxBatch: Int = 512, lora: LoRAOptions? = nil) throws {
        file = try GGUFFile(path: path)
        config = try ModelConfig(file: file)
        tokenizer = try Tokenizer(gguf: file)
        let ctx = contextLength ?? min(config.contextLength, 4096)
        // refused here, not at the first session: a server must not load a model it cannot serve
        try KVCache.checkFits(config: config, contextLength: ctx, device: backend.device)
        self.contextLength = ctx
        templateOverride = chatTemplate
        let c = config
        adapter = try lora.map {
            try LoRAAdapter(file: LoRAAdapterFile(path: $0.path, config: c), scale: $0.scale, config: c, backend: backend)
        }
        transformer = try Transformer(file: file, backend: backend, contextLength: ctx, maxBatch: maxBatch,
                                      adapter: adapter)
    }

    /// The backend the model runs on.
    public var backend: any Backend { transformer.backend }

    /// The chat template: the override if given, else the one recognised in the file.
    /// Throws when the file's template is unknown (the message names `--chat-template`).
    public func chatTemplate() throws -> ChatTemplate {
        try ChatTemplate(gguf: file, kind: templateOverride)
    }

    /// A new sequence with its own KV cache.
    public func makeSession(contextLength: Int? = nil) throws -> Session {
        try Session(model: self, contextLength: contextLength ?? self.contextLength)
    }
}

/// One sequence's state: its KV cache and the tokens in it.
public final class Session: @unchecked Sendable {
    // Used by one task at a time.
    public let model: LanguageModel
    public let cache: KVCache
    /// Tokens whose keys and values are in the cache, in order.
    public private(set) var tokens: [Int32] = []

    init(model: LanguageModel, contextLength: Int) throws {
        self.model = model
        cache = try KVCache(config: model.config, contextLength: contextLength, backend: model.backend)
    }

    public var contextLength: Int { cache.contextLength }

    /// Sets the tokens the cache holds after its rows were written by a copy.
    func replaceTokens(with newTokens: [Int32]) { tokens = newTokens }

    /// Forgets every token after the first `count` (keeps a shared prefix for reuse).
    public func truncate(to count: Int) {
        tokens.removeLast(max(0, tokens.count - count))
    }

    /// Appends `newTokens` and returns the logits of the rows `outputs` (indices into
    /// `newTokens`), `[outputs.count * vocab]`. Throws `contextOverflow` when they do not fit.
    public func evaluate(_ newTokens: [Int32], outputs: Range<Int>) throws -> [Float] {
        guard tokens.count + newTokens.count <= contextLength else {
            throw ModelError.contextOverflow(tokens: tokens.count + newTokens.count, context: contextLength)
        }
        let vocab = model.config.vocabularySize
        for id in newTokens where id < 0 || Int(id) >= vocab {
            throw ModelError.badHyperParameter("token id \(id) outside the vocabulary of \(vocab)")
        }
        var result: [Float] = []
        var begin = 0
        let rows = model.transformer.maxLogitRows
        // Split so that each call's output rows fit the logits buffer.
        while begin < newTokens.count {
            var end = newTokens.count
            let lo = max(outputs.lowerBound, begin), hi = outputs.upperBound
            if lo < hi && hi - lo > rows { end = lo + rows }
            let local = lo < min(hi, end) ? (lo - begin)..<(min(hi, end) - begin) : 0..<0
            result += try model.transformer.forward(Array(newTokens[begin..<end]), startPosition: tokens.count,
                                                cache: cache, outputs: local)
            tokens += newTokens[begin..<end]
            begin = end
        }
        return result
    }

    /// Appends `tokens[i]` to `sessions[i]` for every i in shared forward passes (the sessions
    /// must be distinct and of one model) and returns the logits after each one's last token.
    public static func evaluateLast(_ sessions: [Session], appending tokens: [[Int32]]) throws -> [[Float]] {
        precondition(sessions.count == tokens.count, "\(sessions.count) sessions, \(tokens.count) token lists")
        guard let model = sessions.first?.model else { return [] }
        let transformer = model.transformer
        for (s, t) in zip(sessions, tokens) {
            guard !t.isEmpty else { throw ModelError.emptyPrompt }
            guard s.model === model else { throw ModelError.badHyperParameter("sessions of different models in one batch") }
            guard s.tokens.count + t.count <= s.contextLength else {
                throw ModelError.contextOverflow(tokens: s.tokens.count + t.count, context: s.contextLength)
            }
        }
        // one-token steps (decode) go together; anything larger than a pass runs on its own
        var results = [[Float]](repeating: [], count: sessions.count)
        var group: [Int] = []
        var groupTokens = 0
        func flush() throws {
            guard !group.isEmpty else { return }
            let out = try transformer.forward(sequences: group.map { (tokens[$0], sessions[$0].tokens.count, sessions[$0].cache) })
            for (j, i) in group.enumerated() {
                results[i] = out[j]
                sessions[i].tokens += tokens[i]
            }
            group = []
            groupTokens = 0
        }
        for i in sessions.indices {
            if tokens[i].count > transformer.maxBatch {
                results[i] = try sessions[i].evaluateLast(tokens[i])
                continue
            }
            if groupTokens + tokens[i].count > transformer.maxBatch || group.count == transformer.maxLogitRows { try flush() }
            group.append(i)
            groupTokens += tokens[i].count
        }
        try flush()
        return results
    }

    /// Appends `newTokens` and returns the logits after the last of them.
    public func evaluateLast(_ newTokens: [Int32]) throws -> [Float] {
        guard !newTokens.isEmpty else { throw ModelError.emptyPrompt }
        return try evaluate(newTokens, outputs: (newTokens.count - 1)..<newTokens.count)
    }
}
