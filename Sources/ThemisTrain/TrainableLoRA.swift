import ThemisBackend
import ThemisModel

/// What a LoRA adapter adapts and how: rank, alpha (the update is scaled by alpha / rank),
/// dropout on each adapted projection's input, the projections, and the blocks.
public struct LoRASettings: Codable, Sendable, Equatable {
    public var rank = 8
    public var alpha: Float = 16
    public var dropout: Float = 0
    public var targets: [LoRATarget] = LoRATarget.allCases
    /// The blocks adapted; nil for every block.
    public var blocks: [Int]?

    public init(rank: Int = 8, alpha: Float = 16, dropout: Float = 0, targets: [LoRATarget] = LoRATarget.allCases,
                blocks: [Int]? = nil) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
        self.blocks = blocks
    }

    /// `alpha / rank`: the factor on `B (A x)`.
    public var factor: Float { alpha / Float(rank) }
}

/// One adapted projection: block and target.
public struct LoRAKey: Hashable, Codable, Sendable, Comparable {
    public var block: Int
    public var target: LoRATarget

    public init(block: Int, target: LoRATarget) {
        self.block = block
        self.target = target
    }

    public static func < (a: LoRAKey, b: LoRAKey) -> Bool {
        (a.block, LoRATarget.allCases.firstIndex(of: a.target)!) < (b.block, LoRATarget.allCases.firstIndex(of: b.target)!)
    }
}

/// A LoRA adapter being trained: each projection's `A` `[rank, inputs]` and `B` `[outputs, rank]`
/// on the backend, with their gradients beside them.
public final class TrainableLoRA: @unchecked Sendable {
    // Used by one trainer at a time; the tensors are handles owned by the backend.
    public struct Parameter {
        public let key: LoRAKey
        public let inputs: Int, outputs: Int
        public let a: Tensor, b: Tensor
        public let gradA: Tensor, gradB: Tensor
    }

    public let settings: LoRASettings
    /// The parameters in `LoRAKey` order (the order of every host-side array of values).
    public let parameters: [Parameter]
    private let index: [LoRAKey: Int]
    let backend: any Backend

    /// Zero-initialised tensors for every projection `settings` names (values set with `load`).
    public init(settings: LoRASettings, config: ModelConfig, backend: any Backend) throws {
        guard (1...LoRAAdapterFile.maximumRank).contains(settings.rank) else {
            throw TrainError.settings("LoRA rank \(settings.rank) is outside 1...\(LoRAAdapterFile.maximumRank)")
        }
        guard settings.alpha.isFinite && settings.alpha > 0 else { throw TrainError.settings("LoRA alpha must be above 0") }
        guard settings.dropout >= 0 && settings.dropout < 1 else { throw TrainError.settings("LoRA dropout must be in 0 ..< 1") }
        guard !settings.targets.isEmpty else { throw TrainError.settings("no LoRA targets") }
        let blocks = settings.blocks ?? Array(0..<config.blockCount)
        guard !blocks.isEmpty, blocks.allSatisfy({ (0..<config.blockCount).contains($0) }) else {
            throw TrainError.settings("LoRA blocks must lie in 0..<\(config.blockCount)")
        }
        self.settings = settings
        self.backend = backend
        var parameters: [Parameter] = []
        for block in Set(blocks).sorted() {
            for target in LoRATarget.allCases where settings.targets.contains(target) {
                let (outputs, inputs) = target.shape(config)
                parameters.append(Parameter(
                    key: LoRAKey(block: block, target: target), inputs: inputs, outputs: outputs,
                    a: try backend.makeTensor(shape: [settings.rank, inputs]), b: try backend.makeTensor(shape: [outputs, settings.rank]),
                    gradA: try backend.makeTensor(shape: [settings.rank, inputs]),
                    gradB: try backend.makeTensor(shape: [outputs, settings.rank])))
            }
        }
        self.parameters = parameters
        index = Dictionary(uniqueKeysWithValues: parameters.enumerated().map { ($1.key, $0) })
    }

    /// The parameter adapting `target` of `block`, if any.
    public func parameter(_ block: Int, _ target: LoRATarget) -> Parameter? {
        index[LoRAKey(block: block, target: target)].map { parameters[$0] }
    }

    /// Number of trained values.
    public var count: Int { parameters.reduce(0) { $0 + settings.rank * ($1.inputs + $1.outputs) } }

    /// PEFT's initialisation: `A` uniform in ±1/sqrt(inputs) (Kaiming-uniform with a = sqrt(5)),
    /// `B` zero, so the adapted model starts as the base model. Seeded: the same seed, the same values.
    public func initialise(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for p in parameters {
            let bound = 1 / Float(p.inputs).squareRoot()
            backend.write((0..<settings.rank * p.inputs).map { _ in rng.uniform() * bound }, to: p.a)
            backend.write([Float](repeating: 0, count: p.outputs * settings.rank), to: p.b)
        }
    }

    /// Every `A` then `B` value, parameter by parameter.
    public func values() throws -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(count)
        for p in parameters { out += try backend.read(p.a) + backend.read(p.b) }
        return out
    }

    /// Every gradient, in the order of `values()`.
    public func gradients() throws -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(count)
        for p in parameters { out += try backend.read(p.gradA) + backend.read(p.gradB) }
        return out
    }

    /// Sets every value from `values` (the layout of `values()`).
    public func load(_ values: [Float]) {
        precondition(values.count == count, "\(values.count) values for an adapter of \(count)")
        var at = 0
        for p in parameters {
            for t in [p.a, p.b] {
                backend.write(Array(values[at..<at + t.count]), to: t)
                at += t.count
            }
        }
    }

    /// Sets every gradient to 0 (before a step's first sample).
    public func zeroGradients() {
        for p in parameters {
            backend.write([Float](repeating: 0, count: p.gradA.count), to: p.gradA)
            backend.write([Float](repeating: 0, count: p.gradB.count), to: p.gradB)
        }
    }

    /// The adapter as the model layer applies it at inference (the same tensors, the same factor).
    public func adapter(blockCount: Int) -> LoRAAdapter {
        var blocks = [[LoRATarget: LoRAPair]](repeating: [:], count: blockCount)
        for p in parameters {
            blocks[p.key.block][p.key.target] = LoRAPair(a: p.a, b: p.b, factor: settings.factor)
        }
        return LoRAAdapter(blocks: blocks)
    }

    /// The matrices to write as a llama.cpp adapter file.
    public func matrices() throws -> [LoRAAdapterFile.Matrices] {
        try parameters.map { p in
            LoRAAdapterFile.Matrices(block: p.key.block, target: p.key.target, rank: settings.rank,
                                     a: try backend.read(p.a), b: try backend.read(p.b))
        }
    }
}

/// A small seeded generator (SplitMix64): the same seed gives the same stream on every machine.
public struct SplitMix64: Sendable, Codable, Equatable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }

    /// Uniform in 0..<n.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Why training could not start or go on.
public enum TrainError: Error, CustomStringConvertible, Equatable {
    case settings(String)
    case unsupported(String)
    case data(String)
    case checkpoint(String)

    public var description: String {
        switch self {
        case .settings(let s): return "training settings: \(s)"
        case .unsupported(let s): return "cannot train this model: \(s)"
        case .data(let s): return "training data: \(s)"
        case .checkpoint(let s): return "checkpoint: \(s)"
        }
    }
}
