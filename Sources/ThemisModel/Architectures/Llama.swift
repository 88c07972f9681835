import ThemisBackend

/// Llama 1, 2 and 3, SmolLM and Mistral files (`llama`): pre-norm blocks, SwiGLU, RoPE on
/// adjacent pairs (the converter permutes Q and K for it), Llama 3's per-pair frequency factors
/// (`rope_freqs.weight`) and linear RoPE scaling where the file has them, optional biases, and
/// Mistral's sliding window on every layer where the file sets `attention.sliding_window`.
/// (llama.cpp's converter writes no window for Mistral and llama.cpp ignores the key for this
/// architecture, so files it made run as it runs them; a file that does set one gets the
/// attention of Mistral's reference implementation.)
struct Llama: DecoderArchitecture {
    static let names = ["llama"]
    let embedding: Embedding
    let head: OutputHead
    let blocks: [DecoderBlockWeights]
    let layout: AttentionLayout

    init(config c: ModelConfig, parameters: HyperParameters, weights: WeightLoader, contextLength: Int) throws {
        embedding = try Embedding(weights, config: c)
        head = try OutputHead(weights, config: c, embedding: embedding)
        var layout = AttentionLayout(config: c, ropeLayout: .adjacentPairs)
        layout.ropeScaling = try RoPEScaling(linearFrom: parameters)
        layout.ropeScaling.frequencyFactors = try weights.hostVector("rope_freqs.weight", count: c.ropeDimensionCount / 2)
        layout.mask.window = try parameters.int("attention.sliding_window", default: 0, 0...ModelConfig.limits.context.upperBound)
        self.layout = layout
        blocks = try (0..<c.blockCount).map { i in
            // old converters stored the rotary tables; llama.cpp ignores them too
            weights.ignore("blk.\(i).attn_rot_embd")
            return try DecoderBlockWeights(
                weights, block: i, config: c, attention: AttentionWeights(weights, block: i, config: c),
                feedForward: FeedForwardWeights(weights, block: i, config: c, activation: .silu))
        }
    }

    func block(_ layer: Int, _ pass: ForwardPass) {
        pass.decoderBlock(layer, blocks[layer], layout)
    }
}
