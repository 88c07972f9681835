import CPUBackend
import Foundation
import Testing
import ThemisBackend
import ThemisTestSupport
import ThemisModel
import VulkanBackend

/// The real models on the first Vulkan device (lavapipe on CI) against llama.cpp's recordings
/// and against the CPU backend.
@Suite("Vulkan end to end", .serialized,
       .enabled(if: !VulkanProvider().devices().devices.isEmpty, "no Vulkan device"))
struct VulkanEndToEndTests {
    static func vulkanBackend() throws -> any Backend {
        let provider = VulkanProvider()
        let device = try #require(provider.devices().devices.first)
        return try provider.makeBackend(on: device)
    }

    /// Greedy tokens from the logits after the prompt, stopping after EOS.
    static func greedy(_ session: Session, firstLogits: [Float], count: Int, eos: Int32?) throws -> [Int32] {
        var logits = firstLogits
        var ids: [Int32] = []
        while ids.count < count {
            let id = Sampler.argmax(logits)
            ids.append(id)
            if id == eos || ids.count == count { break }
            logits = try session.evaluateLast([id])
        }
        return ids
    }

    /// The CPU backend is compared twice: keeping one-token activations in f32 (`--exact-decode`,
    /// the arithmetic of the Vulkan kernels) and in its default fast path, which rounds them to
    /// 8 bits as llama.cpp's CPU backend does. That rounding moves decode logits by about 0.5
    /// on this model (the Vulkan backend stays within 1e-4 of the f64 reference backend), so
    /// only the first comparison can ask for near-identical tokens.
    /// Lavapipe takes about 45 s a case on a 2-core Zen 3: `make test` checks two of the twelve
    /// (one where the CPU's 8-bit path agrees, one where it does not), `make test-all` all of them.
    static let smolCases: [Int]? = TestTier.full ? nil : [0, 6]

    @Test("SmolLM2 chat cases: llama.cpp's top-1 and the CPU backend's first 8 greedy tokens")
    func smolLM2() throws {
        let reference = ReferenceModel.smolLM2
        let path = try TestSupport.modelPath(reference.modelFile)
        let gpu = try LanguageModel(path: path, backend: try Self.vulkanBackend(), contextLength: 512)
        let exact = try LanguageModel(path: path, backend: CPUBackend(roundDecodeActivations: false), contextLength: 512)
        let fast = try LanguageModel(path: path, backend: CPUBackend(), contextLength: 512)
        let sessions = try [gpu, exact, fast].map { try $0.makeSession() }
        let all = try reference.reference().chatCases
        #expect(all.count == 12)
        let picked = Self.smolCases ?? Array(all.indices)
        try #require(picked.allSatisfy(all.indices.contains), "the recording has \(all.count) chat cases")
        let cases = picked.map { all[$0] }
        var equalExact = 0, equalFast = 0, checkedTop1 = 0, prefixSum = 0
        for (index, c) in zip(picked, cases) {
            let prompt = try #require(c.promptIDs)
            let recorded = try #require(c.top20First)
            try #require(
                recorded.count >= 2 && recorded.allSatisfy { $0.count >= 2 },
                "case \(index): top20_first needs at least two [id, logit] pairs")
            let top20 = recorded.map { (Int32($0[0]), Float($0[1])) }
            var tokens: [[Int32]] = []
            for session in sessions {
                session.truncate(to: 0)
                let logits = try session.evaluateLast(prompt)
                if session === sessions[0], top20[0].1 - top20[1].1 >= 0.3 {
                    checkedTop1 += 1
                    #expect(Sampler.argmax(logits) == top20[0].0, "case \(index): first token differs from llama.cpp's top-1")
                }
                tokens.append(try Self.greedy(session, firstLogits: logits, count: 8, eos: gpu.tokenizer.eosID))
            }
            if tokens[0] == tokens[1] { equalExact += 1 }
            if tokens[0] == tokens[2] { equalFast += 1 }
            let llama = try #require(c.greedyIDs)
            prefixSum += zip(tokens[0], llama).prefix { $0 == $1 }.count
            print("[vulkan smollm2] case \(index): vulkan \(tokens[0]) cpu f32 \(tokens[0] == tokens[1] ? "equal" : "\(tokens[1])") "
                  + "cpu 8-bit \(tokens[0] == tokens[2] ? "equal" : "\(tokens[2])")")
        }
        print("[vulkan smollm2] 8 greedy tokens equal in \(equalExact)/\(cases.count) cases to the CPU's with f32 decode "
              + "activations, \(equalFast)/\(cases.count) to its 8-bit default; top-1 vs llama.cpp checked on \(checkedTop1); "
              + "common prefix with llama.cpp's greedy tokens \(prefixSum)/\(8 * cases.count)")
        // up to one case in six may differ (a near-tie flipped by f32 summation order on a GPU)
        #expect(equalExact >= cases.count - cases.count / 6)
    }

    @Test("Qwen2.5 chat case: 8 greedy tokens equal to the CPU backend's")
    func qwen25() throws {
        let reference = ReferenceModel.qwen25Coder
        let path = try TestSupport.modelPath(reference.modelFile)
        let c = try #require(reference.reference().chatCases.first)
        let prompt = try #require(c.promptIDs)
        var results: [[Int32]] = []
        for backend in [try Self.vulkanBackend(), CPUBackend(roundDecodeActivations: false)] {
            let model = try LanguageModel(path: path, backend: backend, contextLength: 256)
            let session = try model.makeSession()
            let logits = try session.evaluateLast(prompt)
            results.append(try Self.greedy(session, firstLogits: logits, count: 8, eos: model.tokenizer.eosID))
        }
        print("[vulkan qwen2.5] vulkan \(results[0]) cpu \(results[1])")
        #expect(results[0] == results[1])
        #expect(results[0].count == 8)
    }
}
