import CPUBackend
import Foundation
import Testing
import ThemisBackend
import ThemisModel
import VulkanBackend

/// Random adapters written by our own GGUF writer, committed beside llama.cpp's logits with them
/// applied (`scripts/record-lora-reference`; `THEMIS_RECORD_LORA=1` makes the first test write the
/// adapters into `Reference/` instead of comparing).
struct TestAdapter: Sendable, CustomTestStringConvertible {
    let name: String
    let model: String
    let blocks: [Int]
    let rank: Int
    let alpha: Float
    let seed: UInt64
    /// Tiny f32 models: every prompt row recorded; real models: the last row's top 20.
    var tiny: Bool { model.hasPrefix("tiny-") }

    var testDescription: String { name }

    static let all = [
        TestAdapter(name: "tiny-llama", model: "tiny-llama.gguf", blocks: [0, 1, 2], rank: 4, alpha: 8, seed: 1),
        TestAdapter(name: "tiny-qwen2", model: "tiny-qwen2.gguf", blocks: [0, 1], rank: 3, alpha: 3, seed: 2),
        TestAdapter(name: "smollm2-135m", model: "SmolLM2-135M-Instruct.Q4_1.gguf", blocks: [0, 14, 29], rank: 2,
                    alpha: 4, seed: 3),
    ]

    var modelPath: String {
        get throws {
            tiny ? TestSupport.ownReferenceDirectory.appendingPathComponent(model).path : try TestSupport.modelPath(model)
        }
    }
    var adapterPath: String { TestSupport.ownReferenceDirectory.appendingPathComponent("lora-\(name).gguf").path }
    var recordingPath: URL { TestSupport.ownReferenceDirectory.appendingPathComponent("lora-\(name).llamacpp.json") }

    /// The adapter's matrices: every target of `blocks`, A uniform in ±1/sqrt(inputs), B in ±0.5
    /// (so the adapter moves logits far beyond the tolerances), from a SplitMix64 stream.
    func matrices(_ config: ModelConfig) -> [LoRAAdapterFile.Matrices] {
        var state = seed
        func next() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 24) * 2 - 1
        }
        return blocks.flatMap { block in
            LoRATarget.allCases.map { target in
                let (outputs, inputs) = target.shape(config)
                let a = (0..<rank * inputs).map { _ in next() / Float(inputs).squareRoot() }
                let b = (0..<outputs * rank).map { _ in next() * 0.5 }
                return LoRAAdapterFile.Matrices(block: block, target: target, rank: rank, a: a, b: b)
            }
        }
    }
}

@Suite("LoRA adapters", .serialized)
struct LoRATests {
    struct Recording: Decodable {
        struct Case: Decodable {
            let prompt_ids: [Int32]
            let logits_rows: [[Float]]?
            let logits_last: [Float]?
            let top20_first: [[Double]]?
            let greedy_ids: [Int32]
        }
        let scale: Float
        let cases: [Case]
    }

