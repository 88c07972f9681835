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

/// One sequence's generation, a token at a time: sampling, end-of-generation, stop strings and the
/// text that has become final. `Session.generate` drives it one sequence at a time; a server drives
/// several, feeding each the logits of a shared forward pass.
public struct GenerationState: Sendable {
    /// What one step produced.
    public struct Step: Sendable {
        /// The sampled token when it became part of the output (nil at end of generation).
        public var token: Int32?
        /// Text that became final with this step (may be empty).
        public var text: String
        /// The token to evaluate next; nil once the generation has stopped.
        public var next: Int32?
    }

    public let maxTokens: Int
    public let stop: [String]
    public private(set) var generated: [Int32] = []
    /// The final text so far.
    public private(set) var text = ""
    /// Why the generation stopped; nil while it runs.
    public private(set) var stopReason: StopReason?
    private var sampler: Sampler
    private var decoder: StreamingDecoder
    private var history: [Int32]
    private var pending = ""  // decoded text held back while it may start a stop string

    public init(tokenizer: Tokenizer, prompt: [Int32], maxTokens: Int, sampling: SamplingParameters, stop: [String] = []) throws {
        guard maxTokens >= 0 else { throw ModelError.invalidSampling("max tokens must be >= 0, got \(maxTokens)") }
        self.maxTokens = maxTokens
        self.stop = stop.filter { !$0.isEmpty }
        sampler = try Sampler(sampling)
        decoder = StreamingDecoder(tokenizer: tokenizer)
        history = prompt
    }

    /// Samples from `logits` (the distribution after the last evaluated token). `contextFull`:
    /// the session has no room for another token.
    public mutating func step(logits: [Float], contextFull: Bool) -> Step {
        guard stopReason == nil else { return Step(token: nil, text: "", next: nil) }
        guard generated.count < maxTokens else { return Step(token: nil, text: finish(.maxTokens), next: nil) }
        let id = sampler.sample(logits, history: history)
        if decoder.tokenizer.isEndOfGeneration(id) { return Step(token: nil, text: finish(.endOfGeneration), next: nil) }
        generated.append(id)
        history.append(id)
        pending += decoder.append(id)
        if !stop.isEmpty, let (cut, _) = Self.firstStop(in: pending, stops: stop) {
            let head = String(pending[..<cut])
            text += head
            pending = ""
            stopReason = .stopString
            return Step(token: id, text: head, next: nil)
        }
        var released = ""
        let safe = stop.isEmpty ? pending.endIndex : Self.safePrefixEnd(pending, stops: stop)
        if safe > pending.startIndex {
            released = String(pending[..<safe])
            text += released
            pending = String(pending[safe...])
        }
        if generated.count >= maxTokens { return Step(token: id, text: released + finish(.maxTokens), next: nil) }
        if contextFull { return Step(token: id, text: released + finish(.contextFull), next: nil) }
        return Step(token: id, text: released, next: id)
    }

    /// Stops the generation (a client went away, say); returns the text held back.
    public mutating func cancel() -> String { stopReason == nil ? finish(.maxTokens) : "" }

    private mutating func finish(_ reason: StopReason) -> String {
        stopReason = reason
        let rest = pending + decoder.finish()
        pending = ""
        text += rest
        return rest
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

extension Session {
    /// Generates a continuation of `prompt` (token ids) into this session, which is cleared first.
    ///
    /// Stops at an end-of-generation token, at the first of `stop` strings (not included in the
    /// text), after `maxTokens`, or when the context is full. `onText` receives the text as it
    /// becomes final: whole UTF-8 characters, never text that may turn out to be a stop string.
    public func generate(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters, stop: [String] = [],
                         onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw ModelError.emptyPrompt }
        var state = try GenerationState(tokenizer: model.tokenizer, prompt: prompt, maxTokens: maxTokens, sampling: sampling, stop: stop)
        truncate(to: 0)
        guard prompt.count < contextLength else {
            throw ModelError.contextOverflow(tokens: prompt.count, context: contextLength)
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        var logits = try evaluateLast(prompt)
        let t1 = DispatchTime.now().uptimeNanoseconds
        while true {
            let step = state.step(logits: logits, contextFull: tokens.count >= contextLength)
            if !step.text.isEmpty { onText(step.text) }
            guard let next = step.next else { break }
            logits = try evaluateLast([next])
        }
        let t2 = DispatchTime.now().uptimeNanoseconds
        return GenerationResult(text: state.text, tokenIDs: state.generated, promptTokens: prompt.count,
                                stopReason: state.stopReason ?? .maxTokens,
                                prefillSeconds: Double(t1 - t0) / 1e9, decodeSeconds: Double(t2 - t1) / 1e9)
    }
}
