import Foundation
import ThemisModel

/// A token's log-probability and the most likely alternatives at its position.
public struct TokenLogprob: Sendable {
    public var token: Int32
    public var logprob: Float
    public var top: [(token: Int32, logprob: Float)]
}

/// What a generation reports to the request that asked for it.
public enum GenerationEvent: Sendable {
    /// Text that became final with one generated token (the text may be empty while a
    /// multi-byte character or a possible stop string is held back).
    case token(text: String, logprob: TokenLogprob?)
    case finished(reason: StopReason, promptTokens: Int, completionTokens: Int)
    case failed(EngineError)
}

/// Why the engine refused or ended a request.
public enum EngineError: Error, Sendable, CustomStringConvertible {
    case queueFull(Int)
    case shuttingDown
    case model(String)

    public var description: String {
        switch self {
        case .queueFull(let n): return "the server is busy: \(n) requests are waiting; retry later"
        case .shuttingDown: return "the server is shutting down"
        case .model(let s): return s
        }
    }
}

/// One generation to run.
public struct GenerationRequest: Sendable {
    public var prompt: [Int32]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var stop: [String]
    /// Top alternatives to report per token; nil: no log-probabilities.
    public var logprobs: Int?

    public init(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters, stop: [String], logprobs: Int?) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.logprobs = logprobs
    }
}

/// A running request's handle: cancelling it (the client went away) frees its sequence at the
/// next step.
public final class GenerationHandle: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public func cancel() { lock.withLock { cancelled = true } }
    var isCancelled: Bool { lock.withLock { cancelled } }
}

/// Continuous batching: one thread owns the model; requests wait in a bounded queue and join the
/// running batch as sequences finish, up to `parallel`. New prompts are prefilled on their own;
/// every step then decodes one token of every running sequence in one forward pass.
///
/// Decode steps of up to 8 sequences give each sequence the same numbers as decoding it alone
/// (the backends' one-token kernels work row by row), so greedy answers do not depend on what
/// else is running.
public final class Engine: @unchecked Sendable {
    public let model: LanguageModel
    public let parallel: Int
    public let queueLimit: Int
    let metrics: ServerMetrics

    enum Job {
        case generate(GenerationRequest, AsyncStream<GenerationEvent>.Continuation, GenerationHandle)
        case exclusive(() -> Void)
    }

    private struct Running {
        var session: Session
        var state: GenerationState
        var request: GenerationRequest
        var events: AsyncStream<GenerationEvent>.Continuation
        var handle: GenerationHandle
        var next: Int32
    }

    private let condition = NSCondition()
    private var queue: [Job] = []
    private var stopping = false
    private var stopped = false
    private var sessions: [Session]
    private var thread: Thread?

    public init(model: LanguageModel, parallel: Int, queueLimit: Int, metrics: ServerMetrics) throws {
        self.model = model
        self.parallel = parallel
        self.queueLimit = queueLimit
        self.metrics = metrics
        sessions = try (0..<parallel).map { _ in try model.makeSession() }
    }

    /// Starts the engine's thread.
    public func start() {
        let thread = Thread { [self] in self.loop() }
        thread.name = "themis-engine"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Stops taking requests; running and queued ones finish first, then the thread ends.
    public func shutdown() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
        condition.withLock { while !stopped && thread != nil { condition.wait() } }
    }

    /// Queues a generation; its events arrive on the returned stream.
    public func submit(_ request: GenerationRequest) throws(EngineError) -> (AsyncStream<GenerationEvent>, GenerationHandle) {
        let (stream, continuation) = AsyncStream<GenerationEvent>.makeStream()
        let handle = GenerationHandle()
        try enqueue(.generate(request, continuation, handle))
        return (stream, handle)
    }

