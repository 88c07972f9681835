import ThemisBackend

/// Qwen 2 and 2.5 (`qwen2`): Llama's blocks with Q/K/V biases and RoPE on the two halves of each
/// head (NeoX order, as the file keeps Q and K unpermuted).
struct Qwen2: DecoderArchitecture {
    static let names = ["qwen2"]
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
                weights, block: i, config: c, attention: AttentionWeights(weights, block: i, config: c),
                feedForward: FeedForwardWeights(weights, block: i, config: c, activation: .silu))
        }
    }

    func block(_ layer: Int, _ pass: ForwardPass) {
        pass.decoderBlock(layer, blocks[layer], layout)
    }
}
