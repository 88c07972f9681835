import ThemisBackend

/// Llama 1, 2 and 3, SmolLM and Mistral files (`llama`): pre-norm blocks, SwiGLU, RoPE on
/// adjacent pairs (the converter permutes Q and K for it), Llama 3's per-pair frequency factors
/// (`rope_freqs.weight`) and linear RoPE scaling where the file has them, optional biases.
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
