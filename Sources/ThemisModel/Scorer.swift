/// Per-token log-probabilities of a continuation (used for IFD and label classification).
extension Session {
    /// `log p(continuation[i] | prefix, continuation[..<i])` for every `i`, in batched passes.
    ///
    /// The session is cleared first and holds `prefix + continuation` afterwards.
    /// `prefix` must not be empty (prepend BOS for an unconditional score).
    public func logProbabilities(prefix: [Int32], continuation: [Int32]) throws -> [Float] {
        guard !prefix.isEmpty else { throw ModelError.emptyPrompt }
        guard !continuation.isEmpty else { return [] }
        truncate(to: 0)
        guard prefix.count + continuation.count <= contextLength else {
            throw ModelError.contextOverflow(tokens: prefix.count + continuation.count, context: contextLength)
        }
        // Logits at the last prefix token and at every continuation token but the last,
        // a chunk of rows at a time so the logits of a long text never sit in memory at once.
        if prefix.count > 1 { _ = try evaluate(Array(prefix.dropLast()), outputs: 0..<0) }
        let scored = [prefix.last!] + continuation
        let vocab = model.config.vocabularySize
        let chunk = model.transformer.maxLogitRows
        var result: [Float] = []
        result.reserveCapacity(continuation.count)
        var begin = 0
        while begin < continuation.count {
            let end = min(continuation.count, begin + chunk)
            let logits = try evaluate(Array(scored[begin..<end]), outputs: 0..<(end - begin))
            for j in begin..<end {
                result.append(Self.logSoftmax(logits, row: j - begin, width: vocab, at: Int(continuation[j])))
            }
            begin = end
        }
        // keep the last continuation token in the cache too, so the session holds the whole text
        _ = try evaluate([continuation.last!], outputs: 0..<0)
        return result
    }

    /// log softmax of row `row` of `logits` evaluated at index `at` (in Double for accuracy).
    static func logSoftmax(_ logits: [Float], row: Int, width: Int, at index: Int) -> Float {
        let base = row * width
        var mx = -Float.infinity
        for i in base..<(base + width) { mx = max(mx, logits[i]) }
        var sum = 0.0
        for i in base..<(base + width) { sum += Double(expf(logits[i] - mx)) }
        return Float(Double(logits[base + index] - mx) - log(sum))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
