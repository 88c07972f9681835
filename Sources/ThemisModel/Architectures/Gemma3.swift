import ThemisBackend

/// Gemma 3 text models (`gemma3`): embeddings scaled by `sqrt(width)`; "sandwich" blocks (a norm
/// before and after attention and after the feed-forward network); GELU-gated FFN; per-head Q/K
/// norms; five sliding-window layers to each global one (where the file names a window), the
/// sliding ones with their own RoPE base (`rope.freq_base_swa`, else 10,000) and no position
/// scaling; final-logit soft-capping only where the file asks for it.
struct Gemma3: DecoderArchitecture {
    static let names = ["gemma3"]
    let embedding: Embedding
    let head: OutputHead
    let blocks: [DecoderBlockWeights]
    let layouts: [AttentionLayout]

    init(config c: ModelConfig, parameters: HyperParameters, weights: WeightLoader, contextLength: Int) throws {
        embedding = try Embedding(weights, config: c, scale: Float(c.embeddingLength).squareRoot())
        let cap = parameters.has("final_logit_softcapping")
            ? try parameters.positive("final_logit_softcapping", below: 1e6) : nil
        head = try OutputHead(weights, config: c, embedding: embedding, softcap: cap)
        let window = try parameters.int("attention.sliding_window", default: 0, 0...ModelConfig.limits.context.upperBound)
        var global = AttentionLayout(config: c, ropeLayout: .halfSplit)
        global.ropeScaling = try RoPEScaling(linearFrom: parameters)
        global.scale = Gemma2.attentionScale(c, largest: 62)
        var local = global
        local.freqBase = try parameters.positive("rope.freq_base_swa", default: 10_000, below: 1e12)
        local.ropeScaling = .none
        local.mask = AttentionMask(window: window)
        let sliding = window > 0 ? try parameters.slidingLayers(blockCount: c.blockCount, period: 6)
            : Array(repeating: false, count: c.blockCount)
        layouts = sliding.map { $0 ? local : global }
        blocks = try (0..<c.blockCount).map { i in
            try DecoderBlockWeights(
                weights, block: i, config: c, attention: AttentionWeights(weights, block: i, config: c, headNorms: true),
                feedForward: FeedForwardWeights(weights, block: i, config: c, activation: .gelu), postNorms: true)
        }
    }

    func block(_ layer: Int, _ pass: ForwardPass) {
        pass.decoderBlock(layer, blocks[layer], layouts[layer])
    }
}
