import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ThemisBackend
import ThemisModel

/// llama-bench style model speed: prefill (`pp<N>`) and decode (`tg<N>`) tokens per second.
public struct ModelBench: Sendable {
    /// One measured test.
    public struct Result: Sendable, Codable, Equatable {
        /// `pp512`, `tg128`, ...
        public var test: String
        public var tokens: Int
        /// Tokens per second of each repetition.
        public var samples: [Double]
        public var mean: Double { samples.reduce(0, +) / Double(max(1, samples.count)) }
        public var standardDeviation: Double {
            guard samples.count > 1 else { return 0 }
            let m = mean
            return (samples.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(samples.count - 1)).squareRoot()
        }
    }

    public let model: LanguageModel
    public let repetitions: Int

    public init(model: LanguageModel, repetitions: Int) {
        self.model = model
        self.repetitions = max(1, repetitions)
    }

    /// Deterministic pseudo-random token ids (llama-bench also measures on random tokens).
    private func tokens(_ n: Int, seed: UInt64) -> [Int32] {
        var rng = SeededGenerator(seed: seed)
        let vocab = UInt64(model.config.vocabularySize)
        return (0..<n).map { _ in Int32(rng.next() % vocab) }
    }

    /// Prefill of `n` tokens from an empty cache, one batched pass per repetition.
    public func prefill(_ n: Int) throws -> Result {
        let session = try model.makeSession(contextLength: max(n, 16))
        let input = tokens(n, seed: 1)
        _ = try session.evaluateLast(Array(input.prefix(min(n, 16))))  // warm-up
        var samples: [Double] = []
        for _ in 0..<repetitions {
            session.truncate(to: 0)
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try session.evaluateLast(input)
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples.append(Double(n) / t)
        }
        return Result(test: "pp\(n)", tokens: n, samples: samples)
    }

    /// Decode of `n` tokens, one at a time, from an empty cache; with `sequences` > 1, that many
    /// sequences step together (one forward pass per step, as a server batches them) and the
    /// figure is their tokens per second together (`tg128x8`).
    public func decode(_ n: Int, sequences: Int = 1) throws -> Result {
        let sessions = try (0..<sequences).map { _ in try model.makeSession(contextLength: n + 16) }
        let inputs = (0..<sequences).map { tokens(n, seed: 2 + UInt64($0)) }
        _ = try Session.evaluateLast(sessions, appending: inputs.map { [$0[0]] })  // warm-up
        var samples: [Double] = []
        for _ in 0..<repetitions {
            for s in sessions { s.truncate(to: 0) }
            let t0 = DispatchTime.now().uptimeNanoseconds
            for i in 0..<n {
                if sequences == 1 {
                    _ = try sessions[0].evaluateLast([inputs[0][i]])
                } else {
                    _ = try Session.evaluateLast(sessions, appending: inputs.map { [$0[i]] })
                }
            }
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples.append(Double(n * sequences) / t)
        }
        return Result(test: sequences == 1 ? "tg\(n)" : "tg\(n)x\(sequences)", tokens: n * sequences, samples: samples)
    }
}

/// Peak resident memory of this process so far, in bytes.
public func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}
