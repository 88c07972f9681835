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
        #expect(batched.count == answer.count)
        #expect(session.tokens == prefix + answer)
        // one token at a time
        session.truncate(to: 0)
        var logits = try session.evaluateLast(prefix)
        for (i, id) in answer.enumerated() {
            let mx = logits.max()!
            let lse = mx + log(logits.map { exp(Double($0 - mx)) }.reduce(0, +)).asFloat
            let expected = logits[Int(id)] - lse
            // one-token steps use 8-bit activations (as llama.cpp does), batches use f32: they
            // agree to about 0.1 nats, well inside the 0.25 logit tolerance against llama.cpp
            #expect(abs(batched[i] - expected) < 0.2, "token \(i): \(batched[i]) vs \(expected)")
            logits = try session.evaluateLast([id])
        }
        #expect(batched.allSatisfy { $0 <= 0 && $0.isFinite })
    }
}

private extension Double {
    var asFloat: Float { Float(self) }
}
