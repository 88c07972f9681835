import ThemisBackend

/// The keys and values of a token prefix, copied out of a session so that other sequences that
/// start with the same tokens (a judge prompt's shared head) skip its prefill.
public final class PrefixSnapshot: @unchecked Sendable {
    // Immutable after init; its tensors belong to the model's backend.
    public let tokens: [Int32]
    let keys: [Tensor]
    let values: [Tensor]

    init(tokens: [Int32], keys: [Tensor], values: [Tensor]) {
        self.tokens = tokens
        self.keys = keys
        self.values = values
    }
}

/// Snapshots of earlier prompts, found by the longest common token prefix, within a memory
/// budget (least recently used go first). A prompt that shares a long start with an earlier one
/// also leaves a snapshot of just that shared start, so the heads many prompts have in common
/// (a judge scenario's instructions, a server's system prompt) are found without being named.
public final class PrefixCache {
    /// Bytes the snapshots may hold.
    public let budgetBytes: Int
    /// Shared starts shorter than this are not kept on their own.
    public let minimumShared: Int
    private let bytesPerToken: Int
    /// Least recently used first.
    private var entries: [PrefixSnapshot] = []
    public private(set) var bytes = 0

    public init(model: LanguageModel, budgetBytes: Int, minimumShared: Int = 32) {
        self.budgetBytes = budgetBytes
        self.minimumShared = minimumShared
        bytesPerToken = 2 * model.config.blockCount * model.config.kvWidth * MemoryLayout<Float>.size
    }

    public var count: Int { entries.count }

    /// How many leading tokens `a` and `b` share.
    public static func common(_ a: [Int32], _ b: [Int32]) -> Int {
        var n = 0
        let limit = min(a.count, b.count)
        while n < limit && a[n] == b[n] { n += 1 }
        return n
    }

    /// The snapshot sharing the most leading tokens with `prompt`, and how many.
    public func bestMatch(for prompt: [Int32]) -> (snapshot: PrefixSnapshot, common: Int)? {
        var best: (PrefixSnapshot, Int)?
        for entry in entries {
            let c = Self.common(entry.tokens, prompt)
            if c > 0 && c > (best?.1 ?? 0) { best = (entry, c) }
        }
        guard let best else { return nil }
        touch(best.0)
        return best
    }

    /// Keeps a snapshot of the first `count` tokens `session` holds, unless one exists.
    public func remember(_ session: Session, count: Int) throws {
        let tokens = Array(session.tokens.prefix(count))
        guard count > 0, count * bytesPerToken <= budgetBytes else { return }
        if let existing = entries.first(where: { $0.tokens == tokens }) {
            touch(existing)
            return
        }
        let snapshot = try session.snapshot(count: count)
        entries.append(snapshot)
        bytes += count * bytesPerToken
        while bytes > budgetBytes, !entries.isEmpty {
            bytes -= entries.removeFirst().tokens.count * bytesPerToken
        }
    }

    private func touch(_ snapshot: PrefixSnapshot) {
        guard let i = entries.firstIndex(where: { $0 === snapshot }), i != entries.count - 1 else { return }
        entries.append(entries.remove(at: i))
    }
}

/// A prompt brought into a session a piece at a time, so that the caller can run other sequences'
/// decode steps between the pieces (a long judge prompt must not hold up a short completion).
/// It starts from the longest start of the prompt the session holds or `cache` keeps, and leaves
/// snapshots in `cache` when the prompt is in. No piece is small enough for the backend's decode
/// kernels, so the numbers depend neither on what else runs nor on how much was reused.
public struct PromptFill {
    public let prompt: [Int32]
    /// Leading tokens taken from the session or a snapshot instead of being evaluated.
    public let reused: Int
    /// Tokens of `prompt` the session holds.
    public private(set) var position: Int
    /// The logits after the prompt's last token, once `advance` returned true.
    public private(set) var logits: [Float] = []
    private let cache: PrefixCache?
    /// The snapshot the start came from, and how many tokens it shares with `prompt`.
    private let match: (snapshot: PrefixSnapshot, common: Int)?

    /// Prepares `session` for `prompt` (restoring a snapshot from `cache` when it shares more than
    /// the session holds; without a cache the session starts empty). Throws `contextOverflow`
    /// when the prompt cannot fit.
    public init(_ prompt: [Int32], in session: Session, cache: PrefixCache?) throws {
        guard !prompt.isEmpty else { throw ModelError.emptyPrompt }
        guard prompt.count <= session.contextLength else {
            throw ModelError.contextOverflow(tokens: prompt.count, context: session.contextLength)
        }
        self.prompt = prompt
        self.cache = cache
        if let cache {
            let held = PrefixCache.common(session.tokens, prompt)
            let match = cache.bestMatch(for: prompt)
            if let match, match.common > held { try session.restore(match.snapshot) }
            self.match = match
            // the rest is at least one piece (`advance`): the last token's logits are wanted
            reused = max(0, min(PrefixCache.common(session.tokens, prompt), prompt.count - PromptFill.smallestPiece(session)))
        } else {
            match = nil
            reused = 0
        }
        session.truncate(to: reused)
        position = reused
    }

