import CPUBackend
import Foundation
import Testing
import ThemisBackend
import ThemisModel
import ThemisTrain
import VulkanBackend

enum TrainTestSupport {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var modelStore: String {
        ProcessInfo.processInfo.environment["THEMIS_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSHomeDirectory() + "/.cache/themis/models"
    }
    static var smolLM2: String { modelStore + "/SmolLM2-135M-Instruct.Q4_1.gguf" }
    static var tinyLlama: String { root.appendingPathComponent("Tests/ThemisModelTests/Reference/tiny-llama.gguf").path }

    /// The CPU backend, or the first Vulkan device (nil when there is none).
    static func backend(_ device: String) throws -> (any Backend)? {
        if device == "cpu" { return CPUBackend(threads: 2, roundDecodeActivations: false) }
        let provider = VulkanProvider()
        guard let d = provider.devices().devices.first else { return nil }
        return try provider.makeBackend(on: d)
    }
}

/// The whole model's LoRA gradient against finite differences of its loss.
@Suite("LoRA gradients", .serialized)
struct LoRAGradientTests {
    /// The adapter's gradient for `sample` after `values` are loaded, and central differences of
    /// the loss for the `perMatrix` largest entries of every A and B. Returns (NMSE, the worst
    /// error as a share of its matrix's largest gradient, the loss, the gradients).
    static func check(_ model: LanguageModel, settings: LoRASettings, seed: UInt64, text: String, answerTokens: Int,
                      perMatrix: Int, step: Float) throws -> (nmse: Double, worst: Double, loss: Double, gradients: [Float]) {
        let lora = try TrainableLoRA(settings: settings, config: model.config, backend: model.backend)
        var rng = SplitMix64(seed: seed)
        var values = (0..<lora.count).map { _ in rng.uniform() * 0.05 }
        lora.load(values)
        let engine = try LoRAEngine(model: model, lora: lora, maxTokens: 64)
        let tokens = model.tokenizer.encode(text, parseSpecial: true, addBOS: false)
        let answerStart = tokens.count - answerTokens
        let targets = (answerStart..<tokens.count - 1).map { TokenizedSample.Target(row: $0, weight: $0 % 3 == 0 ? 0.5 : 1) }
        let sample = TokenizedSample(id: "check", tokens: tokens, targets: targets)
        lora.zeroGradients()
        let loss = try engine.run(sample, lossFactor: 1, backward: true, dropoutSeed: 0)
        let gradients = try lora.gradients()
        // the forward pass with backward: false gives the same loss
        #expect(try engine.run(sample, lossFactor: 1, backward: false, dropoutSeed: 0) == loss)
        // an entry's error is measured against the largest gradient of its matrix (the
        // differences' own noise would swamp a relative error of the smaller entries)
        var checked: [(index: Int, scale: Double)] = []
        var at = 0
        for p in lora.parameters {
            for size in [settings.rank * p.inputs, p.outputs * settings.rank] {
                let range = at..<at + size
                let top = range.sorted { abs(gradients[$0]) > abs(gradients[$1]) }.prefix(perMatrix)
                checked += top.map { ($0, Double(abs(gradients[top.first!]))) }
                at += size
            }
        }
        var num = 0.0, den = 0.0, worst = 0.0
        for (i, scale) in checked {
            let saved = values[i]
            values[i] = saved + step
            let up = Double(values[i])
            lora.load(values)
            let plus = try engine.run(sample, lossFactor: 1, backward: false, dropoutSeed: 0)
            values[i] = saved - step
            let down = Double(values[i])
            lora.load(values)
            let minus = try engine.run(sample, lossFactor: 1, backward: false, dropoutSeed: 0)
            values[i] = saved
            let numeric = (plus - minus) / (up - down)
            let g = Double(gradients[i])
            num += (g - numeric) * (g - numeric)
            den += numeric * numeric
            worst = max(worst, abs(g - numeric) / scale)
        }
        lora.load(values)
        return (den > 0 ? num / den : .infinity, worst, loss, gradients)
    }

