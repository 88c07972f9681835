import Foundation
import JSONLines
import ThemisModel

/// Everything that decides a run's result: two runs with equal settings and data give the same
/// adapter (bit for bit on the CPU backend), stopped and resumed or not.
public struct TrainSettings: Codable, Sendable, Equatable {
    public var lora = LoRASettings()
    public var optimizer = OptimizerSettings()
    public var objective = ObjectiveWeights()
    /// Sequences per optimiser step (their gradients are accumulated, one sequence at a time).
    public var batch = 8
    /// Optimiser steps; nil: `epochs` passes over the data.
    public var steps: Int?
    public var epochs: Double = 1
    public var seed: UInt64 = 0
    /// Longest sample, in tokens (longer ones are skipped).
    public var maxTokens = 2048
    /// Evaluation loss every this many steps (and after the last).
    public var evalEvery = 50
    /// A checkpoint every this many steps (and after the last).
    public var checkpointEvery = 25
    /// Whether the samples of a step (and the held-aside ones) that begin with the same tokens
    /// run those tokens once (`SharedPrefix`): the same gradient up to the order of float sums.
    public var sharePrefixes = true
    /// Whether the samples of a pair (ids that agree up to a `#`: a pair's two orders) follow one
    /// another in the shuffled order, so that a step holds both orders: position has then no
    /// gradient of its own to follow, and the pair's conversation is shared.
    public var pairsTogether = true

    public init() {}
}

extension TrainSettings {
    /// Reads settings, those of runs from before prefix sharing and pair order included (they ran
    /// without them).
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lora = try c.decode(LoRASettings.self, forKey: .lora)
        optimizer = try c.decode(OptimizerSettings.self, forKey: .optimizer)
        objective = try c.decode(ObjectiveWeights.self, forKey: .objective)
        batch = try c.decode(Int.self, forKey: .batch)
        steps = try c.decodeIfPresent(Int.self, forKey: .steps)
        epochs = try c.decode(Double.self, forKey: .epochs)
        seed = try c.decode(UInt64.self, forKey: .seed)
        maxTokens = try c.decode(Int.self, forKey: .maxTokens)
        evalEvery = try c.decode(Int.self, forKey: .evalEvery)
        checkpointEvery = try c.decode(Int.self, forKey: .checkpointEvery)
        sharePrefixes = try c.decodeIfPresent(Bool.self, forKey: .sharePrefixes) ?? false
        pairsTogether = try c.decodeIfPresent(Bool.self, forKey: .pairsTogether) ?? false
    }
}

/// One optimiser step, as a line of `RUN/log.jsonl`.
public struct StepRecord: Codable, Sendable, Equatable {
    public var step: Int
    /// Mean weighted cross-entropy of the step's samples.
    public var loss: Double
    public var learningRate: Double
    /// The gradients' global norm before clipping.
    public var gradNorm: Double
    /// Tokens of the step's samples (a shared prefix counted in each sample: the data's tokens).
    public var tokens: Int
    /// Seconds since the run (or its resumption) started.
    public var elapsedSeconds: Double
    /// Mean weighted cross-entropy of the held-aside samples, on evaluation steps.
    public var evalLoss: Double?

    enum CodingKeys: String, CodingKey {
        case step, loss, tokens
        case learningRate = "learning_rate", gradNorm = "grad_norm", elapsedSeconds = "elapsed_s", evalLoss = "eval_loss"
    }
}

/// Where a run stands, for a progress line.
public struct TrainProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Double
    public var evalLoss: Double?
    public var tokensPerSecond: Double
    public var etaSeconds: Double
}

/// What a finished (or stopped) run did.
public struct TrainSummary: Codable, Sendable {
    public var steps: Int
    public var totalSteps: Int
    public var resumedFrom: Int
    public var samples: Int
    public var evalSamples: Int
    public var trainedValues: Int
    public var seconds: Double
    public var tokensPerSecond: Double
    public var finalLoss: Double?
    public var finalEvalLoss: Double?
    public var adapter: String?

    enum CodingKeys: String, CodingKey {
        case steps, samples, seconds, adapter
        case totalSteps = "total_steps", resumedFrom = "resumed_from", evalSamples = "eval_samples",
             trainedValues = "trained_values", tokensPerSecond = "tokens_per_second", finalLoss = "final_loss",
             finalEvalLoss = "final_eval_loss"
    }
}

