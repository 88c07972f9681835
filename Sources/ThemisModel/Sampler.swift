/// Sampling settings, applied in llama.cpp's order: repetition penalty, top-k, top-p, min-p,
/// temperature, then a draw. `temperature == 0` is greedy argmax.
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float = 0.8
    /// Keep the `topK` most likely tokens (0 = all).
    public var topK: Int = 40
    /// Keep the smallest set whose probability reaches `topP` (1 = all).
    public var topP: Float = 0.95
    /// Drop tokens below `minP` times the top probability (0 = none).
    public var minP: Float = 0.05
    /// Divide positive (multiply negative) logits of recent tokens by this (1 = off).
    public var repetitionPenalty: Float = 1.0
    /// How many recent tokens the penalty looks at.
    public var penaltyWindow: Int = 64
    /// Random seed (nil: from the system).
    public var seed: UInt64?

    public init() {}

    /// Greedy argmax decoding.
    public static var greedy: SamplingParameters { var p = SamplingParameters(); p.temperature = 0; return p }

    /// Throws `ModelError.invalidSampling` for out-of-range values.
    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw ModelError.invalidSampling("temperature must be >= 0, got \(temperature)") }
        guard topK >= 0 else { throw ModelError.invalidSampling("top-k must be >= 0, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw ModelError.invalidSampling("top-p must be in (0, 1], got \(topP)") }
        guard minP >= 0, minP <= 1 else { throw ModelError.invalidSampling("min-p must be in [0, 1], got \(minP)") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw ModelError.invalidSampling("repetition penalty must be > 0, got \(repetitionPenalty)")
        }
        guard penaltyWindow >= 0 else { throw ModelError.invalidSampling("penalty window must be >= 0") }
    }
}

/// xoshiro256** seeded through SplitMix64: fast, reproducible across platforms.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func next() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var r = z
            r = (r ^ (r >> 30)) &* 0xBF58_476D_1CE4_E5B9
            r = (r ^ (r >> 27)) &* 0x94D0_49BB_1331_11EB
            return r ^ (r >> 31)
        }
        s = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }
}

/// Picks the next token from logits.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: SeededGenerator

    public init(_ parameters: SamplingParameters) throws {
        try parameters.validate()
        self.parameters = parameters
        rng = SeededGenerator(seed: parameters.seed ?? UInt64.random(in: 0...UInt64.max))
    }

    /// The next token given `logits` (one row, vocabulary wide) and the tokens so far.
    public mutating func sample(_ logits: [Float], history: [Int32]) -> Int32 {
        var logits = logits
        let p = parameters
        if p.repetitionPenalty != 1, p.penaltyWindow > 0 {
            for id in Set(history.suffix(p.penaltyWindow)) where Int(id) < logits.count {
                let l = logits[Int(id)]
                logits[Int(id)] = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty
            }
        }
        if p.temperature == 0 { return Self.argmax(logits) }
        // candidates sorted by logit, cut by top-k
        var ids = Array(0..<Int32(logits.count))
        let k = p.topK > 0 ? min(p.topK, ids.count) : ids.count
        if k < ids.count {
            ids = Self.partialTop(ids, k: k, by: logits)
        } else {
            ids.sort { logits[Int($0)] > logits[Int($1)] }
        }
        // softmax over the candidates (before temperature, as llama.cpp's top-p / min-p do)
        let mx = logits[Int(ids[0])]
        var probs = ids.map { expf(logits[Int($0)] - mx) }
        var total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        var keep = probs.count
        if p.topP < 1 {
            var cum: Float = 0
            for (i, q) in probs.enumerated() {
                cum += q
                if cum >= p.topP { keep = i + 1; break }
            }
        }
        if p.minP > 0 {
            let floor = probs[0] * p.minP
            var m = 1
            while m < keep && probs[m] >= floor { m += 1 }
            keep = m
        }
        ids = Array(ids.prefix(keep))
        // temperature, then draw
        let scaled = ids.map { expf((logits[Int($0)] - mx) / p.temperature) }
        total = scaled.reduce(0, +)
        var r = Float(Double(rng.next() >> 11) / Double(1 << 53)) * total
        for (i, w) in scaled.enumerated() {
            r -= w
            if r <= 0 { return ids[i] }
        }
        return ids[ids.count - 1]
    }

    /// Index of the largest logit (the first on ties).
    public static func argmax(_ logits: [Float]) -> Int32 {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }

    /// The `k` ids with the largest logits, largest first, in one pass (O(V log k)).
    private static func partialTop(_ ids: [Int32], k: Int, by logits: [Float]) -> [Int32] {
        // ascending by logit, so top[0] is the smallest kept
        var top = ids.prefix(k).sorted { logits[Int($0)] < logits[Int($1)] }
        for id in ids.dropFirst(k) {
            let l = logits[Int(id)]
            if l <= logits[Int(top[0])] { continue }
            var lo = 0, hi = top.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if logits[Int(top[mid])] < l { lo = mid + 1 } else { hi = mid }
            }
            top.insert(id, at: lo)
            top.removeFirst()
        }
        return top.reversed()
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
