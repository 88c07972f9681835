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

    /// Reads every hyper-parameter from `file`; throws for a missing or inconsistent one.
    public init(file: GGUFFile) throws {
        let archName = (try? file.string("general.architecture")) ?? "(none)"
        guard let arch = Architecture(rawValue: archName) else { throw ModelError.unsupportedArchitecture(archName) }
        architecture = arch
        let p = archName + "."
        blockCount = try file.int(p + "block_count")
        contextLength = try file.int(p + "context_length")
        embeddingLength = try file.int(p + "embedding_length")
        feedForwardLength = try file.int(p + "feed_forward_length")
        headCount = try file.int(p + "attention.head_count")
        headCountKV = (try? file.int(p + "attention.head_count_kv")) ?? headCount
        guard headCount > 0, headCountKV > 0, headCount % headCountKV == 0, embeddingLength % headCount == 0 else {
            throw ModelError.badHyperParameter("head counts \(headCount)/\(headCountKV) for width \(embeddingLength)")
        }
        headDim = (try? file.int(p + "attention.key_length")) ?? embeddingLength / headCount
        ropeDimensionCount = (try? file.int(p + "rope.dimension_count")) ?? headDim
        ropeFreqBase = Float((try? file.double(p + "rope.freq_base")) ?? 10_000)
        rmsEpsilon = Float(try file.double(p + "attention.layer_norm_rms_epsilon"))
        if let n = try? file.int(p + "vocab_size") {
            vocabularySize = n
        } else {
            vocabularySize = (file.metadata["tokenizer.ggml.tokens"]?.array?.count) ?? 0
        }
        guard blockCount > 0, contextLength > 0, feedForwardLength > 0, vocabularySize > 0,
              ropeDimensionCount <= headDim, ropeDimensionCount % 2 == 0 else {
            throw ModelError.badHyperParameter("blocks \(blockCount), context \(contextLength), vocabulary \(vocabularySize)")
        }
    }

    /// Width of the K and V projections.
    public var kvWidth: Int { headCountKV * headDim }
    /// Width of the Q projection.
    public var qWidth: Int { headCount * headDim }
}
