import ThemisBackend

/// Phi-3 and Phi-3.5 (`phi3`): pre-norm blocks whose Q, K and V sit in one matrix
/// (`attn_qkv.weight`, or three as in some conversions) and whose gate and up projections sit in
/// one (`ffn_up.weight`, gate first); RoPE on the head halves over `rope.dimension_count`
/// elements (partial rotary), with the long-RoPE factors where the file has them. Like llama.cpp,
/// no sliding window even where the file names one (llama.cpp turned Phi's off).
enum Phi3: DecoderArchitecture {
    static let names = ["phi3"]

    static func load(config c: ModelConfig, parameters p: HyperParameters, weights w: WeightLoader, contextLength: Int)
        throws -> Decoder
    {
        var layout = try AttentionLayout(config: c, ropeLayout: .halfSplit, parameters: p)
        // Long-RoPE: one factor per rotated pair; like llama.cpp, the long factors when the
        // context (rounded up to a multiple of 256, as llama.cpp pads it) runs past the original
        // training context, the short ones otherwise.
        let pairs = c.ropeDimensionCount / 2
        let long = try w.hostVector("rope_factors_long.weight", count: pairs)
        let short = try w.hostVector("rope_factors_short.weight", count: pairs)
        let original = try p.int("rope.scaling.original_context_length", default: c.contextLength, ModelConfig.limits.context)
        let padded = (contextLength + 255) / 256 * 256
        layout.ropeScaling.frequencyFactors = padded > original ? long ?? short : short ?? long
        let fused = w.file.tensorInfo("blk.0.attn_qkv.weight") != nil
        return try Decoder(w, config: c, layouts: Array(repeating: layout, count: c.blockCount)) { i in
            try DecoderBlockWeights(
                w, block: i, config: c,
                attention: fused ? AttentionWeights(fused: w, block: i, config: c) : AttentionWeights(w, block: i, config: c),
                feedForward: FeedForwardWeights(fusedGateUp: w, block: i, config: c, activation: .silu))
        }
    }
}