/// Supervised fine-tuning of a LoRA adapter: AdamW over batches of samples in a seeded order,
/// evaluation on held-aside samples, checkpoints a run resumes from after any stop, and the
/// adapter written in llama.cpp's format (`RUN/adapter.gguf`).
public final class Trainer {
    public let settings: TrainSettings
    public let directory: String
    public let train: [TokenizedSample]
    public let eval: [TokenizedSample]
    /// How the held-aside samples run (the same at every evaluation).
    private let evalPlan: PrefixNode
    private let model: LanguageModel
    private let lora: TrainableLoRA
    private let engine: LoRAEngine
    /// Called after every step.
    public var progress: ((TrainProgress) -> Void)?
    /// How the adapter's matrices are stored: f32, or f16 (half the size).
    public var adapterType: GGUFWriter.FloatType = .f32

    /// A trainer of `model` on `train`, evaluated on `eval`, writing into `directory`. `recompute`:
    /// whether blocks run forward again in the backward pass (nil: only when keeping every block's
    /// activations would take more than a quarter of the device's memory or 8 GiB). It changes
    /// no number, only memory and time.
    public init(model: LanguageModel, settings: TrainSettings, train: [TokenizedSample], eval: [TokenizedSample],
                directory: String, recompute: Bool? = nil) throws {
        guard !train.isEmpty else { throw TrainError.data("no samples to train on") }
        guard settings.batch >= 1 else { throw TrainError.settings("the batch must hold at least 1 sample") }
        if let s = settings.steps, s < 1 { throw TrainError.settings("steps must be at least 1") }
        guard settings.epochs > 0, settings.evalEvery >= 1, settings.checkpointEvery >= 1 else {
            throw TrainError.settings("epochs, eval and checkpoint intervals must be above 0")
        }
        self.settings = settings
        self.directory = directory
        self.train = train
        self.eval = eval
        evalPlan = SharedPrefix.tree(eval, enabled: settings.sharePrefixes)
        self.model = model
        lora = try TrainableLoRA(settings: settings.lora, config: model.config, backend: model.backend)
        let longest = max(2, (train + eval).map(\.tokens.count).max() ?? 2)
        let kept = LoRAEngine.keptActivationBytes(config: model.config, tokens: longest)
        let budget = min(Int(model.backend.device.memoryBytes / 4), 8 << 30)
        engine = try LoRAEngine(model: model, lora: lora, maxTokens: longest, recompute: recompute ?? (kept > budget))
    }

    /// Optimiser steps in the whole run.
    public var totalSteps: Int {
        settings.steps ?? max(1, Int((settings.epochs * Double(train.count) / Double(settings.batch)).rounded(.up)))
    }

    var settingsPath: String { directory + "/settings.json" }
    var checkpointPath: String { directory + "/checkpoint.bin" }
    var logPath: String { directory + "/log.jsonl" }
    public var adapterPath: String { directory + "/adapter.gguf" }
    /// Whether the engine recomputes block activations in the backward pass.
    public var recomputes: Bool { engine.recomputes }

