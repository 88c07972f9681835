import Foundation
import Testing
import CPUBackend
import ThemisModel

/// Logits and greedy continuations compared with llama.cpp's (shared/reference/*.llamacpp.json).
@Suite("llama.cpp reference", .serialized)
struct ReferenceModelTests {
    struct Case {
        let kind: String
        let promptIDs: [Int32]
        let top20: [(Int32, Float)]
        let greedy: [Int32]
    }

    static func cases(_ referenceFile: String) throws -> [Case] {
        let url = ReferencePaths.shared.appendingPathComponent("reference/" + referenceFile)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (json["cases"] as! [[String: Any]]).compactMap { c in
            guard let kind = c["kind"] as? String, kind == "chat" || kind == "raw" else { return nil }
            return Case(kind: kind,
                        promptIDs: (c["prompt_ids"] as! [Int]).map { Int32($0) },
                        top20: (c["top20_first"] as! [[Double]]).map { (Int32($0[0]), Float($0[1])) },
                        greedy: (c["greedy_ids"] as! [Int]).map { Int32($0) })
        }
    }

    @Test("logits and greedy tokens follow llama.cpp", arguments: [
        ("smollm2-135m", "smollm2-135m-instruct-q4_1.llamacpp.json"),
        ("qwen2.5-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.llamacpp.json"),
    ])
    func followsLlamaCpp(model name: String, reference: String) throws {
        let model = try LanguageModel(path: try ReferencePaths.model(name), backend: CPUBackend(), contextLength: 2048)
        let session = try model.makeSession()
        var maeSum: Double = 0
        var prefixSum: Double = 0
        var checkedTop1 = 0
        let all = try Self.cases(reference)
        for (index, c) in all.enumerated() {
            session.truncate(to: 0)
            var logits = try session.evaluateLast(c.promptIDs)
            let mae = c.top20.map { abs(Double(logits[Int($0.0)] - $0.1)) }.reduce(0, +) / Double(c.top20.count)
            maeSum += mae
            if c.top20[0].1 - c.top20[1].1 >= 0.3 {
                checkedTop1 += 1
                #expect(Sampler.argmax(logits) == c.top20[0].0, "case \(index): first token differs from llama.cpp's top-1")
            }
            // greedy continuation, up to the reference's length, stopping after EOS as llama.cpp does
            var ours: [Int32] = []
            while ours.count < c.greedy.count {
                let id = Sampler.argmax(logits)
                ours.append(id)
                if id == model.tokenizer.eosID || ours.count == c.greedy.count { break }
                logits = try session.evaluateLast([id])
            }
            let common = zip(ours, c.greedy).prefix { $0 == $1 }.count
            prefixSum += Double(common) / Double(c.greedy.count)
            print("[\(name)] case \(index) (\(c.kind)): top-20 MAE \(String(format: "%.4f", mae)), greedy prefix \(common)/\(c.greedy.count)")
        }
        let meanMAE = maeSum / Double(all.count)
        let meanPrefix = prefixSum / Double(all.count)
        print("[\(name)] \(all.count) cases: mean top-20 logit MAE \(String(format: "%.4f", meanMAE)), "
              + "mean greedy common prefix \(String(format: "%.3f", meanPrefix)), top-1 checked on \(checkedTop1)")
        #expect(meanMAE <= 0.25)
        #expect(meanPrefix >= 0.5)
    }
}