    static let smolText = "<|im_start|>user\nIs the sky green?<|im_end|>\n<|im_start|>assistant\nNo, on a clear day the sky is blue. [[1]]"
    static let smolSettings = LoRASettings(rank: 2, alpha: 4, targets: [.q, .v, .o, .up, .down], blocks: [3, 20])

    /// SmolLM2 with adapters on two blocks, random A and B (B nonzero, so A's gradient is too):
    /// the gradient of the weighted loss of a short answer equals central differences of the
    /// loss (steps of ±4e-2), for the three largest entries of every adapted matrix.
    @Test func smolLM2GradientMatchesFiniteDifferences() throws {
        let model = try LanguageModel(path: TrainTestSupport.smolLM2, backend: CPUBackend(threads: 2, roundDecodeActivations: false), contextLength: 256)
        let r = try Self.check(model, settings: Self.smolSettings, seed: 7, text: Self.smolText, answerTokens: 14,
                               perMatrix: 3, step: 4e-2)
        print("[lora gradient, SmolLM2, cpu] NMSE \(r.nmse), worst error \(r.worst) of its matrix's largest gradient, loss \(r.loss)")
        // measured: NMSE 7.5e-6, worst 1.6% (steps of 1e-2 gave 8.3e-6 and 5.2%: the differences' noise)
        #expect(r.nmse < 1e-4, "NMSE \(r.nmse) against finite differences")
        #expect(r.worst < 0.03)
    }

    /// The Vulkan backend's whole-model gradient: SmolLM2's equals the CPU's (lavapipe runs a
    /// forward pass of SmolLM2 in seconds, too slowly for finite differences of every matrix), and
    /// the tiny llama's equals finite differences, as on the CPU.
    @Test func vulkanGradientsMatchTheCPUAndFiniteDifferences() throws {
        guard let vulkan = try TrainTestSupport.backend("vulkan") else { return }
        func gradient(_ backend: any Backend) throws -> [Float] {
            let model = try LanguageModel(path: TrainTestSupport.smolLM2, backend: backend, contextLength: 256)
            return try Self.check(model, settings: Self.smolSettings, seed: 7, text: Self.smolText, answerTokens: 14,
                                  perMatrix: 0, step: 4e-2).gradients
        }
        let cpu = try gradient(CPUBackend(threads: 2, roundDecodeActivations: false)), gpu = try gradient(vulkan)
        var num = 0.0, den = 0.0
        for (a, b) in zip(gpu, cpu) {
            num += (Double(a) - Double(b)) * (Double(a) - Double(b))
            den += Double(b) * Double(b)
        }
        print("[lora gradient, SmolLM2] Vulkan vs CPU: NMSE \(num / den)")
        #expect(num / den < 1e-6, "Vulkan's gradient differs from the CPU's: NMSE \(num / den)")
        for (name, backend) in [("cpu", CPUBackend(threads: 2, roundDecodeActivations: false) as any Backend), ("vulkan", vulkan)] {
            let model = try LanguageModel(path: TrainTestSupport.tinyLlama, backend: backend, contextLength: 64)
            let r = try Self.check(model, settings: LoRASettings(rank: 3, alpha: 6, blocks: [0, 2]), seed: 5,
                                   text: "Once upon a time, in a small village, there lived a judge.", answerTokens: 8,
                                   perMatrix: 2, step: 1e-2)
            print("[lora gradient, tiny llama, \(name)] NMSE \(r.nmse), worst error \(r.worst)")
            #expect(r.nmse < 1e-4 && r.worst < 0.03, "\(name): NMSE \(r.nmse), worst \(r.worst)")
        }
    }

