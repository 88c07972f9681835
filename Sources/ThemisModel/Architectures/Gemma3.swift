import ThemisBackend

/// Gemma 3 text models (`gemma3`): embeddings scaled by `sqrt(width)`; "sandwich" blocks (a norm
/// before and after attention and after the feed-forward network); GELU-gated FFN; per-head Q/K
/// norms; five sliding-window layers to each global one (where the file names a window), the
/// sliding ones with their own RoPE base (`rope.freq_base_swa`, else 10,000) and no position
/// scaling; final-logit soft-capping only where the file asks for it.
enum Gemma3: DecoderArchitecture {
    static let names = ["gemma3"]

    static func load(config c: ModelConfig, parameters p: HyperParameters, weights w: WeightLoader, contextLength: Int)
        throws -> Decoder
    {
        let cap = p.has("final_logit_softcapping") ? try p.positive("final_logit_softcapping", below: 1e6) : nil
        let window = try p.int("attention.sliding_window", default: 0, 0...ModelConfig.limits.context.upperBound)
        var global = try AttentionLayout(config: c, ropeLayout: .halfSplit, parameters: p)
        global.scale = Gemma2.attentionScale(c, largest: 62)
        var local = global
        local.freqBase = try p.positive("rope.freq_base_swa", default: 10_000, below: 1e12)
        local.ropeScaling = .none
        local.mask = AttentionMask(window: window)
        let sliding = window > 0 ? try p.slidingLayers(blockCount: c.blockCount, period: 6)
            : Array(repeating: false, count: c.blockCount)
        return try Decoder(w, config: c, embeddingScale: Float(c.embeddingLength).squareRoot(), softcap: cap,
                           layouts: sliding.map { $0 ? local : global }) { i in
            try DecoderBlockWeights(w, block: i, config: c, headNorms: true, activation: .gelu, postNorms: true)
        }
    }
}