    /// Trains from the start, or, with `resume`, from the run's last checkpoint (a run that has
    /// one is never overwritten without `resume`).
    public func run(resume: Bool) throws -> TrainSummary {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var adam = AdamW(settings: settings.optimizer, count: lora.count)
        var start = 0
        var records: [StepRecord] = []
        if fm.fileExists(atPath: checkpointPath) {
            guard resume else {
                throw TrainError.checkpoint("\(directory) holds a run already: resume it or train into another directory")
            }
            let saved = try JSONDecoder().decode(TrainSettings.self, from: Data(contentsOf: URL(fileURLWithPath: settingsPath)))
            guard saved == settings else {
                throw TrainError.checkpoint("the run in \(directory) was started with other settings (its settings.json); resume it with those")
            }
            var values: [Float] = []
            (start, values, adam) = try Checkpoint.read(checkpointPath, count: lora.count, settings: settings.optimizer)
            lora.load(values)
            records = try JSONLReader.read(logPath, as: StepRecord.self).compactMap { try? $0.value.get() }
                .filter { $0.step <= start }
        } else {
            lora.initialise(seed: settings.seed)
        }
        try AtomicFile.write(try encoder.encode(settings), to: settingsPath)
        try rewriteLog(records)
        let log = try JSONLWriter(path: logPath, existing: .append)
        let began = Date()
        var tokensRun = 0
        let total = totalSteps
        var step = start
        while step < total {
            let batch = samples(forStep: step)
            let weight = batch.reduce(0.0) { $0 + $1.sample.totalWeight }
            lora.zeroGradients()
            let samples = batch.map(\.sample)
            let loss = try engine.run(samples, plan: SharedPrefix.tree(samples, enabled: settings.sharePrefixes),
                                      lossFactor: Float(1 / weight), backward: true,
                                      dropoutSeeds: batch.map { dropoutSeed($0.position) }).reduce(0, +)
            let tokens = batch.reduce(0) { $0 + $1.sample.tokens.count }
            var values = try lora.values()
            let rate = settings.optimizer.learningRate(step: step, total: total)
            let norm = adam.update(&values, gradients: try lora.gradients(), rate: rate)
            lora.load(values)
            step += 1
            tokensRun += tokens
            var record = StepRecord(step: step, loss: loss / weight, learningRate: Double(rate), gradNorm: norm, tokens: tokens,
                                    elapsedSeconds: Date().timeIntervalSince(began))
            if step % settings.evalEvery == 0 || step == total, !eval.isEmpty { record.evalLoss = try evaluate() }
            try log.append(record)
            records.append(record)
            if step % settings.checkpointEvery == 0 || step == total {
                try Checkpoint.write(checkpointPath, step: step, values: values, adam: adam)
            }
            let seconds = Date().timeIntervalSince(began)
            let perStep = seconds / Double(step - start)
            progress?(TrainProgress(step: step, totalSteps: total, loss: record.loss,
                                    evalLoss: record.evalLoss ?? records.last(where: { $0.evalLoss != nil })?.evalLoss,
                                    tokensPerSecond: Double(tokensRun) / max(seconds, 1e-9),
                                    etaSeconds: perStep * Double(total - step)))
        }
        let seconds = Date().timeIntervalSince(began)
        var summary = TrainSummary(
            steps: step, totalSteps: total, resumedFrom: start, samples: train.count, evalSamples: eval.count,
            trainedValues: lora.count, seconds: seconds, tokensPerSecond: Double(tokensRun) / max(seconds, 1e-9),
            finalLoss: records.last?.loss, finalEvalLoss: records.last(where: { $0.evalLoss != nil })?.evalLoss, adapter: nil)
        if step == total {
            try LoRAAdapterFile.write(to: adapterPath, config: model.config, alpha: settings.lora.alpha,
                                      matrices: try lora.matrices(), name: "themis LoRA, \(step) steps", type: adapterType)
            summary.adapter = adapterPath
            // a finished run resumed only writes its adapter again (in another type, say): its
            // summary and report stay those of the training
            if start == total, fm.fileExists(atPath: directory + "/summary.json"),
               var kept = try? JSONDecoder().decode(TrainSummary.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/summary.json"))) {
                kept.adapter = adapterPath
                return kept
            }
        }
        try AtomicFile.write(try encoder.encode(summary), to: directory + "/summary.json")
        try AtomicFile.write(Data(TrainingReport.html(records: records, settings: settings, summary: summary).utf8),
                             to: directory + "/report.html")
        return summary
    }

    /// The mean weighted cross-entropy of the held-aside samples (no dropout, no gradients).
    public func evaluate() throws -> Double {
        guard !eval.isEmpty else { return 0 }
        let loss = try engine.run(eval, plan: evalPlan, lossFactor: 0, backward: false, dropoutSeeds: eval.map { _ in 0 })
            .reduce(0, +)
        return loss / max(eval.reduce(0.0) { $0 + $1.totalWeight }, 1e-12)
    }

    /// The samples of step `step` with their positions in the run's stream: epoch after epoch,
    /// each in its own seeded order.
    public func samples(forStep step: Int) -> [(position: Int, sample: TokenizedSample)] {
        (0..<settings.batch).map { j in
            let position = step * settings.batch + j
            let epoch = position / train.count
            return (position, train[order(epoch: epoch)[position % train.count]])
        }
    }