    /// Keeping every block's activations or running each block again gives the same bits.
    @Test func keptAndRecomputedActivationsGiveTheSameGradients() throws {
        let model = try LanguageModel(path: TrainTestSupport.smolLM2, backend: CPUBackend(threads: 2, roundDecodeActivations: false), contextLength: 64)
        let settings = LoRASettings(rank: 4, alpha: 8, dropout: 0.1, targets: [.k, .o, .gate, .down], blocks: [0, 7, 29])
        let lora = try TrainableLoRA(settings: settings, config: model.config, backend: model.backend)
        var rng = SplitMix64(seed: 11)
        lora.load((0..<lora.count).map { _ in rng.uniform() * 0.05 })
        let tokens = model.tokenizer.encode("The judge compares two answers and names the better one: [[A]]", parseSpecial: false)
        let sample = TokenizedSample(id: "s", tokens: tokens, targets: (4..<tokens.count - 1).map { .init(row: $0, weight: 1) })
        var results: [(Double, [Float])] = []
        for recompute in [true, false] {
            let engine = try LoRAEngine(model: model, lora: lora, maxTokens: 64, recompute: recompute)
            #expect(engine.recomputes == recompute)
            lora.zeroGradients()
            let loss = try engine.run(sample, lossFactor: 0.5, backward: true, dropoutSeed: 99)
            results.append((loss, try lora.gradients()))
        }
        #expect(results[0].0 == results[1].0 && results[0].1 == results[1].1)
        #expect(results[0].1.contains { $0 != 0 })
    }

