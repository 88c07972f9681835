import ThemisBackend

/// The architectures the transformer implements.
public enum Architecture: String, Sendable, CaseIterable {
    case llama, qwen2

    /// GGUF llama Q/K weights are permuted for adjacent-pair RoPE; qwen2 keeps NeoX's halves.
    public var ropeLayout: RoPELayout { self == .llama ? .adjacentPairs : .halfSplit }
}

/// Hyper-parameters read from a GGUF file's metadata (`<arch>.<key>`).
public struct ModelConfig: Sendable, Equatable {
    public var architecture: Architecture
    public var blockCount: Int
    public var contextLength: Int
    public var embeddingLength: Int
    public var feedForwardLength: Int
    public var headCount: Int
    public var headCountKV: Int
    public var headDim: Int
    public var ropeDimensionCount: Int
    public var ropeFreqBase: Float
    public var rmsEpsilon: Float
    public var vocabularySize: Int

    /// Reads every hyper-parameter from `file`; throws for a missing, out-of-range or
    /// inconsistent one, so that every size derived from them is small enough to compute with.
    public init(file: GGUFFile) throws {
        let archName = (try? file.string("general.architecture")) ?? "(none)"
        guard let arch = Architecture(rawValue: archName) else { throw ModelError.unsupportedArchitecture(archName) }
        architecture = arch
        let p = archName + "."
        let limits = ModelConfig.limits
        func int(_ key: String, default value: Int? = nil, _ range: ClosedRange<Int>) throws -> Int {
            let v: Int
            if file.metadata[p + key] == nil, let value { v = value } else { v = try file.int(p + key) }
            guard range.contains(v) else {
                throw ModelError.badHyperParameter("\(p + key) is \(v), outside \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        func positive(_ key: String, default value: Double?, below limit: Double) throws -> Float {
            let v: Double
            if file.metadata[p + key] == nil, let value { v = value } else { v = try file.double(p + key) }
            guard v.isFinite, v > 0, v < limit else {
                throw ModelError.badHyperParameter("\(p + key) is \(v); it must be a finite number above 0 and below \(limit)")
            }
            return Float(v)
        }
        blockCount = try int("block_count", limits.blocks)
        contextLength = try int("context_length", limits.context)
        embeddingLength = try int("embedding_length", limits.width)
        feedForwardLength = try int("feed_forward_length", limits.width)
        headCount = try int("attention.head_count", limits.heads)
        headCountKV = try int("attention.head_count_kv", default: headCount, limits.heads)
        guard headCount % headCountKV == 0 else {
            throw ModelError.badHyperParameter("\(headCount) attention heads do not divide into \(headCountKV) KV heads")
        }
        guard embeddingLength % headCount == 0 || file.metadata[p + "attention.key_length"] != nil else {
            throw ModelError.badHyperParameter("width \(embeddingLength) does not divide into \(headCount) heads")
        }
        headDim = try int("attention.key_length", default: embeddingLength / headCount, limits.headDim)
        if file.metadata[p + "attention.value_length"] != nil {
            let valueLength = try int("attention.value_length", limits.headDim)
            guard valueLength == headDim else {
                throw ModelError.badHyperParameter("value length \(valueLength) differs from key length \(headDim)")
            }
        }
        guard headDim % 2 == 0, headCount * headDim <= limits.width.upperBound else {
            throw ModelError.badHyperParameter("head size \(headDim) × \(headCount) heads (the size must be even, the product at most \(limits.width.upperBound))")
        }
        ropeDimensionCount = try int("rope.dimension_count", default: headDim, 2...headDim)
        guard ropeDimensionCount % 2 == 0 else {
            throw ModelError.badHyperParameter("\(p)rope.dimension_count \(ropeDimensionCount) is odd")
        }
        ropeFreqBase = try positive("rope.freq_base", default: 10_000, below: 1e12)
        rmsEpsilon = try positive("attention.layer_norm_rms_epsilon", default: nil, below: 1)
        if file.metadata[p + "vocab_size"] != nil {
            vocabularySize = try int("vocab_size", limits.vocabulary)
        } else {
            vocabularySize = file.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0
            guard limits.vocabulary.contains(vocabularySize) else {
                throw ModelError.badHyperParameter("vocabulary of \(vocabularySize) tokens")
            }
        }
    }

    /// The ranges every hyper-parameter is checked against: far beyond any published model, and
    /// small enough that products of them (weights, scratch, the KV cache) fit in an `Int`.
    public static let limits = (blocks: 1...1024, context: 1...(1 << 24), width: 1...(1 << 20),
                                heads: 1...4096, headDim: 2...4096, vocabulary: 1...(1 << 22))

    /// Width of the K and V projections.
    public var kvWidth: Int { headCountKV * headDim }
    /// Width of the Q projection.
    public var qWidth: Int { headCount * headDim }
}