    /// The fewest tokens a piece holds (unless the whole prompt is fewer): one more than the rows
    /// the backend's decode kernels take.
    public static func smallestPiece(_ session: Session) -> Int {
        min(session.model.backend.decodeKernelRows + 1, max(2, session.model.transformer.maxBatch / 4))
    }

    /// Prompt tokens still to evaluate.
    public var remaining: Int { prompt.count - position }

    /// Evaluates up to `limit` (at least one) more tokens of the prompt into `session` (the one it
    /// was made for, untouched in between); true when the whole prompt is in, `logits` then set.
    public mutating func advance(_ session: Session, limit: Int) throws -> Bool {
        guard position < prompt.count else { return true }
        guard session.tokens.count == position else {
            throw ModelError.badHyperParameter("the session changed while a prompt was evaluated into it")
        }
        // No piece small enough for the decode kernels where the prompt has more: they round and
        // sum differently, so a prompt's numbers would depend on where its pieces and its reused
        // start fall, and so on what ran before it. Pieces stay within one forward pass
        // (`maxBatch`), which would otherwise cut its own.
        let smallest = Self.smallestPiece(session), maxBatch = session.model.transformer.maxBatch
        var end = position + min(max(smallest, min(limit, maxBatch)), prompt.count - position)
        let left = prompt.count - end
        if left > 0 && left < smallest { end = end - position + left <= maxBatch ? prompt.count : end - smallest }
        let piece = Array(prompt[position..<end])
        if end < prompt.count {
            _ = try session.evaluate(piece, outputs: 0..<0)
            position = end
            return false
        }
        logits = try session.evaluateLast(piece)
        position = end
        if let cache {
            if let match, match.common >= cache.minimumShared, match.common < match.snapshot.tokens.count,
               match.common < prompt.count {
                try cache.remember(session, count: match.common)
            }
            try cache.remember(session, count: prompt.count)
        }
        return true
    }
}

extension Session {
    /// A copy of the first `count` tokens' keys and values (device to device, no read-back).
    public func snapshot(count: Int) throws -> PrefixSnapshot {
        precondition(count > 0 && count <= tokens.count, "snapshot of \(count) tokens from a session holding \(tokens.count)")
        let b = model.backend
        let width = model.config.kvWidth
        var keys: [Tensor] = [], values: [Tensor] = []
        for layer in 0..<cache.keys.count {
            let k = try b.makeTensor(shape: [count, width]), v = try b.makeTensor(shape: [count, width])
            b.copyRows(cache.keys[layer].rows(0..<count), into: k, atRow: 0)
            b.copyRows(cache.values[layer].rows(0..<count), into: v, atRow: 0)
            keys.append(k)
            values.append(v)
        }
        return PrefixSnapshot(tokens: Array(tokens.prefix(count)), keys: keys, values: values)
    }

    /// Replaces the session's contents with `snapshot`'s tokens.
    public func restore(_ snapshot: PrefixSnapshot) throws {
        guard snapshot.tokens.count <= contextLength else {
            throw ModelError.contextOverflow(tokens: snapshot.tokens.count, context: contextLength)
        }
        let b = model.backend
        for layer in 0..<cache.keys.count {
            b.copyRows(snapshot.keys[layer], into: cache.keys[layer], atRow: 0)
            b.copyRows(snapshot.values[layer], into: cache.values[layer], atRow: 0)
        }
        replaceTokens(with: snapshot.tokens)
    }

    /// Brings the session to hold exactly `prompt` with the fewest new tokens evaluated: the part
    /// it already holds is kept, the rest is evaluated. Returns the logits after the last token
    /// and how many tokens were reused.
    public func evaluateReusing(_ prompt: [Int32]) throws -> (logits: [Float], reused: Int) {
        guard !prompt.isEmpty else { throw ModelError.emptyPrompt }
        var common = 0
        while common < min(tokens.count, prompt.count), tokens[common] == prompt[common] { common += 1 }
        // at least the last token is evaluated again: its logits are wanted
        common = min(common, prompt.count - 1)
        truncate(to: common)
        return (try evaluateLast(Array(prompt[common...])), common)
    }

    /// `log p(candidate | current tokens)` for each candidate (summed over its tokens), every
    /// candidate scored from the same state; the session holds the same tokens afterwards.
    /// `lastLogits` are the logits after the current last token.
    public func scoreContinuations(_ candidates: [[Int32]], lastLogits: [Float]) throws -> [Double] {
        let base = tokens.count
        let vocab = model.config.vocabularySize
        var scores: [Double] = []
        for candidate in candidates {
            precondition(!candidate.isEmpty, "an empty candidate")
            var total = Double(Session.logSoftmax(lastLogits, row: 0, width: vocab, at: Int(candidate[0])))
            if candidate.count > 1 {
                let logits = try evaluate(Array(candidate.dropLast()), outputs: 0..<(candidate.count - 1))
                for j in 1..<candidate.count {
                    total += Double(Session.logSoftmax(logits, row: j - 1, width: vocab, at: Int(candidate[j])))
                }
                truncate(to: base)
            }
            scores.append(total)
        }
        return scores
    }
}
