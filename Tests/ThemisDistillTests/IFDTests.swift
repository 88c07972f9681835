import CPUBackend
import Foundation
import Testing
import ThemisClient
import ThemisDistill
import ThemisModel

/// IFD against the scoring API and against llama.cpp's log-probabilities.
@Suite("distillation: IFD", .serialized)
struct IFDTests {
    static let models = ProcessInfo.processInfo.environment["THEMIS_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
        ?? NSHomeDirectory() + "/.cache/themis/models"
    static let files = ["SmolLM2-135M-Instruct.Q4_1.gguf", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"]
    static let records = [
        ("What is the capital of France?", "The capital of France is Paris."),
        ("Write a haiku about autumn leaves.", "Red leaves drift and fall,\nwhispering to the cold ground,\nautumn says goodbye."),
        ("List three prime numbers.", "Bananas are yellow and grow in bunches."),
    ]

    static func model(_ file: String) throws -> LanguageModel {
        try LanguageModel(path: models + "/" + file, backend: CPUBackend(), contextLength: 1024)
    }

    /// The tokens IFD scores: the chat prompt, the start token, the answer.
    static func conditionedPrefix(_ client: LocalModel, _ q: String) throws -> [Int32] { try client.tokens(.user(q)) }
    static func startToken(_ client: LocalModel) -> [Int32] { [client.tokenizer.bosID ?? client.tokenizer.eosID ?? 0] }
    static func answerTokens(_ client: LocalModel, _ a: String) -> [Int32] { client.tokenizer.encode(a, parseSpecial: false, addBOS: false) }

    @Test(arguments: files) func ifdEqualsTheScoringAPI(_ file: String) async throws {
        let model = try Self.model(file)
        let client = try LocalModel(model: try Self.model(file), name: file)
        let scorer = try IFDScorer(client: client)
        let session = try model.makeSession()
        var inputs: [[String: Any]] = []
        for (q, a) in Self.records {
            let s = try await scorer.score(instruction: q, answer: a)
            let answer = Self.answerTokens(client, a)
            let prefix = try Self.conditionedPrefix(client, q)
            let start = Self.startToken(client)
            let conditioned = try session.logProbabilities(prefix: prefix, continuation: answer)
            let unconditioned = try session.logProbabilities(prefix: start, continuation: answer)
            let ce = { (lp: [Float]) in -lp.reduce(0.0) { $0 + Double($1) } / Double(lp.count) }
            #expect(s.conditioned == ce(conditioned) && s.unconditioned == ce(unconditioned))
            #expect(s.ifd == ce(conditioned) / ce(unconditioned))
            #expect(s.answerTokens == answer.count)
            let record: [String: Any] = ["model_file": file, "instruction": q, "answer_text": a, "conditioned_prefix": prefix.map(Int.init),
                                         "start": start.map(Int.init), "answer": answer.map(Int.init)]
            inputs.append(record)
        }
        // the off-topic answer is the one the instruction helps least
        var ifds: [Double] = []
        for r in Self.records { ifds.append(try await scorer.score(instruction: r.0, answer: r.1).ifd) }
        #expect(ifds[2] > ifds[0], "\(ifds)")
        let ppl = try await IFDScorer(client: client, metric: .perplexityRatio).score(instruction: Self.records[0].0, answer: Self.records[0].1)
        #expect(abs(ppl.ifd - Foundation.exp(ppl.conditioned - ppl.unconditioned)) < 1e-12)
        if let path = ProcessInfo.processInfo.environment["THEMIS_WRITE_IFD_INPUT"] {
            var all = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))) as? [[String: Any]] ?? []
            all.removeAll { $0["model_file"] as? String == file }
            try JSONSerialization.data(withJSONObject: all + inputs).write(to: URL(fileURLWithPath: path))
        }
    }

    /// llama.cpp's log-probabilities of the same tokens (scripts/ifd-reference.py). Both engines
    /// round activations to 8 bits in their matmuls (ours: up to 8 rows at a time through the
    /// decode dots, longer pieces through the byte GEMM where the CPU has VNNI, else f32 panels),
    /// and on these short texts the means are sensitive to it: a value rounded the other way
    /// moves the next layer by a whole quantum. Per token, with the byte GEMM: Qwen within 0.09
    /// nats of llama.cpp, SmolLM2 up to 0.39 (a token at -7.8; 0.3 and under with f32 panels). Measured with the integer block sums held equal and only the order of the float
    /// adds changed (lanes of the block dot reversed): SmolLM2's conditioned mean of the first
    /// record moved 0.389 -> 0.424 -> 0.407 (llama.cpp 0.396), Qwen's unconditioned 7.07 -> 7.18 ->
    /// 7.19 (llama.cpp 6.94), IFD up to 7% of 0.089. The bounds sit above that noise and far
    /// below what a wrong token or prefix does (whole nats): per token 0.5 nats, means 5% + 0.03
    /// nats, IFD 5% + 0.01.
    @Test func ifdAgreesWithLlamaCpp() async throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/ifd-reference", withExtension: "json"))
        let reference = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let records = try #require(reference["records"] as? [[String: Any]])
        #expect(records.count == 6)
        for file in Self.files {
            let model = try Self.model(file)
            let client = try LocalModel(model: try Self.model(file), name: file)
            let scorer = try IFDScorer(client: client)
            let session = try model.makeSession()
            for r in records where r["model_file"] as? String == file {
                let prefix = try #require(r["conditioned_prefix"] as? [Int]).map(Int32.init)
                let start = try #require(r["start"] as? [Int]).map(Int32.init)
                let answer = try #require(r["answer"] as? [Int]).map(Int32.init)
                let instruction = try #require(r["instruction"] as? String)
                let answerText = try #require(r["answer_text"] as? String)
                #expect(prefix == (try Self.conditionedPrefix(client, instruction)), "the prompt tokens changed: regenerate the fixture")
                let ours = try session.logProbabilities(prefix: prefix, continuation: answer)
                let theirs = try #require(r["llama_conditioned"] as? [Double])
                let worst = try #require(zip(ours, theirs).map { abs(Double($0) - $1) }.max())
                #expect(worst < 0.5, "\(file): conditioned log-probabilities differ by up to \(worst)")
                let s = try await scorer.score(instruction: instruction, answer: answerText)
                let ceC = -theirs.reduce(0, +) / Double(theirs.count)
                let u = try #require(r["llama_unconditioned"] as? [Double])
                let ceU = -u.reduce(0, +) / Double(u.count)
                #expect(abs(s.conditioned - ceC) <= 0.05 * ceC + 0.03 && abs(s.unconditioned - ceU) <= 0.05 * ceU + 0.03, "\(file): \(s) vs \(ceC), \(ceU)")
                let llamaIFD = try #require(r["llama_ifd"] as? Double)
                #expect(abs(s.ifd - llamaIFD) <= 0.05 * llamaIFD + 0.01, "\(file): IFD \(s.ifd) vs \(llamaIFD)")
                _ = (start, client)
            }
        }
    }
}
