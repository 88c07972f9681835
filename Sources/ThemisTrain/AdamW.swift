#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// AdamW's settings, the learning-rate schedule (linear warm-up, then cosine decay to 0) and
/// gradient clipping by global norm.
public struct OptimizerSettings: Codable, Sendable, Equatable {
    public var learningRate: Float = 2e-4
    public var warmupSteps = 10
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var weightDecay: Float = 0
    /// Gradients whose global L2 norm is above this are scaled down to it; 0 turns clipping off.
    public var clipNorm: Float = 1

    public init() {}

    /// The learning rate of step `step` (0-based) of `total`.
    public func learningRate(step: Int, total: Int) -> Float {
        if step < warmupSteps { return learningRate * Float(step + 1) / Float(warmupSteps + 1) }
        let span = max(1, total - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        return learningRate * Float(0.5 * (1 + cos(Double.pi * progress)))
    }
}

/// AdamW on the host over every trained value (an adapter is a few million at most): the same
/// inputs give the same bits, so a resumed run ends where an uninterrupted one does.
public struct AdamW: Sendable, Codable, Equatable {
    public var settings: OptimizerSettings
    public var m: [Float]
    public var v: [Float]
    /// Updates taken.
    public var steps = 0

    public init(settings: OptimizerSettings, count: Int) {
        self.settings = settings
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: count)
    }

    /// The global L2 norm of `gradients`.
    public static func norm(_ gradients: [Float]) -> Double {
        (gradients.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot()
    }

    /// One update of `values` with `gradients` (clipped first) at learning rate `rate`.
    /// Returns the gradients' norm before clipping.
    @discardableResult
    public mutating func update(_ values: inout [Float], gradients: [Float], rate: Float) -> Double {
        precondition(values.count == m.count && gradients.count == m.count, "AdamW: \(values.count) values, \(m.count) moments")
        let norm = Self.norm(gradients)
        let clip: Float = settings.clipNorm > 0 && norm > Double(settings.clipNorm) ? Float(Double(settings.clipNorm) / norm) : 1
        steps += 1
        let b1 = settings.beta1, b2 = settings.beta2
        let c1 = 1 - Float(pow(Double(b1), Double(steps))), c2 = 1 - Float(pow(Double(b2), Double(steps)))
        let decay = 1 - rate * settings.weightDecay
        for i in values.indices {
            let g = gradients[i] * clip
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            let update = (m[i] / c1) / ((v[i] / c2).squareRoot() + settings.epsilon)
            values[i] = values[i] * decay - rate * update
        }
        return norm
    }
}
