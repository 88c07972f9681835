import ThemisBackend

/// Phi-3 and Phi-3.5 (`phi3`): pre-norm blocks whose Q, K and V sit in one matrix
/// (`attn_qkv.weight`, or three as in some conversions) and whose gate and up projections sit in
/// one (`ffn_up.weight`, gate first); RoPE on the head halves over `rope.dimension_count`
/// elements (partial rotary), with the long-RoPE factors where the file has them. Like llama.cpp,
/// no sliding window even where the file names one (llama.cpp turned Phi's off).
struct Phi3: DecoderArchitecture {
    static let names = ["phi3"]
    let embedding: Embedding
    let head: OutputHead
    let blocks: [DecoderBlockWeights]
    let layout: AttentionLayout

    init(config c: ModelConfig, parameters: HyperParameters, weights: WeightLoader, contextLength: Int) throws {
        embedding = try Embedding(weights, config: c)
        head = try OutputHead(weights, config: c, embedding: embedding)
        var layout = AttentionLayout(config: c, ropeLayout: .halfSplit)
        layout.ropeScaling = try RoPEScaling(linearFrom: parameters)
        // Long-RoPE: one factor per rotated pair; like llama.cpp, the long factors when the
        // context runs past the original training context, the short ones otherwise.
        let pairs = c.ropeDimensionCount / 2
        let long = try weights.hostVector("rope_factors_long.weight", count: pairs)
        let short = try weights.hostVector("rope_factors_short.weight", count: pairs)
        let original = try parameters.int("rope.scaling.original_context_length", default: c.contextLength,
                                          ModelConfig.limits.context)
        // (llama.cpp compares its context rounded up to a multiple of 256)
        let padded = (contextLength + 255) / 256 * 256
        layout.ropeScaling.frequencyFactors = padded > original ? long ?? short : short ?? long
        self.layout = layout
        let fused = weights.file.tensorInfo("blk.0.attn_qkv.weight") != nil
        blocks = try (0..<c.blockCount).map { i in
            try DecoderBlockWeights(
                weights, block: i, config: c,
                attention: fused ? AttentionWeights(fused: weights, block: i, config: c)
                    : AttentionWeights(weights, block: i, config: c),
                feedForward: FeedForwardWeights(fusedGateUp: weights, block: i, config: c, activation: .silu))
        }
    }

    func block(_ layer: Int, _ pass: ForwardPass) {
        pass.decoderBlock(layer, blocks[layer], layout)
    }
}
