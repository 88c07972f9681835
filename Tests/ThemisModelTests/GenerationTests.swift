import Foundation
import Testing
import CPUBackend
import ThemisModel

/// Generation, sampling and scoring on the real SmolLM2 model.
@Suite("generation and scoring", .serialized)
struct GenerationTests {
    static func model() throws -> LanguageModel {
        try LanguageModel(path: TestSupport.modelPath(ReferenceModel.smolLM2.modelFile), backend: CPUBackend(),
                          contextLength: 512)
    }

    static func chatPrompt(_ model: LanguageModel, _ text: String) throws -> [Int32] {
        model.tokenizer.encode(try model.chatTemplate().render([ChatMessage(role: .user, content: text)]),
                               parseSpecial: true)
    }

    @Test func greedyStopsAtEndOfTurn() throws {
        let model = try Self.model()
        let session = try model.makeSession()
        var streamed = ""
        let result = try session.generate(prompt: Self.chatPrompt(model, "What is the capital of France? Answer in one sentence."),
                                          maxTokens: 32, sampling: .greedy) { streamed += $0 }
        #expect(result.text == "The capital of France is Paris.")
        #expect(streamed == result.text)
        #expect(result.stopReason == .endOfGeneration)
    }

    @Test func stopStringEndsGenerationAndIsNotIncluded() throws {
        let model = try Self.model()
        let session = try model.makeSession()
        var streamed = ""
        let result = try session.generate(prompt: Self.chatPrompt(model, "What is the capital of France? Answer in one sentence."),
                                          maxTokens: 32, sampling: .greedy, stop: ["Paris"]) { streamed += $0 }
        #expect(result.text == "The capital of France is ")
        #expect(streamed == result.text, "streamed text must never include a stop string")
        #expect(result.stopReason == .stopString)
    }

