import ThemisBackend

/// The projections of a decoder block a LoRA adapter can adapt.
public enum LoRATarget: String, CaseIterable, Codable, Sendable {
    case q, k, v, o, gate, up, down

    /// The stem of the base weight's GGUF name (`blk.N.<stem>.weight`).
    public var stem: String {
        switch self {
        case .q: return "attn_q"
        case .k: return "attn_k"
        case .v: return "attn_v"
        case .o: return "attn_output"
        case .gate: return "ffn_gate"
        case .up: return "ffn_up"
        case .down: return "ffn_down"
        }
    }

    /// The base weight's name in block `block`.
    public func weightName(block: Int) -> String { "blk.\(block).\(stem).weight" }

    /// Output and input widths of the base weight.
    public func shape(_ c: ModelConfig) -> (outputs: Int, inputs: Int) {
        switch self {
        case .q: return (c.qWidth, c.embeddingLength)
        case .k, .v: return (c.kvWidth, c.embeddingLength)
        case .o: return (c.embeddingLength, c.qWidth)
        case .gate, .up: return (c.feedForwardLength, c.embeddingLength)
        case .down: return (c.embeddingLength, c.feedForwardLength)
        }
    }
}

/// Why a LoRA adapter could not be read, written or applied.
public struct LoRAError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "LoRA adapter \(path): \(reason)" }
}

/// A LoRA adapter in llama.cpp's GGUF format (`general.type = adapter`, `adapter.type = lora`,
/// `adapter.lora.alpha`, tensors `blk.N.<stem>.weight.lora_a` `[rank, inputs]` and `.lora_b`
/// `[outputs, rank]`), read and checked against the model it adapts. An adapted weight `W`
/// computes `W x + s · B (A x)` with `s = scale · alpha / rank` (`scale` when alpha is 0, as
/// llama.cpp does).
public struct LoRAAdapterFile: @unchecked Sendable {
    // The GGUF file is immutable and read-only.

    /// One adapted projection.
    public struct Entry: Sendable {
        public let block: Int
        public let target: LoRATarget
        public let rank: Int
        public let a: GGUFTensorInfo
        public let b: GGUFTensorInfo
    }

    public let file: GGUFFile
    /// `adapter.lora.alpha` (0 when the file has none).
    public let alpha: Float
    /// The adapted projections, by block then target.
    public let entries: [Entry]

    /// Storage types an adapter's matrices may have.
    public static let types: [StorageType] = [.f32, .f16, .bf16]
    /// The largest rank accepted.
    public static let maximumRank = 4096

