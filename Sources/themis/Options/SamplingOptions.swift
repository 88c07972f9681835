import ArgumentParser
import ThemisModel

/// Sampling flags, mapped onto `SamplingParameters`.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Keep the K most likely tokens (0 = all).") var topK: Int = 40
    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold in (0, 1].") var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Drop tokens below this fraction of the top probability.") var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1 = off).") var repeatPenalty: Float = 1.0
    @Option(name: .customLong("repeat-last-n"), help: "Tokens the repetition penalty looks back at.") var repeatLastN: Int = 64
    @Option(help: "Random seed.") var seed: UInt64?

    var parameters: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = temperature
        p.topK = topK
        p.topP = topP
        p.minP = minP
        p.repetitionPenalty = repeatPenalty
        p.penaltyWindow = repeatLastN
        p.seed = seed
        return p
    }
}
