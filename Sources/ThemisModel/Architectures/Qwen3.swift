import ThemisBackend

/// Qwen 3 dense models (`qwen3`): Qwen 2's blocks without the Q/K/V biases, with an RMSNorm of
/// every query and key head (`attn_q_norm`, `attn_k_norm`) before RoPE; the head size is its own
/// hyper-parameter (`attention.key_length`), not width / heads.
struct Qwen3: DecoderArchitecture {
    static let names = ["qwen3"]
    let embedding: Embedding
    let head: OutputHead
    let blocks: [DecoderBlockWeights]
    let layout: AttentionLayout

    init(config c: ModelConfig, parameters: HyperParameters, weights: WeightLoader, contextLength: Int) throws {
        embedding = try Embedding(weights, config: c)
        head = try OutputHead(weights, config: c, embedding: embedding)
        var layout = AttentionLayout(config: c, ropeLayout: .halfSplit)
        layout.ropeScaling = try RoPEScaling(linearFrom: parameters)
        self.layout = layout
        blocks = try (0..<c.blockCount).map { i in
            try DecoderBlockWeights(
                weights, block: i, config: c, attention: AttentionWeights(weights, block: i, config: c, headNorms: true),
                feedForward: FeedForwardWeights(weights, block: i, config: c, activation: .silu))
        }
    }

    func block(_ layer: Int, _ pass: ForwardPass) {
        pass.decoderBlock(layer, blocks[layer], layout)
    }
}