    /// Reads `path` and checks that it adapts the model of `config` (its `architecture`, every
    /// tensor's name, shape and type); throws `LoRAError` naming the first thing that does not fit.
    public init(path: String, config: ModelConfig) throws {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw LoRAError(path, "\(error)") }
        self.file = file
        func string(_ key: String) -> String? { file.metadata[key]?.string }
        guard string("general.type") == "adapter" else {
            throw LoRAError(path, "general.type is \(string("general.type").map { "'\($0)'" } ?? "missing"), not 'adapter' (is it a model file?)")
        }
        guard string("adapter.type") == "lora" else {
            throw LoRAError(path, "adapter.type is \(string("adapter.type").map { "'\($0)'" } ?? "missing"), not 'lora'")
        }
        guard string("general.architecture") == config.architecture else {
            throw LoRAError(path, "it adapts architecture '\(string("general.architecture") ?? "?")', the model is '\(config.architecture)'")
        }
        if let value = file.metadata["adapter.lora.alpha"] {
            guard let a = value.double, a.isFinite, a >= 0, a < 1e6 else {
                throw LoRAError(path, "adapter.lora.alpha is not a number in 0 ..< 1000000")
            }
            alpha = Float(a)
        } else {
            alpha = 0
        }
        var halves: [String: (a: GGUFTensorInfo?, b: GGUFTensorInfo?)] = [:]
        var order: [String] = []  // file order, so the first problem named is the file's first
        for info in file.tensors {
            if info.name.hasSuffix("_norm.weight") { continue }  // llama.cpp ignores these too
            let base = String(info.name.dropLast(7))
            if info.name.hasSuffix(".lora_a") || info.name.hasSuffix(".lora_b"), halves[base] == nil { order.append(base) }
            if info.name.hasSuffix(".lora_a") {
                halves[base, default: (nil, nil)].a = info
            } else if info.name.hasSuffix(".lora_b") {
                halves[base, default: (nil, nil)].b = info
            } else {
                throw LoRAError(path, "tensor '\(info.name)' is neither a .lora_a nor a .lora_b matrix")
            }
        }
        let byName = Dictionary(uniqueKeysWithValues: (0..<config.blockCount).flatMap { block in
            LoRATarget.allCases.map { ($0.weightName(block: block), (block, $0)) }
        })
        var entries: [Entry] = []
        for name in order {
            let pair = halves[name]!
            guard let (block, target) = byName[name] else {
                throw LoRAError(path, "tensor '\(name)' is not a projection this engine adapts (blk.N.{\(LoRATarget.allCases.map(\.stem).joined(separator: ","))}.weight of \(config.blockCount) blocks)")
            }
            guard let a = pair.a, let b = pair.b else {
                throw LoRAError(path, "'\(name)' has \(pair.a == nil ? ".lora_b without .lora_a" : ".lora_a without .lora_b")")
            }
            for m in [a, b] where !Self.types.contains(m.type) {
                throw LoRAError(path, "tensor '\(m.name)' is stored as \(m.type); adapters here are \(Self.types.map(\.description).joined(separator: ", "))")
            }
            let (outputs, inputs) = target.shape(config)
            guard a.shape.count == 2, b.shape.count == 2, a.shape[1] == inputs, b.shape[0] == outputs,
                  a.shape[0] == b.shape[1], (1...Self.maximumRank).contains(a.shape[0])
            else {
                throw LoRAError(path, "'\(name)' has lora_a \(a.shape) and lora_b \(b.shape); for a weight of \(outputs) outputs and \(inputs) inputs they must be [rank, \(inputs)] and [\(outputs), rank], rank 1...\(Self.maximumRank)")
            }
            entries.append(Entry(block: block, target: target, rank: a.shape[0], a: a, b: b))
        }
        guard !entries.isEmpty else { throw LoRAError(path, "it holds no LoRA matrices") }
        self.entries = entries.sorted { ($0.block, LoRATarget.allCases.firstIndex(of: $0.target)!) < ($1.block, LoRATarget.allCases.firstIndex(of: $1.target)!) }
    }

    /// The factor of `B (A x)` for `entry` at the user's `scale`.
    public func factor(_ entry: Entry, scale: Float) -> Float {
        alpha == 0 ? scale : scale * alpha / Float(entry.rank)
    }

    /// The values of one of the adapter's matrices, row-major.
    public func values(_ info: GGUFTensorInfo) -> [Float] {
        let count = info.shape.reduce(1, *)
        return [Float](unsafeUninitializedCapacity: count) { out, n in
            Dequantize.row(info.type, file.bytes(of: info).baseAddress!, count: count, into: out.baseAddress!)
            n = count
        }
    }

    /// One adapted projection to write: `a` `[rank, inputs]` and `b` `[outputs, rank]`, row-major.
    public struct Matrices: Sendable {
        public var block: Int
        public var target: LoRATarget
        public var rank: Int
        public var a: [Float]
        public var b: [Float]
        public init(block: Int, target: LoRATarget, rank: Int, a: [Float], b: [Float]) {
            self.block = block
            self.target = target
            self.rank = rank
            self.a = a
            self.b = b
        }
    }

    /// Writes an adapter for a model of `config` in llama.cpp's format, its matrices in `type`
    /// (f16: half the size).
    public static func write(to path: String, config: ModelConfig, alpha: Float, matrices: [Matrices],
                             name: String? = nil, type: GGUFWriter.FloatType = .f32) throws {
        var w = GGUFWriter()
        w.set("general.type", .string("adapter"))
        w.set("general.architecture", .string(config.architecture))
        if let name { w.set("general.name", .string(name)) }
        w.set("adapter.type", .string("lora"))
        w.set("adapter.lora.alpha", .float32(alpha))
        for m in matrices {
            let (outputs, inputs) = m.target.shape(config)
            guard m.a.count == m.rank * inputs, m.b.count == outputs * m.rank else {
                throw LoRAError(path, "block \(m.block) \(m.target): matrices of \(m.a.count) and \(m.b.count) values for rank \(m.rank)")
            }
            let base = m.target.weightName(block: m.block)
            w.tensors.append(.init(name: base + ".lora_a", shape: [m.rank, inputs], values: m.a, type: type))
            w.tensors.append(.init(name: base + ".lora_b", shape: [outputs, m.rank], values: m.b, type: type))
        }
        try w.write(to: path)
    }
}
