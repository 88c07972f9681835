import Foundation
import Synchronization
import ThemisBackend
import ThemisModel

/// Settings of a `LocalModel`.
public struct LocalModelOptions: Sendable {
    /// Sequences decoded together (each holds a KV cache of the context length, made on first use).
    public var parallel = 8
    /// Generations that may wait for a free sequence; beyond it `ClientError.busy`.
    public var queueLimit = 4096
    /// Reuse the keys and values of earlier prompts' common starts (label scoring, and chats that
    /// ask for it; the server's generations do not, so their numbers never depend on history).
    public var reusePrefix = true
    /// Memory for those keys and values.
    public var prefixCacheBytes = 256 << 20
    /// Prompt tokens evaluated at a time: a long prompt (a judge's, an echoed one, a generation's)
    /// goes in pieces of this size with the running sequences' decode steps in between.
    public var prefillChunk = 128

    public init() {}
}

/// Told what a local model is doing (the server's `/metrics`).
public protocol LocalModelObserver: Sendable {
    func queueDepth(_ n: Int)
    func activeSequences(_ n: Int)
    func promptTokens(_ n: Int)
    func generatedTokens(_ n: Int)
}

/// A sampled token's log-probability and the most likely tokens at its position.
public struct TokenChoice: Sendable {
    public struct Alternative: Sendable {
        public var token: Int32
        public var logprob: Float
    }
    public var token: Int32
    public var logprob: Float
    public var top: [Alternative]
}

/// One generation on token level (the server's endpoints build these).
public struct Generation: Sendable {
    public var prompt: [Int32]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var stop: [String]
    /// Alternatives to report per token; nil: no log-probabilities.
    public var logprobs: Int?
    /// Start from the keys and values of an earlier prompt's common start.
    public var reusePrefix: Bool

    public init(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters, stop: [String] = [], logprobs: Int? = nil,
                reusePrefix: Bool = false) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.logprobs = logprobs
        self.reusePrefix = reusePrefix
    }
}

/// What a generation reports as it runs.
public enum GenerationEvent: Sendable {
    /// Text that became final with one generated token (possibly empty while a multi-byte
    /// character or a possible stop string is held back).
    case token(text: String, logprob: TokenChoice?)
    case finished(reason: StopReason, promptTokens: Int, completionTokens: Int)
    case failed(ClientError)
}

/// A running generation's handle: cancelling it (the client went away) frees its sequence at the
/// next step.
public final class GenerationHandle: Sendable {
    private let cancelled = Mutex(false)
    public init() {}
    public func cancel() { cancelled.withLock { $0 = true } }
    public var isCancelled: Bool { cancelled.withLock { $0 } }
}