    private var orders: [Int: [Int]] = [:]

    /// A seeded permutation of the samples for `epoch` (Fisher-Yates), of whole pairs when
    /// `pairsTogether` (a pair's samples in the order of the data; a sample whose other order
    /// was skipped waits for the next such one, so that pairs keep to even positions).
    private func order(epoch: Int) -> [Int] {
        if let o = orders[epoch] { return o }
        var rng = SplitMix64(seed: settings.seed &+ 0x5DEE_CE66_D &* UInt64(epoch + 1))
        var units: [[Int]]
        if settings.pairsTogether {
            var index: [Substring: Int] = [:]
            units = []
            for (i, s) in train.enumerated() {
                if let u = index[s.pair] { units[u].append(i) } else { index[s.pair] = units.count; units.append([i]) }
            }
        } else {
            units = train.indices.map { [$0] }
        }
        for i in stride(from: units.count - 1, to: 0, by: -1) { units.swapAt(i, rng.below(i + 1)) }
        var o: [Int] = [], waiting: Int?
        for unit in units {
            if settings.pairsTogether && unit.count % 2 == 1 {
                if let w = waiting { o += [w] + unit; waiting = nil } else { o += unit.dropLast(); waiting = unit.last }
            } else {
                o += unit
            }
        }
        if let w = waiting { o.append(w) }
        orders = [epoch: o]
        return o
    }

    private func dropoutSeed(_ position: Int) -> UInt64 {
        var rng = SplitMix64(seed: settings.seed ^ (0xD1B5_4A32_D192_ED03 &* UInt64(position + 1)))
        return rng.next()
    }

    private func rewriteLog(_ records: [StepRecord]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = Data()
        for r in records { data += try encoder.encode(r) + Data("\n".utf8) }
        try AtomicFile.write(data, to: logPath)
    }
}

/// The run's state after a step: the adapter's values and AdamW's moments, in one binary file
/// written whole (a stop during the write leaves the previous checkpoint), with a checksum.
enum Checkpoint {
    static let magic: UInt32 = 0x4B43_4854  // "THCK"

    static func write(_ path: String, step: Int, values: [Float], adam: AdamW) throws {
        var data = Data()
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        put(magic)
        put(UInt32(1))
        put(UInt64(step))
        put(UInt64(adam.steps))
        put(UInt64(values.count))
        for array in [values, adam.m, adam.v] { array.withUnsafeBytes { data.append(contentsOf: $0) } }
        put(fnv1a(data))
        try AtomicFile.write(data, to: path)
    }

    static func read(_ path: String, count: Int, settings: OptimizerSettings) throws -> (Int, [Float], AdamW) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let header = 32, body = 3 * count * 4
        guard data.count == header + body + 8 else {
            throw TrainError.checkpoint("\(path) has \(data.count) bytes; an adapter of \(count) values needs \(header + body + 8)")
        }
        let bytes = [UInt8](data)
        func get<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: T.self)) }
        }
        guard get(0, UInt32.self) == magic, get(4, UInt32.self) == 1 else { throw TrainError.checkpoint("\(path) is not a checkpoint") }
        guard get(header + body, UInt64.self) == fnv1a(data.prefix(header + body)) else {
            throw TrainError.checkpoint("\(path) is damaged (checksum)")
        }
        guard Int(get(24, UInt64.self)) == count else { throw TrainError.checkpoint("\(path) holds another adapter's values") }
        func floats(_ i: Int) -> [Float] {
            bytes.withUnsafeBytes { raw in
                (0..<count).map { raw.loadUnaligned(fromByteOffset: header + (i * count + $0) * 4, as: Float.self) }
            }
        }
        var adam = AdamW(settings: settings, count: count)
        adam.m = floats(1)
        adam.v = floats(2)
        adam.steps = Int(get(16, UInt64.self))
        return (Int(get(8, UInt64.self)), floats(0), adam)
    }

    static func fnv1a(_ data: Data) -> UInt64 {
        data.withUnsafeBytes { raw in
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in raw { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
            return h
        }
    }
}
