import Foundation

/// Why generation stopped.
public enum StopReason: String, Sendable, Codable {
    case endOfGeneration = "eos"
    case stopString = "stop"
    case maxTokens = "length"
    case contextFull = "context"
}

/// The outcome of one generation.
public struct GenerationResult: Sendable {
    public var text: String
    public var tokenIDs: [Int32]
    public var promptTokens: Int
    public var stopReason: StopReason
    public var prefillSeconds: Double
    public var decodeSeconds: Double

    /// Generated tokens per second of decoding (the first token is counted with the prefill).
    public var decodeTokensPerSecond: Double {
        tokenIDs.count > 1 && decodeSeconds > 0 ? Double(tokenIDs.count - 1) / decodeSeconds : 0
    }
    /// Prompt tokens per second of prefill.
    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
}

extension Session {
    /// Generates a continuation of `prompt` (token ids) into this session, which is cleared first.
    ///
    /// Stops at an end-of-generation token, at the first of `stop` strings (not included in the
    /// text), after `maxTokens`, or when the context is full. `onText` receives the text as it
    /// becomes final: whole UTF-8 characters, never text that may turn out to be a stop string.
    public func generate(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters, stop: [String] = [],
                         onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw ModelError.emptyPrompt }
        guard maxTokens >= 0 else { throw ModelError.invalidSampling("max tokens must be >= 0, got \(maxTokens)") }
        var sampler = try Sampler(sampling)
        truncate(to: 0)
        guard prompt.count < contextLength else {
            throw ModelError.contextOverflow(tokens: prompt.count, context: contextLength)
        }
        let tokenizer = model.tokenizer
        let t0 = DispatchTime.now().uptimeNanoseconds
        var logits = try evaluateLast(prompt)
        let t1 = DispatchTime.now().uptimeNanoseconds
        var generated: [Int32] = []
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var text = ""       // final text so far
        var pending = ""    // decoded text held back while it may start a stop string
        var reason = StopReason.maxTokens
        var history = prompt
        loop: while generated.count < maxTokens {
            let id = sampler.sample(logits, history: history)
            if tokenizer.isEndOfGeneration(id) { reason = .endOfGeneration; break }
            generated.append(id)
            history.append(id)
            pending += decoder.append(id)
            if !stop.isEmpty, let (cut, _) = Self.firstStop(in: pending, stops: stop) {
                let head = String(pending[..<cut])
                text += head
                onText(head)
                pending = ""
                reason = .stopString
                break loop
            }
            let safe = stop.isEmpty ? pending.endIndex : Self.safePrefixEnd(pending, stops: stop)
            if safe > pending.startIndex {
                let head = String(pending[..<safe])
                text += head
                onText(head)
                pending = String(pending[safe...])
            }
            if generated.count >= maxTokens { break }
            if tokens.count >= contextLength { reason = .contextFull; break }
            logits = try evaluateLast([id])
        }
        if reason != .stopString {
            pending += decoder.finish()
            text += pending
            if !pending.isEmpty { onText(pending) }
        }
        let t2 = DispatchTime.now().uptimeNanoseconds
        return GenerationResult(text: text, tokenIDs: generated, promptTokens: prompt.count, stopReason: reason,
                                prefillSeconds: Double(t1 - t0) / 1e9, decodeSeconds: Double(t2 - t1) / 1e9)
    }

    /// The earliest occurrence of any stop string in `text`.
    static func firstStop(in text: String, stops: [String]) -> (String.Index, String)? {
        var best: (String.Index, String)?
        for s in stops where !s.isEmpty {
            if let r = text.range(of: s), best == nil || r.lowerBound < best!.0 { best = (r.lowerBound, s) }
        }
        return best
    }

    /// End of the longest prefix of `text` that no stop string can start inside of.
    static func safePrefixEnd(_ text: String, stops: [String]) -> String.Index {
        var end = text.endIndex
        for s in stops where !s.isEmpty {
            // a suffix of text that is a proper prefix of s must be held back
            var i = text.startIndex
            while i < text.endIndex {
                if s.hasPrefix(text[i...]) { end = min(end, i); break }
                i = text.index(after: i)
            }
        }
        return end
    }
}