/// A GGUF model in this process as a `ModelClient`: the only owner of the loaded model, its
/// sessions, the prefix cache and the decoding batch. Concurrent generations join one batch
/// (continuous batching: a new prompt is prefilled between decode steps and its sequence decodes
/// with the others). Every prompt goes in pieces of `prefillChunk` tokens, and label
/// probabilities, echoed prompts and scoring (one at a time, on the scratch session) take turns
/// with the decode steps, so a long judge prompt never holds up a short completion. Everything
/// runs on the model's own thread.
///
/// Decode steps of up to 8 sequences give each the same numbers as decoding it alone (the
/// backends' one-token kernels work row by row), so greedy answers do not depend on what else runs.
public actor LocalModel: ModelClient {
    public nonisolated let name: String
    public nonisolated let tokenizer: Tokenizer
    public nonisolated let template: ChatTemplate
    public nonisolated let options: LocalModelOptions
    private nonisolated let executor: ThreadExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    let model: LanguageModel
    private let observer: (any LocalModelObserver)?
    private let prefixCache: PrefixCache
    /// The session label probabilities and scoring use, one caller at a time (`scratchBusy`;
    /// the others wait in `scratchWaiters`), since its work is interleaved with decode steps.
    private let scratch: Session
    private var scratchBusy = false
    private var scratchWaiters: [CheckedContinuation<Void, Never>] = []
    /// Which prefilling sequence gets the next piece (round robin).
    private var nextFill = 0
    /// Decoding sequences, made as they are first needed, at most `options.parallel`.
    private var slots: [Session] = []
    private var waiting: [Waiting] = []
    private var running: [Running] = []
    private var pumping = false
    private var stopping = false
    private var drained: [CheckedContinuation<Void, Never>] = []
    /// Prompt tokens evaluated, and reused from earlier prompts, since the start.
    public private(set) var evaluatedTokens = 0
    public private(set) var reusedTokens = 0

    private struct Waiting {
        var generation: Generation
        var events: AsyncStream<GenerationEvent>.Continuation
        var handle: GenerationHandle
    }

    private struct Running {
        var session: Session
        var state: GenerationState
        var generation: Generation
        var events: AsyncStream<GenerationEvent>.Continuation
        var handle: GenerationHandle
        var next: Int32
        /// The prompt still going in; nil once the sequence decodes.
        var fill: PromptFill?
    }

    /// `name` is what answers are recorded with (a short name, or the file's name).
    public init(model: LanguageModel, name: String, options: LocalModelOptions = LocalModelOptions(),
                observer: (any LocalModelObserver)? = nil) throws {
        self.model = model
        self.name = name
        self.options = options
        self.observer = observer
        tokenizer = model.tokenizer
        template = try model.chatTemplate()
        executor = ThreadExecutor(name: "themis-model")
        prefixCache = PrefixCache(model: model, budgetBytes: options.prefixCacheBytes)
        scratch = try model.makeSession()
        guard options.parallel >= 1, options.queueLimit >= 0, options.prefillChunk >= 1 else {
            throw ClientError.unsupported("parallel and the prefill piece must be at least 1 and the queue limit at least 0")
        }
    }

    public nonisolated var capabilities: Capabilities {
        Capabilities(labels: .exact, continuationScoring: true, tokenCounts: true)
    }

    public nonisolated var contextLength: Int? { model.contextLength }
    /// The context length of every sequence.
    public nonisolated var contextTokens: Int { model.contextLength }

    // MARK: - Prompts to tokens

    /// The prompt as the model sees it: the chat template rendered, the assistant prefix appended,
    /// tokenized (special tokens only where the template put them).
    public nonisolated func tokens(_ prompt: Prompt) throws -> [Int32] {
        let ids = template.tokens(prompt.messages, assistantPrefix: prompt.assistantPrefix, tokenizer: tokenizer)
        guard !ids.isEmpty else { throw ClientError.unsupported("the prompt is empty") }
        return ids
    }

    public nonisolated func tokenCount(_ text: String) async throws -> Int? {
        tokenizer.encode(text, parseSpecial: false, addBOS: false).count
    }

    public nonisolated func promptTokenCount(_ prompt: Prompt) async throws -> Int? { try tokens(prompt).count }

    /// The text of a token (its bytes, possibly a part of a character).
    public nonisolated func tokenText(_ id: Int32) -> (text: String, bytes: [UInt8]) {
        let bytes = tokenizer.tokenBytes(id)
        return (String(decoding: bytes, as: UTF8.self), bytes)
    }

    // MARK: - Generation

    /// Queues a generation; its events arrive on the stream. Throws `busy` when the queue is full.
    public func submit(_ generation: Generation) throws(ClientError) -> (AsyncStream<GenerationEvent>, GenerationHandle) {
        if stopping { throw .shuttingDown }
        if waiting.count >= options.queueLimit { throw .busy(waiting: waiting.count) }
        let (stream, continuation) = AsyncStream<GenerationEvent>.makeStream()
        let handle = GenerationHandle()
        waiting.append(Waiting(generation: generation, events: continuation, handle: handle))
        observer?.queueDepth(waiting.count)
        if !pumping {
            pumping = true
            Task { await self.pump() }
        }
        return (stream, handle)
    }

    /// Generations waiting for a sequence.
    public var queueDepth: Int { waiting.count }
    /// Generations with a sequence (their prompt going in, or decoding).
    public var activeSequences: Int { running.count }
    /// Label, echo and scoring requests on the scratch session or waiting for it.
    public var scoringRequests: Int { (scratchBusy ? 1 : 0) + scratchWaiters.count }

    /// Stops taking generations; those running and queued finish first.
    public func shutdown() async {
        stopping = true
        if !pumping { return }
        await withCheckedContinuation { drained.append($0) }
    }

    public func chat(_ request: ChatRequest) async throws -> ChatReply {
        var sampling = SamplingParameters()
        sampling.temperature = Float(request.temperature)
        sampling.topP = Float(request.topP)
        sampling.topK = 0
        sampling.minP = 0
        sampling.seed = request.seed.map { UInt64(bitPattern: Int64($0)) }
        do { try sampling.validate() } catch { throw ClientError.unsupported("\(error)") }
        guard request.maxTokens >= 0 else { throw ClientError.unsupported("max tokens must be >= 0") }
        if let k = request.logprobs, !(0...20).contains(k) { throw ClientError.unsupported("top log-probabilities must be between 0 and 20") }
        let prompt = try tokens(request.prompt)
        let context = model.contextLength
        guard prompt.count < context else { throw ClientError.tooLong(promptTokens: prompt.count, context: context) }
        let budget = min(request.maxTokens, context - prompt.count - 1)
        let (events, _) = try submit(Generation(prompt: prompt, maxTokens: budget, sampling: sampling, stop: request.stop,
                                                logprobs: request.logprobs, reusePrefix: options.reusePrefix))
        var text = ""
        var logprobs: [TokenLogprob] = []
        for await event in events {
            switch event {
            case .token(let piece, let choice):
                text += piece
                if let choice {
                    logprobs.append(TokenLogprob(token: tokenText(choice.token).text, logprob: Double(choice.logprob),
                                                 top: choice.top.map { .init(token: tokenText($0.token).text, logprob: Double($0.logprob)) }))
                }
            case .finished(let reason, let p, let n):
                let finish = reason == .maxTokens || reason == .contextFull ? "length" : "stop"
                return ChatReply(text: text, finishReason: finish, promptTokens: p, completionTokens: n, model: name,
                                 logprobs: request.logprobs == nil ? nil : logprobs)
            case .failed(let error):
                throw error
            }
        }
        throw ClientError.model("the generation ended without finishing")
    }

    /// Runs decode steps while anything waits or runs, a piece of one sequence's prompt after each
    /// step, letting other calls (the scratch session's pieces among them) in between.
    private func pump() async {
        while !waiting.isEmpty || !running.isEmpty {
            while !waiting.isEmpty && running.count < options.parallel {
                let w = waiting.removeFirst()
                if let r = start(w) { running.append(r) }
            }
            observer?.queueDepth(waiting.count)
            observer?.activeSequences(running.count)
            running = step(running)
            fillNext()
            observer?.activeSequences(running.count)
            await Task.yield()
        }
        pumping = false
        let waiters = drained
        drained = []
        for w in waiters { w.resume() }
    }

    private func freeSlot() throws -> Session {
        if let s = slots.first(where: { s in !running.contains { $0.session === s } }) { return s }
        let s = try model.makeSession()
        slots.append(s)
        return s
    }

    /// Takes a waiting generation into a free sequence; its prompt goes in piece by piece.
    private func start(_ w: Waiting) -> Running? {
        guard !w.handle.isCancelled else { w.events.finish(); return nil }
        do {
            let g = w.generation
            guard !g.prompt.isEmpty else { throw ClientError.unsupported("the prompt is empty") }
            guard g.prompt.count < model.contextLength else {
                throw ClientError.tooLong(promptTokens: g.prompt.count, context: model.contextLength)
            }
            let state = try GenerationState(tokenizer: tokenizer, prompt: g.prompt, maxTokens: g.maxTokens, sampling: g.sampling, stop: g.stop)
            let session = try freeSlot()
            let fill = try PromptFill(g.prompt, in: session, cache: g.reusePrefix ? prefixCache : nil)
            return Running(session: session, state: state, generation: g, events: w.events, handle: w.handle, next: 0, fill: fill)
        } catch {
            w.events.yield(.failed(Self.clientError(error)))
            w.events.finish()
            return nil
        }
    }

    /// Evaluates the next piece of one prefilling sequence's prompt (taking turns); a sequence
    /// whose prompt is in takes its first token.
    private func fillNext() {
        let filling = running.indices.filter { running[$0].fill != nil }
        guard !filling.isEmpty else { return }
        let i = filling[nextFill % filling.count]
        nextFill &+= 1
        var r = running[i]
        if r.handle.isCancelled {
            r.events.finish()
            running.remove(at: i)
            return
        }
        do {
            guard var fill = r.fill else { return }
            let done = try fill.advance(r.session, limit: options.prefillChunk)
            r.fill = fill
            if !done {
                running[i] = r
                return
            }
            r.fill = nil
            counted(fill)
            if advance(&r, logits: fill.logits) { running[i] = r } else { running.remove(at: i) }
        } catch {
            r.events.yield(.failed(Self.clientError(error)))
            r.events.finish()
            running.remove(at: i)
        }
    }

    /// Counts a prompt that went in.
    private func counted(_ fill: PromptFill) {
        evaluatedTokens += fill.prompt.count - fill.reused
        reusedTokens += fill.reused
        observer?.promptTokens(fill.prompt.count - fill.reused)
    }

    // MARK: - The scratch session

    /// Waits until the scratch session is free and takes it; `releaseScratch` hands it on.
    private func acquireScratch() async {
        if !scratchBusy {
            scratchBusy = true
            return
        }
        await withCheckedContinuation { scratchWaiters.append($0) }
    }

    private func releaseScratch() {
        if scratchWaiters.isEmpty {
            scratchBusy = false
        } else {
            scratchWaiters.removeFirst().resume()
        }
    }

    /// Evaluates `prompt` into the scratch session (held by the caller) a piece at a time, the
    /// decode steps of running generations in between; the logits after its last token.
    private func fillScratch(_ prompt: [Int32]) async throws -> [Float] {
        var fill = try PromptFill(prompt, in: scratch, cache: options.reusePrefix ? prefixCache : nil)
        while try !fill.advance(scratch, limit: options.prefillChunk) {
            await Task.yield()
        }
        counted(fill)
        return fill.logits
    }

    static func clientError(_ error: any Error) -> ClientError {
        if let e = error as? ClientError { return e }
        if case ModelError.contextOverflow(let n, let c) = error { return .tooLong(promptTokens: n, context: c) }
        if case BackendError.deviceFailed(let reason) = error { return .deviceFailed(reason) }
        if case BackendError.outOfMemory = error { return .outOfMemory("\(error)") }
        return .model(String(describing: error))
    }

    /// Samples the next token of a sequence and reports it; false when the sequence is done.
    private func advance(_ r: inout Running, logits: [Float]) -> Bool {
        if r.handle.isCancelled {
            _ = r.state.cancel()
            r.events.finish()
            return false
        }
        let step = r.state.step(logits: logits, contextFull: r.session.tokens.count >= r.session.contextLength)
        if let token = step.token {
            let choice = r.generation.logprobs.map { Self.choice(token, in: logits, top: $0) }
            r.events.yield(.token(text: step.text, logprob: choice))
        } else if !step.text.isEmpty {
            r.events.yield(.token(text: step.text, logprob: nil))
        }
        guard let next = step.next else {
            r.events.yield(.finished(reason: r.state.stopReason ?? .maxTokens, promptTokens: r.generation.prompt.count,
                                     completionTokens: r.state.generated.count))
            r.events.finish()
            return false
        }
        r.next = next
        return true
    }

    /// One decode step of every decoding sequence, in one forward pass (those still prefilling
    /// stay as they are).
    private func step(_ running: [Running]) -> [Running] {
        var live: [Running] = [], filling: [Running] = []
        for r in running {
            if r.handle.isCancelled { r.events.finish() } else if r.fill != nil { filling.append(r) } else { live.append(r) }
        }
        guard !live.isEmpty else { return filling }
        let logits: [[Float]]
        do {
            logits = try Session.evaluateLast(live.map(\.session), appending: live.map { [$0.next] })
        } catch {
            for r in live {
                r.events.yield(.failed(Self.clientError(error)))
                r.events.finish()
            }
            return filling
        }
        observer?.generatedTokens(live.count)
        var keep = filling
        for i in live.indices {
            var r = live[i]
            if advance(&r, logits: logits[i]) { keep.append(r) }
        }
        return keep
    }

    /// log-softmax of the chosen token and the `top` most likely ones.
    static func choice(_ token: Int32, in logits: [Float], top: Int) -> TokenChoice {
        var maxLogit = -Float.infinity
        for v in logits where v > maxLogit { maxLogit = v }
        var sum: Double = 0
        for v in logits { sum += Double(expf(v - maxLogit)) }
        let logZ = maxLogit + Float(Foundation.log(sum))
        var best: [TokenChoice.Alternative] = []
        if top > 0 {
            // partial selection: keep the `top` largest seen so far
            for (i, v) in logits.enumerated() where best.count < top || v > best[best.count - 1].logprob {
                let at = best.firstIndex { $0.logprob < v } ?? best.count
                best.insert(.init(token: Int32(i), logprob: v), at: at)
                if best.count > top { best.removeLast() }
            }
        }
        return TokenChoice(token: token, logprob: logits[Int(token)] - logZ,
                           top: best.map { .init(token: $0.token, logprob: $0.logprob - logZ) })
    }

    // MARK: - Scoring

    public func labelProbabilities(_ request: LabelRequest) async throws -> LabelProbabilities {
        guard !request.candidates.isEmpty else { throw ClientError.unsupported("no candidates to compare") }
        let prompt = try tokens(request.prompt)
        let candidates = request.candidates.map { tokenizer.encodeContinuation($0) }
        if let i = candidates.firstIndex(where: \.isEmpty) {
            throw ClientError.unsupported("candidate \(i + 1) is empty")
        }
        let longest = candidates.map(\.count).max() ?? 0
        guard prompt.count + longest <= scratch.contextLength else {
            throw ClientError.tooLong(promptTokens: prompt.count + longest, context: scratch.contextLength)
        }
        await acquireScratch()
        defer { releaseScratch() }
        do {
            let before = reusedTokens
            let logits = try await fillScratch(prompt)
            let scores = try scratch.scoreContinuations(candidates, lastLogits: logits)
            return LabelProbabilities(probabilities: LabelProbabilities.normalised(scores), source: .exact,
                                      promptTokens: prompt.count, reusedTokens: reusedTokens - before)
        } catch {
            throw Self.clientError(error)
        }
    }

    public func scoreContinuation(_ continuation: String, after context: ScoringContext) async throws -> ContinuationScore {
        let prefix: [Int32], answer: [Int32]
        switch context {
        case .prompt(let p):
            prefix = try tokens(p)
            answer = tokenizer.encodeContinuation(continuation)
        case .start:
            prefix = [tokenizer.bosID ?? tokenizer.eosID ?? 0]
            answer = tokenizer.encode(continuation, parseSpecial: false, addBOS: false)
        }
        guard !answer.isEmpty else { throw ClientError.unsupported("the continuation is empty") }
        await acquireScratch()
        defer { releaseScratch() }
        do {
            let lps = try scratch.logProbabilities(prefix: prefix, continuation: answer)
            evaluatedTokens += prefix.count + answer.count
            return ContinuationScore(logprobs: lps.map(Double.init))
        } catch {
            throw Self.clientError(error)
        }
    }

    /// `log p(token i | tokens before it)` for every token of `prompt` but the first (whose entry
    /// is nil): what a completions endpoint echoes. The keys and values of all but the last token
    /// stay in the prefix cache, so a generation after the echo (`reusePrefix`) evaluates only the
    /// last few tokens.
    public func promptLogprobs(_ prompt: [Int32], top: Int) async throws -> [TokenChoice?] {
        guard prompt.count >= 1 else { throw ClientError.unsupported("the prompt is empty") }
        guard prompt.count <= scratch.contextLength else {
            throw ClientError.tooLong(promptTokens: prompt.count, context: scratch.contextLength)
        }
        guard prompt.count > 1 else { return [nil] }
        // the start shared with a recently echoed prompt keeps its log-probabilities (the judge
        // scores each label after the same prompt); its keys and values come from the prefix cache
        var shared = 0
        var out: [TokenChoice?] = [nil]
        if top == 0, let hit = echoed.max(by: { PrefixCache.common($0.tokens, prompt) < PrefixCache.common($1.tokens, prompt) }) {
            // the rows left to evaluate make at least one piece too big for the decode kernels, so the
            // numbers are those of a fresh echo (see `PromptFill`)
            shared = min(PrefixCache.common(hit.tokens, prompt), prompt.count - PromptFill.smallestPiece(scratch))
            if shared >= 2 { out = Array(hit.choices.prefix(shared)) } else { shared = 0 }
        }
        await acquireScratch()
        defer { releaseScratch() }
        do {
            // the logits at position j score token j + 1: evaluate from position max(shared, 1) - 1
            let from = max(shared, 1) - 1
            if from > 0 {
                _ = try await fillScratch(Array(prompt[0..<from]))
                scratch.truncate(to: from)
            } else {
                scratch.truncate(to: 0)
            }
            let vocab = model.config.vocabularySize
            // pieces of logit rows, none small enough for the decode kernels unless all are
            let smallest = PromptFill.smallestPiece(scratch)
            let chunk = min(max(2 * smallest, options.prefillChunk), max(2 * smallest, model.transformer.maxLogitRows))
            let inputs = Array(prompt[from..<(prompt.count - 1)])
            var begin = 0
            while begin < inputs.count {
                var end = min(inputs.count, begin + chunk)
                if inputs.count - end > 0 && inputs.count - end < smallest { end = inputs.count - smallest }
                let logits = try scratch.evaluate(Array(inputs[begin..<end]), outputs: 0..<(end - begin))
                for j in begin..<end {
                    let row = Array(logits[((j - begin) * vocab)..<((j - begin + 1) * vocab)])
                    out.append(Self.choice(prompt[from + j + 1], in: row, top: top))
                }
                begin = end
                if begin < inputs.count { await Task.yield() }
            }
            evaluatedTokens += inputs.count
            observer?.promptTokens(inputs.count)
            if options.reusePrefix { try prefixCache.remember(scratch, count: prompt.count - 1) }
            if top == 0 {
                echoed.append((prompt, out))
                if echoed.count > 8 { echoed.removeFirst() }
            }
            return out
        } catch {
            throw Self.clientError(error)
        }
    }
    /// Recently echoed prompts and their token log-probabilities (`promptLogprobs`).
    private var echoed: [(tokens: [Int32], choices: [TokenChoice?])] = []
}
