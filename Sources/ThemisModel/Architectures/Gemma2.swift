import ThemisBackend

/// Gemma 2 (`gemma2`): Gemma 3's sandwich blocks without the Q/K norms, sliding-window and
/// global layers alternating (the even ones slide), one RoPE base unless the file gives the
/// sliding layers their own, and soft-capping of the attention scores and of the final logits.
enum Gemma2: DecoderArchitecture {
    static let names = ["gemma2"]

    static func load(config c: ModelConfig, parameters p: HyperParameters, weights w: WeightLoader, contextLength: Int)
        throws -> Decoder
    {
        // llama.cpp's defaults for files without the keys: window 4096, caps 50 and 30
        let finalCap = try p.positive("final_logit_softcapping", default: 30, below: 1e6)
        let window = try p.int("attention.sliding_window", default: 4096, 1...ModelConfig.limits.context.upperBound)
        var global = try AttentionLayout(config: c, ropeLayout: .halfSplit, parameters: p)
        global.scale = attentionScale(c, largest: 46)
        global.mask.softcap = try p.positive("attn_logit_softcapping", default: 50, below: 1e6)
        var local = global
        local.mask.window = window
        local.freqBase = try p.positive("rope.freq_base_swa", default: Double(c.ropeFreqBase), below: 1e12)
        let sliding = try p.slidingLayers(blockCount: c.blockCount, period: 2)
        return try Decoder(w, config: c, embeddingScale: Float(c.embeddingLength).squareRoot(), softcap: finalCap,
                           layouts: sliding.map { $0 ? local : global }) { i in
            try DecoderBlockWeights(w, block: i, config: c, activation: .gelu, postNorms: true)
        }
    }

    /// Gemma scales queries by `1/sqrt(query_pre_attn_scalar)`, which the GGUF file does not
    /// carry; llama.cpp uses the head size, except for the 27B models (recognised by their
    /// `largest` block count), whose scalar is width / heads. So do we.
    static func attentionScale(_ c: ModelConfig, largest blocks: Int) -> Float {
        let scalar = c.blockCount == blocks ? c.embeddingLength / c.headCount : c.headDim
        return 1 / Float(scalar).squareRoot()
    }
}
