import ArgumentParser
import Foundation
import JSONLines
import ThemisModel
import ThemisTrain

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a LoRA adapter on judge training data (the distillation's openai.jsonl) with the paper's weighted objective.",
        discussion: """
            Writes RUN/adapter.gguf (llama.cpp's adapter format: themis --lora, llama.cpp --lora), RUN/log.jsonl (one line \
            per step), RUN/report.html (the loss curves), RUN/summary.json and RUN/skipped.jsonl. Checkpoints let a \
            stopped run continue with --resume and end exactly where an uninterrupted one would (CPU backend).
            """)

    @OptionGroup var model: ModelOptions
    @Option(help: "Training data: JSON Lines of {messages, spans, metadata} (themis distill export or distill import).")
    var data: String
    @Option(help: "The run directory.") var output: String
    @Option(help: "Held-aside data in the same format (default: --eval-fraction of --data, by sample id).") var eval: String?
    @Option(name: .customLong("eval-fraction"), help: "Share of --data held aside for the evaluation loss when --eval is not given.")
    var evalFraction = 0.05
    @Option(help: "Optimiser steps (default: --epochs over the data).") var steps: Int?
    @Option(help: "Passes over the data.") var epochs = 1.0
    @Option(name: .customLong("lora-rank")) var rank = 8
    @Option(name: .customLong("lora-alpha"), help: "The update is scaled by alpha / rank.") var alpha: Float = 16
    @Option(name: .customLong("lora-dropout")) var dropout: Float = 0
    @Option(help: "Adapted projections: any of q,k,v,o,gate,up,down.") var targets = "q,k,v,o,gate,up,down"
    @Option(help: "Peak learning rate (AdamW, linear warm-up then cosine decay).") var lr: Float = 2e-4
    @Option(help: "Warm-up steps.") var warmup = 10
    @Option(name: .customLong("weight-decay")) var weightDecay: Float = 0
    @Option(name: .customLong("clip-norm"), help: "Clip gradients to this global norm (0: off).") var clipNorm: Float = 1
    @Option(help: "Samples per optimiser step (their gradients are accumulated).") var batch = 8
    @Option(help: "Seed of the initialisation, the data order and dropout.") var seed: UInt64 = 0
    @Option(name: .customLong("score-weight"), help: "Loss weight of score tokens (verdict, scores, headings).")
    var scoreWeight: Float = 1
    @Option(name: .customLong("explanation-weight"), help: "Loss weight of explanation tokens.") var explanationWeight: Float = 1
    @Option(name: .customLong("max-tokens"), help: "Longest sample in tokens; longer ones are skipped.") var maxTokens = 2048
    @Option(name: .customLong("eval-every"), help: "Evaluation loss every N steps.") var evalEvery = 50
    @Option(name: .customLong("checkpoint-every"), help: "A checkpoint every N steps.") var checkpointEvery = 25
    @Option(name: .customLong("save-tokens"), help: "Also write the tokenized training samples (tokens, weighted target rows) as JSON Lines (the PyTorch side of make bench-train reads them).")
    var saveTokens: String?
    @Option(help: "Run each block forward again in the backward pass (on), keep every block's activations (off), or keep them when they fit a quarter of the memory (auto). Changes no number.")
    var recompute = "auto"
    @Flag(inversion: .prefixedNo, help: "Run the tokens that samples of a step begin with alike (the judge prompt's instructions) once for all of them: the same gradient, less work.")
    var sharePrefix = true
    @Flag(name: .customLong("pairs-together"), inversion: .prefixedNo, help: "Keep the two orders of a pair (ids <pair>#ab, <pair>#ba) next to each other in the shuffled order, so that a step trains both: position alone then gets no gradient, and the pair's conversation is shared.")
    var pairsTogether = true
    @Option(name: .customLong("adapter-type"), help: "How RUN/adapter.gguf stores its matrices: f32, or f16 (half the size). A finished run given --resume writes its adapter again (in another type, say).")
    var adapterType: GGUFWriter.FloatType = .f32
    @Flag(help: "Continue the run in --output from its last checkpoint.") var resume = false

    func validate() throws {
        if model.lora != nil { throw ValidationError("--lora: training starts a new adapter; merge an adapter first (themis merge) to train on top of it") }
        if !(0..<1).contains(evalFraction) { throw ValidationError("--eval-fraction must be in 0 ..< 1") }
        for t in targets.split(separator: ",") where LoRATarget(rawValue: String(t)) == nil {
            throw ValidationError("--targets: '\(t)' is not one of \(LoRATarget.allCases.map(\.rawValue).joined(separator: ","))")
        }
        for (name, v) in [("--lr", lr), ("--score-weight", scoreWeight), ("--explanation-weight", explanationWeight)]
            where !(v.isFinite && v >= 0) {
            throw ValidationError("\(name) must be a number of at least 0")
        }
        if maxTokens < 2 { throw ValidationError("--max-tokens must be at least 2") }
        if !["auto", "on", "off"].contains(recompute) { throw ValidationError("--recompute takes auto, on or off") }
    }

    var settings: TrainSettings {
        var s = TrainSettings()
        s.lora = LoRASettings(rank: rank, alpha: alpha, dropout: dropout,
                              targets: targets.split(separator: ",").compactMap { LoRATarget(rawValue: String($0)) })
        s.optimizer.learningRate = lr
        s.optimizer.warmupSteps = warmup
        s.optimizer.weightDecay = weightDecay
        s.optimizer.clipNorm = clipNorm
        s.objective = ObjectiveWeights(score: scoreWeight, explanation: explanationWeight)
        s.batch = batch
        s.steps = steps
        s.epochs = epochs
        s.seed = seed
        s.maxTokens = maxTokens
        s.evalEvery = evalEvery
        s.checkpointEvery = checkpointEvery
        s.sharePrefixes = sharePrefix
        s.pairsTogether = pairsTogether
        return s
    }

    func run() throws {
        reportingErrors {
            var options = model
            options.contextSize = options.contextSize ?? 64  // the trainer keeps no KV cache
            // activations in f32: the backward pass is, and the gradients must be the forward pass's
            options.exactDecode = true
            let loaded = try options.load()
            let template = try loaded.chatTemplate()
            let settings = self.settings
            // positions beyond the model's training context were never seen in pre-training
            let longest = min(settings.maxTokens, loaded.config.contextLength)
            func read(_ path: String) throws -> TrainingData.Loaded {
                try TrainingData.load(path, tokenizer: loaded.tokenizer, template: template, weights: settings.objective,
                                      maxTokens: longest)
            }
            var train = try read(data)
            var held: [TokenizedSample] = []
            if let eval {
                let e = try read(eval)
                held = e.samples
                train.skipped += e.skipped
            } else if evalFraction > 0 {
                // both orders of a pair (ids "<pair>#ab" / "<pair>#ba") fall on the same side
                let (kept, aside) = HeldAside.split(train.samples, fraction: evalFraction)
                train.samples = kept
                held = aside
            }
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            let skippedWriter = try JSONLWriter(path: output + "/skipped.jsonl", existing: .replace)
            for s in train.skipped { try skippedWriter.append(s) }
            let reasons = Dictionary(grouping: train.skipped) { $0.reason.replacingOccurrences(of: #"\d+"#, with: "N", options: .regularExpression) }
            printError("themis train: \(train.samples.count) samples, \(held.count) held aside, \(train.skipped.count) skipped"
                + (reasons.isEmpty ? "" : " (" + reasons.map { "\($0.value.count): \($0.key)" }.sorted().joined(separator: "; ") + ")"))
            if let saveTokens {
                let writer = try JSONLWriter(path: saveTokens, existing: .replace)
                for s in train.samples { try writer.append(s) }
            }
            let trainer = try Trainer(model: loaded, settings: settings, train: train.samples, eval: held, directory: output,
                                      recompute: recompute == "auto" ? nil : recompute == "on")
            printError("themis train: \(trainer.totalSteps) steps of \(settings.batch); block activations "
                + (trainer.recomputes ? "recomputed in the backward pass" : "kept"))
            trainer.adapterType = adapterType
            let progress = Progress(total: trainer.totalSteps, label: "step", unit: "tokens")
            trainer.progress = { p in
                var detail = String(format: "loss %.4f", p.loss)
                if let e = p.evalLoss { detail += String(format: "  eval %.4f", e) }
                progress.update(done: p.step, detail: detail, rate: p.tokensPerSecond, eta: p.etaSeconds)
            }
            let summary = try trainer.run(resume: resume)
            progress.finish()
            printError("themis train: \(summary.steps) steps in \(Progress.duration(summary.seconds)), "
                + String(format: "%.0f tokens/s", summary.tokensPerSecond)
                + (summary.finalEvalLoss.map { String(format: ", eval loss %.4f", $0) } ?? "")
                + "; adapter \(summary.adapter ?? "not written (stopped early)")")
        }
    }
}
