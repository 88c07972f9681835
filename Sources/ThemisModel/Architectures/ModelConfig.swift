import ThemisBackend

/// Reads an architecture's hyper-parameters (`<arch>.<key>`) from a GGUF file, checking each
/// against a range so that every size derived from them is small enough to compute with.
public struct HyperParameters: Sendable {
    public let file: GGUFFile
    /// `general.architecture`.
    public let architecture: String

    /// Whether the file has `<arch>.<key>`.
    public func has(_ key: String) -> Bool { file.metadata[architecture + "." + key] != nil }

    /// An integer in `range`; `value` when the key is absent (nil: the key is required).
    public func int(_ key: String, default value: Int? = nil, _ range: ClosedRange<Int>) throws -> Int {
        let name = architecture + "." + key
        let v: Int
        if file.metadata[name] == nil, let value { v = value } else { v = try file.int(name) }
        guard range.contains(v) else {
            throw ModelError.badHyperParameter("\(name) is \(v), outside \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    /// A finite number above 0 and below `limit`; `value` when the key is absent.
    public func positive(_ key: String, default value: Double? = nil, below limit: Double) throws -> Float {
        let name = architecture + "." + key
        let v: Double
        if file.metadata[name] == nil, let value { v = value } else { v = try file.double(name) }
        guard v.isFinite, v > 0, v < limit else {
            throw ModelError.badHyperParameter("\(name) is \(v); it must be a finite number above 0 and below \(limit)")
        }
        return Float(v)
    }
}

/// The hyper-parameters every architecture has, read from a GGUF file's metadata
/// (`<arch>.<key>`); an architecture reads its own extra ones in its file.
public struct ModelConfig: Sendable, Equatable {
    /// `general.architecture`, one of `Architectures.names`.
    public var architecture: String
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

    /// Reads every common hyper-parameter from `file`; throws for an unknown architecture and for
    /// a missing, out-of-range or inconsistent value.
    public init(file: GGUFFile) throws {
        let archName = (try? file.string("general.architecture")) ?? "(none)"
        guard Architectures.type(named: archName) != nil else { throw ModelError.unsupportedArchitecture(archName) }
        architecture = archName
        let p = archName + "."
        let limits = ModelConfig.limits
        let hp = HyperParameters(file: file, architecture: archName)
        blockCount = try hp.int("block_count", limits.blocks)
        contextLength = try hp.int("context_length", limits.context)
        embeddingLength = try hp.int("embedding_length", limits.width)
        feedForwardLength = try hp.int("feed_forward_length", limits.width)
        headCount = try hp.int("attention.head_count", limits.heads)
        headCountKV = try hp.int("attention.head_count_kv", default: headCount, limits.heads)
        guard headCount % headCountKV == 0 else {
            throw ModelError.badHyperParameter("\(headCount) attention heads do not divide into \(headCountKV) KV heads")
        }
        guard embeddingLength % headCount == 0 || hp.has("attention.key_length") else {
            throw ModelError.badHyperParameter("width \(embeddingLength) does not divide into \(headCount) heads")
        }
        headDim = try hp.int("attention.key_length", default: embeddingLength / headCount, limits.headDim)
        if hp.has("attention.value_length") {
            let valueLength = try hp.int("attention.value_length", limits.headDim)
            guard valueLength == headDim else {
                throw ModelError.badHyperParameter("value length \(valueLength) differs from key length \(headDim)")
            }
        }
        guard headDim % 2 == 0, headCount * headDim <= limits.width.upperBound else {
            throw ModelError.badHyperParameter("head size \(headDim) × \(headCount) heads (the size must be even, the product at most \(limits.width.upperBound))")
        }
        ropeDimensionCount = try hp.int("rope.dimension_count", default: headDim, 2...headDim)
        guard ropeDimensionCount % 2 == 0 else {
            throw ModelError.badHyperParameter("\(p)rope.dimension_count \(ropeDimensionCount) is odd")
        }
        ropeFreqBase = try hp.positive("rope.freq_base", default: 10_000, below: 1e12)
        rmsEpsilon = try hp.positive("attention.layer_norm_rms_epsilon", below: 1)
        if hp.has("vocab_size") {
            vocabularySize = try hp.int("vocab_size", limits.vocabulary)
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