    @Test func maxTokensAndContextLimits() throws {
        let model = try Self.model()
        let session = try model.makeSession(contextLength: 64)
        let prompt = try Self.chatPrompt(model, "Explain what a hash table is to a ten-year-old.")
        let short = try session.generate(prompt: prompt, maxTokens: 5, sampling: .greedy)
        #expect(short.tokenIDs.count == 5 && short.stopReason == .maxTokens)
        let full = try session.generate(prompt: prompt, maxTokens: 500, sampling: .greedy)
        #expect(full.stopReason == .contextFull || full.stopReason == .endOfGeneration)
        // the cache holds at most 64 tokens; the last sampled token is returned without being fed
        #expect(prompt.count + full.tokenIDs.count <= 65)
        #expect(session.tokens.count <= 64)
        #expect(throws: ModelError.self) {
            try session.generate(prompt: Array(repeating: 42, count: 64), maxTokens: 1, sampling: .greedy)
        }
    }

    @Test func seededSamplingIsReproducible() throws {
        let model = try Self.model()
        let session = try model.makeSession()
        var p = SamplingParameters()
        p.temperature = 1.0
        p.seed = 1234
        let prompt = try Self.chatPrompt(model, "Write a haiku about autumn leaves.")
        let a = try session.generate(prompt: prompt, maxTokens: 24, sampling: p)
        let b = try session.generate(prompt: prompt, maxTokens: 24, sampling: p)
        #expect(a.tokenIDs == b.tokenIDs)
        p.seed = 99
        let c = try session.generate(prompt: prompt, maxTokens: 24, sampling: p)
        #expect(c.tokenIDs != a.tokenIDs)
    }

    @Test func samplerFilters() throws {
        // logits with a clear order: token 0 best
        let logits: [Float] = [5, 4, 3, 0, -2, -10]
        var p = SamplingParameters()
        p.temperature = 1
        p.seed = 7
        p.topK = 1
        var s = try Sampler(p)
        for _ in 0..<20 { #expect(s.sample(logits, history: []) == 0) }
        p.topK = 0
        p.topP = 0.5  // token 0 alone has p = 0.66
        s = try Sampler(p)
        for _ in 0..<20 { #expect(s.sample(logits, history: []) == 0) }
        p.topP = 1
        p.minP = 0.3  // keeps tokens with p >= 0.3 * p(0): tokens 0 and 1
        s = try Sampler(p)
        let seen = Set((0..<200).map { _ in s.sample(logits, history: []) })
        #expect(seen == [0, 1])
        // a repetition penalty demotes a recent token below the runner-up
        var g = SamplingParameters.greedy
        g.repetitionPenalty = 2
        s = try Sampler(g)
        #expect(s.sample([4, 3], history: [0]) == 1)
        #expect(Sampler.argmax(logits) == 0)
    }

    @Test func invalidSamplingIsRejected() {
        var p = SamplingParameters()
        p.topP = 0
        #expect(throws: ModelError.self) { try p.validate() }
        p = SamplingParameters()
        p.temperature = -1
        #expect(throws: ModelError.self) { try Sampler(p) }
    }

    @Test func batchedScoringEqualsStepByStep() throws {
        let model = try Self.model()
        let session = try model.makeSession()
        let prefix = try Self.chatPrompt(model, "What is 17 multiplied by 23?")
        let answer = model.tokenizer.encode("17 multiplied by 23 is 391.", parseSpecial: false)
        let batched = try session.logProbabilities(prefix: prefix, continuation: answer)
        try #require(batched.count == answer.count)
        #expect(session.tokens == prefix + answer)
        // one token at a time
        session.truncate(to: 0)
        var logits = try session.evaluateLast(prefix)
        for (i, id) in answer.enumerated() {
            let mx = try #require(logits.max())
            let lse = mx + log(logits.map { exp(Double($0 - mx)) }.reduce(0, +)).asFloat
            try #require(logits.indices.contains(Int(id)), "token \(i): id \(id) is outside the \(logits.count) logits")
            let expected = logits[Int(id)] - lse
            // both round activations to 8 bits (as llama.cpp does), one-token steps through the
            // decode dots, the batch through the byte GEMM where the CPU has VNNI (else in f32):
            // the same rounding of each row, but float sums in another order, and on SmolLM2 a
            // value rounded the other way moves the next layers (see IFDTests). Measured: most
            // tokens within 0.03 nats, the largest 0.28 (a token at -4; 0.16 with f32 batches);
            // a wrong position or mask costs whole nats
            #expect(abs(batched[i] - expected) < 0.35, "token \(i): \(batched[i]) vs \(expected)")
            logits = try session.evaluateLast([id])
        }
        #expect(batched.allSatisfy { $0 <= 0 && $0.isFinite })
    }
}

/// Prompts longer than one forward batch, and prefix reuse, on the real SmolLM2 model.
@Suite("long prompts and prefix reuse", .serialized)
struct PrefixReuseTests {
    static let path = { try? TestSupport.modelPath(ReferenceModel.smolLM2.modelFile) }()

    @Test func promptsLongerThanOneBatchGiveTheLastRowsLogits() throws {
        let path = try #require(Self.path)
        // f32 one-token activations: a chunk of one token must compute what a longer batch does
        let small = try LanguageModel(path: path, backend: CPUBackend(roundDecodeActivations: false), contextLength: 256, maxBatch: 16)
        let large = try LanguageModel(path: path, backend: CPUBackend(roundDecodeActivations: false), contextLength: 256)
        let prompt = small.tokenizer.encode(String(repeating: "The judge reads every response with care. ", count: 6),
                                            parseSpecial: false)
        #expect(prompt.count > 40)
        let a = try small.makeSession().evaluateLast(prompt)
        let b = try large.makeSession().evaluateLast(prompt)
        let diff = try #require(zip(a, b).map { abs($0 - $1) }.max())
        #expect(diff < 1e-3, "max |Δlogit| \(diff) between 16-token and 512-token batches")
        // several rows wanted across chunk boundaries
        let rows = try small.makeSession().evaluate(prompt, outputs: 10..<30)
        let reference = try large.makeSession().evaluate(prompt, outputs: 10..<30)
        let rowsDiff = try #require(zip(rows, reference).map { abs($0 - $1) }.max())
        #expect(rowsDiff < 1e-3)
    }

    @Test func severalSequencesInOnePassEqualEachAlone() throws {
        let path = try #require(Self.path)
        let model = try LanguageModel(path: path, backend: CPUBackend(roundDecodeActivations: false), contextLength: 128)
        let prompts = ["The capital of France is", "Two plus two equals", "A haiku about rain:"].map {
            model.tokenizer.encode($0, parseSpecial: false)
        }
        let batched = try prompts.map { _ in try model.makeSession() }
        let alone = try prompts.map { _ in try model.makeSession() }
        // a prefill of different lengths, then three one-token steps, all sequences together
        var together = try Session.evaluateLast(batched, appending: prompts)
        var separate = try zip(alone, prompts).map { try $0.evaluateLast($1) }
        for step in 0..<3 {
            try #require(together.count >= prompts.count, "step \(step): \(together.count) logit rows for \(prompts.count) sequences")
            for i in prompts.indices {
                let diff = try #require(zip(together[i], separate[i]).map { abs($0 - $1) }.max())
                #expect(diff < 1e-3, "step \(step) sequence \(i): max |Δlogit| \(diff)")
            }
            let next = separate.map { [Sampler.argmax($0)] }
            together = try Session.evaluateLast(batched, appending: next)
            separate = try zip(alone, next).map { try $0.evaluateLast($1) }
        }
        #expect(batched.map(\.tokens) == alone.map(\.tokens))
    }

    @Test func snapshotRestoreAndReuseGiveTheSameLogits() throws {
        let path = try #require(Self.path)
        let model = try LanguageModel(path: path, backend: CPUBackend(), contextLength: 256)
        let head = model.tokenizer.encode("You are a careful judge of answers to questions.\n", parseSpecial: false)
        let tails = ["Question: what is 2 + 2? Answer: 4", "Question: name a colour. Answer: blue"].map {
            model.tokenizer.encode($0, parseSpecial: false)
        }
        let session = try model.makeSession()
        _ = try session.evaluate(head, outputs: 0..<0)
        let snapshot = try session.snapshot(count: head.count)
        for tail in tails {
            try session.restore(snapshot)
            #expect(session.tokens == head)
            let (reused, count) = try session.evaluateReusing(head + tail)
            #expect(count == head.count)
            let fresh = try model.makeSession().evaluateLast(head + tail)
            let diff = try #require(zip(reused, fresh).map { abs($0 - $1) }.max())
            #expect(diff < 1e-3)
        }
        // scoring candidates leaves the session as it was
        let logits = try session.evaluateReusing(head + tails[0]).logits
        let before = session.tokens
        let scores = try session.scoreContinuations([[Int32(28)], [Int32(29), Int32(30)]], lastLogits: logits)
        #expect(session.tokens == before)
        #expect(scores.count == 2 && scores.allSatisfy { $0 < 0 })
    }
}

private extension Double {
    var asFloat: Float { Float(self) }
}
