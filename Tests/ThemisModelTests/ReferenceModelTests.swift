import Foundation
import Testing
import CPUBackend
import ThemisModel

/// Logits and greedy continuations compared with llama.cpp's (shared/reference/*.llamacpp.json).
@Suite("llama.cpp reference", .serialized)
struct ReferenceModelTests {
    @Test("logits and greedy tokens follow llama.cpp", arguments: ReferenceModel.allCases)
    func followsLlamaCpp(_ reference: ReferenceModel) throws {
        let path = try TestSupport.modelPath(reference.modelFile)
        let model = try LanguageModel(path: path, backend: CPUBackend(), contextLength: 2048)
        let session = try model.makeSession()
        let cases = try reference.reference().cases.filter { $0.kind == "chat" || $0.kind == "raw" }
        var maeSum = 0.0, prefixSum = 0.0
        var checkedTop1 = 0
        for (index, c) in cases.enumerated() {
            let recorded = try #require(c.top20First)
            try #require(
                recorded.count >= 2 && recorded.allSatisfy { $0.count >= 2 },
                "case \(index): top20_first needs at least two [id, logit] pairs")
            let top20 = recorded.map { (Int($0[0]), Float($0[1])) }
            let greedy = try #require(c.greedyIDs)
            session.truncate(to: 0)
            var logits = try session.evaluateLast(try #require(c.promptIDs))
            try #require(
                top20.allSatisfy { logits.indices.contains($0.0) },
                "case \(index): a top-20 id is outside the \(logits.count) logits")
            let mae = top20.map { abs(Double(logits[$0.0] - $0.1)) }.reduce(0, +) / Double(top20.count)
            maeSum += mae
            if top20[0].1 - top20[1].1 >= reference.llamaCppBounds.topLead {
                checkedTop1 += 1
                #expect(Int(Sampler.argmax(logits)) == top20[0].0, "case \(index): first token differs from llama.cpp's top-1")
            }
            // greedy continuation, up to the reference's length, stopping after EOS as llama.cpp does
            var ours: [Int32] = []
            while ours.count < greedy.count {
                let id = Sampler.argmax(logits)
                ours.append(id)
                if reference.stops(id, tokenizer: model.tokenizer) || ours.count == greedy.count { break }
                logits = try session.evaluateLast([id])
            }
            let common = zip(ours, greedy).prefix { $0 == $1 }.count
            prefixSum += Double(common) / Double(greedy.count)
            print("[\(reference)] case \(index) (\(c.kind)): top-20 MAE \(String(format: "%.4f", mae)), "
                  + "greedy prefix \(common)/\(greedy.count)")
        }
        let meanMAE = maeSum / Double(cases.count)
        let meanPrefix = prefixSum / Double(cases.count)
        print("[\(reference)] \(cases.count) cases: mean top-20 logit MAE \(String(format: "%.4f", meanMAE)), "
              + "mean greedy common prefix \(String(format: "%.3f", meanPrefix)), top-1 checked on \(checkedTop1)")
        #expect(meanMAE <= reference.llamaCppBounds.meanError)
        #expect(meanPrefix >= 0.5)
    }

    /// transformers runs the model's own reference implementation in f32 on the dequantised
    /// weights: with one-token activations kept in f32 (`--exact-decode`), our logits must equal
    /// its to within float rounding, and so must the top token.
    @Test("logits equal transformers' exact ones", arguments: ReferenceModel.allCases)
    func equalsTransformers(_ reference: ReferenceModel) throws {
        struct Recording: Decodable {
            struct Case: Decodable { let prompt_ids: [Int32]; let logits: [[Double]]; let argmax: Int32 }
            let cases: [Case]
        }
        let recording = try JSONDecoder().decode(Recording.self, from: Data(contentsOf: reference.transformersFile))
        let model = try LanguageModel(path: try TestSupport.modelPath(reference.modelFile),
                                      backend: CPUBackend(roundDecodeActivations: false), contextLength: 2048)
        var worst = 0.0
        for (index, c) in recording.cases.enumerated() {
            let logits = try model.makeSession().evaluateLast(c.prompt_ids)
            let diff = c.logits.map { abs(Double(logits[Int($0[0])]) - $0[1]) }.max() ?? .infinity
            worst = max(worst, diff)
            #expect(diff <= 0.02, "case \(index): a logit differs from transformers' by \(diff)")
            #expect(Sampler.argmax(logits) == c.argmax, "case \(index): top token differs from transformers'")
        }
        print("[\(reference)] \(recording.cases.count) cases: largest difference from transformers \(worst)")
    }
}