    /// Samples that begin alike run over a tree of their shared beginnings (each shared token
    /// once) and give the gradient and losses of running each whole; kept and recomputed
    /// activations give the same bits over a tree too. SmolLM2 on the CPU (a judge prompt shared
    /// by three samples, an instruction by two of them); the tiny llama on the CPU and on Vulkan.
    @Test func samplesSharingAPrefixGiveTheGradientOfRunningEachWhole() throws {
        let judge = "<|im_start|>user\nCompare the two responses to the instruction and answer [[A]] or [[B]].\n"
        let prime = "Instruction: name a prime number between one and ten, and say in a few words why it is prime."
        let texts = ["\(prime) A: 4 B: 7<|im_end|>\n<|im_start|>assistant\nB is prime. [[B]]",
                     "\(prime) A: 7 B: 4<|im_end|>\n<|im_start|>assistant\nA is prime. [[A]]",
                     "Instruction: say hello. A: hello B: bye<|im_end|>\n<|im_start|>assistant\nA greets. [[A]]"]
        let smol = try LanguageModel(path: TrainTestSupport.smolLM2, backend: CPUBackend(threads: 2, roundDecodeActivations: false), contextLength: 64)
        let samples = texts.enumerated().map { i, text in
            let tokens = smol.tokenizer.encode(judge + text, parseSpecial: true, addBOS: false)
            return TokenizedSample(id: "s\(i)", tokens: tokens,
                                   targets: (tokens.count - 7..<tokens.count - 1).map { .init(row: $0, weight: $0 % 2 == 0 ? 1 : 0.5) })
        }
        let plan = SharedPrefix.tree(samples)
        // root -> the judge prompt (all three) -> the prime instruction (the first two)
        guard case .node(let judgeNode) = plan.items.first, plan.items.count == 1,
              let primeNode = judgeNode.items.compactMap({ if case .node(let n) = $0 { n } else { nil } }).first else {
            Issue.record("not a two-level tree: \(plan)")
            return
        }
        #expect(Set(primeNode.samples) == [0, 1] && Set(judgeNode.samples) == [0, 1, 2])
        #expect(judgeNode.end >= SharedPrefix.minimumPrefix && primeNode.end >= judgeNode.end + SharedPrefix.minimumPrefix)
        #expect(primeNode.end <= samples[..<2].map { $0.targets[0].row }.min()! && judgeNode.end <= samples[2].targets[0].row)
        let settings = LoRASettings(rank: 3, alpha: 6, blocks: [0, 11, 29])
        let grouped = try Self.groupedAgainstWhole(smol, settings: settings, samples: samples, plan: plan)
        print("[shared prefixes, SmolLM2, cpu] nodes ending at \(judgeNode.end), \(primeNode.end) of \(samples.map(\.tokens.count)) tokens: gradient NMSE \(grouped.nmse), loss difference \(grouped.lossDifference)")
        #expect(grouped.nmse < 1e-9 && grouped.lossDifference < 1e-5)
        var kept: [[Float]] = []
        for recompute in [true, false] {
            let lora = try TrainableLoRA(settings: settings, config: smol.config, backend: smol.backend)
            var rng = SplitMix64(seed: 3)
            lora.load((0..<lora.count).map { _ in rng.uniform() * 0.05 })
            let engine = try LoRAEngine(model: smol, lora: lora, maxTokens: 64, recompute: recompute)
            _ = try engine.run(samples, plan: plan, lossFactor: 1, backward: true, dropoutSeeds: [1, 2, 3])
            kept.append(try lora.gradients())
        }
        #expect(kept[0] == kept[1])
        // the tiny llama: its own vocabulary, token ids drawn at random; all three share 20
        // tokens, the first two 18 more
        var rng = SplitMix64(seed: 21)
        let tiny = try LanguageModel(path: TrainTestSupport.tinyLlama, backend: CPUBackend(threads: 2, roundDecodeActivations: false), contextLength: 64)
        func draw(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.below(tiny.config.vocabularySize)) } }
        let head = draw(20), mid = draw(18)
        let tinySamples = [head + mid + draw(9), head + mid + draw(5), head + draw(14)].enumerated().map { i, tokens in
            TokenizedSample(id: "t\(i)", tokens: tokens, targets: (tokens.count - 5..<tokens.count - 1).map { .init(row: $0, weight: 1) })
        }
        let tinyPlan = PrefixNode(end: 0, items: [.node(PrefixNode(end: 20, items: [
            .node(PrefixNode(end: 38, items: [.sample(0), .sample(1)])), .sample(2)]))])
        let lengths = tinySamples.map(\.tokens.count)
        #expect(SharedPrefix.tree(tinySamples).tokensRun(lengths: lengths) == 20 + 18 + 9 + 5 + 14)
        #expect(tinyPlan.tokensRun(lengths: lengths) == 20 + 18 + 9 + 5 + 14)
        let tinySettings = LoRASettings(rank: 2, alpha: 4, blocks: [0, 1, 2])
        var results = [try Self.groupedAgainstWhole(tiny, settings: tinySettings, samples: tinySamples, plan: tinyPlan)]
        if let vulkan = try TrainTestSupport.backend("vulkan") {
            let model = try LanguageModel(path: TrainTestSupport.tinyLlama, backend: vulkan, contextLength: 64)
            results.append(try Self.groupedAgainstWhole(model, settings: tinySettings, samples: tinySamples, plan: tinyPlan))
        }
        for (backend, r) in zip(["cpu", "vulkan"], results) {
            print("[shared prefixes, tiny llama, \(backend)] gradient NMSE \(r.nmse), loss difference \(r.lossDifference)")
            #expect(r.nmse < 1e-9 && r.lossDifference < 1e-5, "\(backend)")
        }
    }

    /// The gradient NMSE and the largest relative loss difference between running `samples` as a
    /// tree `plan` and running each whole (random adapter values, no dropout).
    static func groupedAgainstWhole(_ model: LanguageModel, settings: LoRASettings, samples: [TokenizedSample],
                                    plan: PrefixNode) throws -> (nmse: Double, lossDifference: Double) {
        let lora = try TrainableLoRA(settings: settings, config: model.config, backend: model.backend)
        var rng = SplitMix64(seed: 3)
        lora.load((0..<lora.count).map { _ in rng.uniform() * 0.05 })
        let engine = try LoRAEngine(model: model, lora: lora, maxTokens: 64, recompute: false)
        lora.zeroGradients()
        let grouped = try engine.run(samples, plan: plan, lossFactor: 0.5, backward: true,
                                     dropoutSeeds: samples.map { _ in 0 })
        let g1 = try lora.gradients()
        lora.zeroGradients()
        let whole = try samples.map { try engine.run($0, lossFactor: 0.5, backward: true, dropoutSeed: 0) }
        let g2 = try lora.gradients()
        // evaluation (no backward) of the group gives the losses of the training pass
        #expect(try engine.run(samples, plan: plan, lossFactor: 0, backward: false,
                               dropoutSeeds: samples.map { _ in 0 }) == grouped)
        var num = 0.0, den = 0.0
        for (a, b) in zip(g1, g2) {
            num += (Double(a) - Double(b)) * (Double(a) - Double(b))
            den += Double(b) * Double(b)
        }
        #expect(den > 0)
        let loss = zip(grouped, whole).map { abs($0 - $1) / max(abs($1), 1e-12) }.max()!
        return (num / den, loss)
    }
}