    @Test("our writer writes the committed adapters, byte for byte", arguments: TestAdapter.all)
    func committedAdaptersAreOurs(_ adapter: TestAdapter) throws {
        let config = try ModelConfig(file: GGUFFile(path: try adapter.modelPath))
        let record = ProcessInfo.processInfo.environment["THEMIS_RECORD_LORA"] == "1"
        let path = record ? adapter.adapterPath : NSTemporaryDirectory() + "themis-lora-\(adapter.name)-\(getpid()).gguf"
        try LoRAAdapterFile.write(to: path, config: config, alpha: adapter.alpha, matrices: adapter.matrices(config),
                                  name: "themis test adapter \(adapter.name)")
        guard !record else { return }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: adapter.adapterPath)))
        // and it reads back as written
        let file = try LoRAAdapterFile(path: path, config: config)
        let written = adapter.matrices(config)
        #expect(file.entries.count == written.count && file.alpha == adapter.alpha)
        for (e, m) in zip(file.entries, written) {
            #expect(e.block == m.block && e.target == m.target && e.rank == m.rank)
            #expect(file.values(e.a) == m.a && file.values(e.b) == m.b)
        }
    }

    static func backend(_ device: String) throws -> (any Backend)? {
        if device == "cpu" { return CPUBackend(roundDecodeActivations: false) }
        let provider = VulkanProvider()
        guard let d = provider.devices().devices.first else { return nil }
        return try provider.makeBackend(on: d)
    }

    /// Logits of every row of `ids` (at most 64 rows) on a fresh session.
    static func rows(_ model: LanguageModel, _ ids: [Int32]) throws -> [[Float]] {
        let vocab = model.config.vocabularySize
        let all = try model.makeSession().evaluate(ids, outputs: 0..<ids.count)
        return (0..<ids.count).map { Array(all[$0 * vocab..<($0 + 1) * vocab]) }
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    @Test("llama.cpp applying our adapter gives our logits", arguments: TestAdapter.all, ["cpu", "vulkan"])
    func followsLlamaCpp(_ adapter: TestAdapter, _ device: String) throws {
        guard let backend = try Self.backend(device) else { return }
        if !adapter.tiny && device == "vulkan" { return }  // lavapipe: the tiny models cover the shaders
        let recording = try JSONDecoder().decode(Recording.self, from: Data(contentsOf: adapter.recordingPath))
        let lora = LoRAOptions(path: adapter.adapterPath, scale: recording.scale)
        let model = try LanguageModel(path: try adapter.modelPath, backend: backend, contextLength: 512, lora: lora)
        let base = try LanguageModel(path: try adapter.modelPath, backend: backend, contextLength: 512)
        var worst: Float = 0, effect: Float = 0
        var maeSum = 0.0
        for (index, c) in recording.cases.enumerated() {
            let ours = try Self.rows(model, c.prompt_ids)
            let plain = try Self.rows(base, c.prompt_ids)
            if let rows = c.logits_rows ?? c.logits_last.map({ [$0] }) {
                let first = c.logits_rows == nil ? ours.count - 1 : 0
                for (j, row) in rows.enumerated() {
                    let r = first + j
                    let diff = Self.maxDifference(ours[r], row)
                    worst = max(worst, diff)
                    effect = max(effect, Self.maxDifference(plain[r], row))
                    #expect(diff <= ArchitectureReferenceTests.tolerance("llama"), "case \(index) row \(r): \(diff)")
                }
            } else {
                let top = try #require(c.top20_first)
                let last = ours[ours.count - 1], plainLast = plain[plain.count - 1]
                let mae = top.map { abs(Double(last[Int($0[0])]) - $0[1]) }.reduce(0, +) / Double(top.count)
                let baseMAE = top.map { abs(Double(plainLast[Int($0[0])]) - $0[1]) }.reduce(0, +) / Double(top.count)
                maeSum += mae
                effect = max(effect, Float(baseMAE))
                worst = max(worst, Float(mae))
            }
            if adapter.tiny {
                var greedy: [Int32] = []
                let session = try model.makeSession()
                var last = try session.evaluateLast(c.prompt_ids)
                while greedy.count < c.greedy_ids.count {
                    greedy.append(Sampler.argmax(last))
                    last = try session.evaluateLast([greedy.last!])
                }
                #expect(greedy == c.greedy_ids, "case \(index): greedy tokens differ")
            }
        }
        if adapter.tiny {
            // the adapter matters: without it the logits are far from llama.cpp's with it
            #expect(effect > 100 * max(worst, 1e-4), "the adapter moves logits by \(effect) only")
            print("[lora \(adapter.name) on \(device)] largest logit difference from llama.cpp \(worst); without the adapter \(effect)")
        } else {
            // the bound the real-model tests hold llama.cpp to (8-bit activations on its side), and
            // an adapter that moves the top 20 much further than that
            let mean = maeSum / Double(recording.cases.count)
            #expect(mean <= ReferenceModel.smolLM2.llamaCppBounds.meanError, "mean top-20 MAE \(mean)")
            #expect(effect > 4 * worst, "the adapter moves the top 20 by \(effect) only")
            print("[lora \(adapter.name) on \(device)] top-20 MAE from llama.cpp: mean \(mean), largest \(worst); without the adapter up to \(effect)")
        }
    }

    @Test("the merged model equals the adapter applied on the fly", arguments: TestAdapter.all)
    func mergedEqualsOnTheFly(_ adapter: TestAdapter) throws {
        let path = NSTemporaryDirectory() + "themis-merged-\(adapter.name)-\(getpid()).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let modelPath = try adapter.modelPath
        let file = try GGUFFile(path: modelPath)
        let lora = try LoRAAdapterFile(path: adapter.adapterPath, config: try ModelConfig(file: file))
        try LoRAMerge.merge(model: file, adapter: lora, scale: 0.75, type: .f32, to: path)
        let backend = CPUBackend(roundDecodeActivations: false)
        let merged = try LanguageModel(path: path, backend: backend, contextLength: 512)
        let onTheFly = try LanguageModel(path: modelPath, backend: backend, contextLength: 512,
                                         lora: LoRAOptions(path: adapter.adapterPath, scale: 0.75))
        let base = try LanguageModel(path: modelPath, backend: backend, contextLength: 512)
        let recording = try JSONDecoder().decode(Recording.self, from: Data(contentsOf: adapter.recordingPath))
        var worst: Float = 0, effect: Float = 0
        for c in recording.cases {
            let a = try Self.rows(merged, c.prompt_ids), b = try Self.rows(onTheFly, c.prompt_ids)
            let plain = try Self.rows(base, c.prompt_ids)
            for r in a.indices {
                worst = max(worst, Self.maxDifference(a[r], b[r]))
                effect = max(effect, Self.maxDifference(plain[r], b[r]))
            }
        }
        #expect(worst <= 1e-3, "merged and on-the-fly logits differ by \(worst)")
        #expect(effect > 0.1, "the adapter moves logits by \(effect) only")
        // every tensor the adapter does not touch is copied as it was
        let out = try GGUFFile(path: path)
        #expect(out.metadataKeys == file.metadataKeys && out.tensors.map(\.name) == file.tensors.map(\.name))
        let adapted = Set(lora.entries.map { $0.target.weightName(block: $0.block) })
        for (x, y) in zip(file.tensors, out.tensors) where !adapted.contains(x.name) {
            #expect(x.type == y.type && Array(file.bytes(of: x)) == Array(out.bytes(of: y)), "\(x.name) changed")
        }
        print("[merge \(adapter.name)] merged vs on the fly: \(worst); adapter effect \(effect)")
    }

    /// `adapters/smollm2-135m-hh-harmless` (the first full training run) is an adapter of
    /// SmolLM2's every block and projection, rank 8, in f16, and it changes the model's output.
    @Test func theCommittedAdapterFitsSmolLM2() throws {
        let path = TestSupport.packageRoot.appendingPathComponent("adapters/smollm2-135m-hh-harmless/adapter.gguf").path
        let model = try TestSupport.modelPath("SmolLM2-135M-Instruct.Q4_1.gguf")
        let config = try ModelConfig(file: GGUFFile(path: model))
        let adapter = try LoRAAdapterFile(path: path, config: config)
        #expect(adapter.entries.count == config.blockCount * LoRATarget.allCases.count && adapter.alpha == 16)
        #expect(adapter.entries.allSatisfy { $0.rank == 8 && $0.a.type == .f16 && $0.b.type == .f16 })
        let base = try LanguageModel(path: model, backend: CPUBackend(threads: 2), contextLength: 64)
        let adapted = try LanguageModel(path: model, backend: CPUBackend(threads: 2), contextLength: 64, lora: LoRAOptions(path: path))
        let prompt = base.tokenizer.encode("<|im_start|>user\nWhich is better, A or B?<|im_end|>\n<|im_start|>assistant\n", parseSpecial: true)
        let x = try base.makeSession().evaluateLast(prompt), y = try adapted.makeSession().evaluateLast(prompt)
        #expect(zip(x, y).map { abs($0 - $1) }.max()! > 0.5)
    }

    @Test("an adapter that does not fit is one clear error naming what is wrong")
    func badAdaptersAreClearErrors() throws {
        let llama = TestAdapter.all[0], qwen = TestAdapter.all[1]
        let llamaConfig = try ModelConfig(file: GGUFFile(path: try llama.modelPath))
        func message(_ path: String, _ config: ModelConfig) -> String {
            do {
                _ = try LoRAAdapterFile(path: path, config: config)
                return "loaded"
            } catch { return "\(error)" }
        }
        let modelAsAdapter = message(try llama.modelPath, llamaConfig)
        #expect(modelAsAdapter.contains("not 'adapter'"), "\(modelAsAdapter)")
        #expect(message(qwen.adapterPath, llamaConfig).contains("adapts architecture 'qwen2', the model is 'llama'"))
        let smolConfig = try ModelConfig(file: GGUFFile(path: try TestAdapter.all[2].modelPath))
        #expect(message(llama.adapterPath, smolConfig).contains("blk.0.attn_q.weight' has lora_a [4, 64]"))
        #expect(message("/nonexistent/adapter.gguf", llamaConfig).contains("not found"))
        // half a pair, and a tensor beyond the model's blocks
        let dir = NSTemporaryDirectory()
        var w = GGUFWriter()
        for (k, v) in [("general.type", "adapter"), ("general.architecture", "llama"), ("adapter.type", "lora")] {
            w.set(k, .string(v))
        }
        w.tensors = [.init(name: "blk.0.attn_q.weight.lora_a", shape: [2, 64], values: Array(repeating: 0, count: 128))]
        try w.write(to: dir + "themis-half-\(getpid()).gguf")
        #expect(message(dir + "themis-half-\(getpid()).gguf", llamaConfig).contains(".lora_a without .lora_b"))
        w.tensors = [.init(name: "blk.9.attn_q.weight.lora_a", shape: [2, 64], values: Array(repeating: 0, count: 128))]
        try w.write(to: dir + "themis-half-\(getpid()).gguf")
        #expect(message(dir + "themis-half-\(getpid()).gguf", llamaConfig).contains("blk.9.attn_q.weight' is not a projection"))
        try? FileManager.default.removeItem(atPath: dir + "themis-half-\(getpid()).gguf")
    }
}
