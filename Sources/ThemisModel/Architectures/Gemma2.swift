import ThemisBackend

/// Gemma 2 (`gemma2`): Gemma 3's sandwich blocks without the Q/K norms, sliding-window and
/// global layers alternating (the even ones slide), one RoPE base, and soft-capping of the
/// attention scores and of the final logits.
struct Gemma2: DecoderArchitecture {
    static let names = ["gemma2"]
    let embedding: Embedding
    let head: OutputHead
    let blocks: [DecoderBlockWeights]
    let layouts: [AttentionLayout]

    init(config c: ModelConfig, parameters: HyperParameters, weights: WeightLoader, contextLength: Int) throws {
        embedding = try Embedding(weights, config: c, scale: Float(c.embeddingLength).squareRoot())
        let finalCap = try parameters.positive("final_logit_softcapping", default: 30, below: 1e6)
        head = try OutputHead(weights, config: c, embedding: embedding, softcap: finalCap)
        // llama.cpp's defaults for files without the keys: Gemma 2's window of 4096
        let window = try parameters.int("attention.sliding_window", default: 4096, 1...ModelConfig.limits.context.upperBound)
        var global = AttentionLayout(config: c, ropeLayout: .halfSplit)
        global.ropeScaling = try RoPEScaling(linearFrom: parameters)
        global.scale = Self.attentionScale(c, largest: 46)
        global.mask.softcap = try parameters.positive("attn_logit_softcapping", default: 50, below: 1e6)
        var local = global
        local.mask.window = window
        local.freqBase = try parameters.positive("rope.freq_base_swa", default: Double(c.ropeFreqBase), below: 1e12)
        layouts = try parameters.slidingLayers(blockCount: c.blockCount, period: 2).map { $0 ? local : global }
        blocks = try (0..<c.blockCount).map { i in
            try DecoderBlockWeights(
                weights, block: i, config: c, attention: AttentionWeights(weights, block: i, config: c),
                feedForward: FeedForwardWeights(weights, block: i, config: c, activation: .gelu), postNorms: true)
        }
    }

    func block(_ layer: Int, _ pass: ForwardPass) {
        pass.decoderBlock(layer, blocks[layer], layouts[layer])
    }

    /// Gemma scales queries by `1/sqrt(query_pre_attn_scalar)`, which the GGUF file does not
    /// carry; llama.cpp uses the head size, except for the 27B models (recognised by their
    /// `largest` block count), whose scalar is width / heads. So do we.
    static func attentionScale(_ c: ModelConfig, largest blocks: Int) -> Float {
        let scalar = c.blockCount == blocks ? c.embeddingLength / c.headCount : c.headDim
        return 1 / Float(scalar).squareRoot()
    }
}
