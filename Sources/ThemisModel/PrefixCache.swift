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