    /// Runs `body` on the engine's thread between decode steps (the judge uses the model itself).
    public func exclusive<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            do {
                try enqueue(.exclusive({ continuation.resume(with: Result { try body() }) }))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    private func enqueue(_ job: Job) throws(EngineError) {
        condition.lock()
        defer { condition.unlock() }
        if stopping { throw .shuttingDown }
        if queue.count >= queueLimit { throw .queueFull(queue.count) }
        queue.append(job)
        metrics.setQueueDepth(queue.count)
        condition.signal()
    }

    public var queueDepth: Int { condition.withLock { queue.count } }

    // MARK: the engine thread

    private func loop() {
        var running: [Running] = []
        while true {
            var admitted: [Job] = []
            condition.lock()
            while queue.isEmpty && running.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && running.isEmpty && stopping {
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            while !queue.isEmpty && running.count + admitted.filter({ $0.isGeneration }).count < parallel {
                admitted.append(queue.removeFirst())
            }
            metrics.setQueueDepth(queue.count)
            condition.unlock()

            for job in admitted {
                switch job {
                case .exclusive(let body): body()
                case .generate(let request, let events, let handle):
                    if let r = prefill(request, events: events, handle: handle, busy: running.map { $0.session }) { running.append(r) }
                }
            }
            metrics.setActive(running.count)
            running = step(running)
            metrics.setActive(running.count)
        }
    }

    /// Evaluates a new prompt in a free session and takes its first token.
    private func prefill(_ request: GenerationRequest, events: AsyncStream<GenerationEvent>.Continuation, handle: GenerationHandle,
                         busy: [Session]) -> Running? {
        guard !handle.isCancelled else { events.finish(); return nil }
        guard let session = sessions.first(where: { s in !busy.contains { $0 === s } }) else {
            events.yield(.failed(.model("no free sequence slot"))); events.finish(); return nil
        }
        do {
            let state = try GenerationState(tokenizer: model.tokenizer, prompt: request.prompt, maxTokens: request.maxTokens,
                                            sampling: request.sampling, stop: request.stop)
            session.truncate(to: 0)
            guard request.prompt.count < session.contextLength else {
                throw ModelError.contextOverflow(tokens: request.prompt.count, context: session.contextLength)
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let logits = try session.evaluateLast(request.prompt)
            metrics.addPromptTokens(request.prompt.count, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            var r = Running(session: session, state: state, request: request, events: events, handle: handle, next: 0)
            return advance(&r, logits: logits) ? r : nil
        } catch {
            events.yield(.failed(.model(String(describing: error))))
            events.finish()
            return nil
        }
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
            let lp = r.request.logprobs.map { Self.logprob(of: token, in: logits, top: $0) }
            r.events.yield(.token(text: step.text, logprob: lp))
        } else if !step.text.isEmpty {
            r.events.yield(.token(text: step.text, logprob: nil))
        }
        guard let next = step.next else {
            r.events.yield(.finished(reason: r.state.stopReason ?? .maxTokens, promptTokens: r.request.prompt.count,
                                     completionTokens: r.state.generated.count))
            r.events.finish()
            return false
        }
        r.next = next
        return true
    }

    /// One decode step of every running sequence, in one forward pass.
    private func step(_ running: [Running]) -> [Running] {
        var live = running.filter { r in
            if r.handle.isCancelled { r.events.finish(); return false }
            return true
        }
        guard !live.isEmpty else { return [] }
        let start = DispatchTime.now().uptimeNanoseconds
        let logits: [[Float]]
        do {
            logits = try Session.evaluateLast(live.map(\.session), appending: live.map { [$0.next] })
        } catch {
            for r in live {
                r.events.yield(.failed(.model(String(describing: error))))
                r.events.finish()
            }
            return []
        }
        metrics.addGeneratedTokens(live.count, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        var keep: [Running] = []
        for i in live.indices {
            var r = live[i]
            if advance(&r, logits: logits[i]) { keep.append(r) }
        }
        live = keep
        return live
    }

    /// log-softmax of the chosen token and the `top` most likely ones.
    static func logprob(of token: Int32, in logits: [Float], top: Int) -> TokenLogprob {
        var maxLogit = -Float.infinity
        for v in logits where v > maxLogit { maxLogit = v }
        var sum: Double = 0
        for v in logits { sum += Double(expf(v - maxLogit)) }
        let logZ = maxLogit + Float(Foundation.log(sum))
        var best: [(Int32, Float)] = []
        if top > 0 {
            // partial selection: keep the `top` largest seen so far
            for (i, v) in logits.enumerated() where best.count < top || v > best[best.count - 1].1 {
                let entry = (Int32(i), v)
                let at = best.firstIndex { $0.1 < v } ?? best.count
                best.insert(entry, at: at)
                if best.count > top { best.removeLast() }
            }
        }
        return TokenLogprob(token: token, logprob: logits[Int(token)] - logZ, top: best.map { ($0.0, $0.1 - logZ) })
    }
}

extension Engine.Job {
    var isGeneration: Bool { if case .generate = self { return true } else { return false } }
}
