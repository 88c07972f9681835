import ThemisBackend

/// Qwen 3 dense models (`qwen3`): Qwen 2's blocks without the Q/K/V biases, with an RMSNorm of
/// every query and key head (`attn_q_norm`, `attn_k_norm`) before RoPE; the head size is its own
/// hyper-parameter (`attention.key_length`), not width / heads.
enum Qwen3: DecoderArchitecture {
    static let names = ["qwen3"]

    static func load(config c: ModelConfig, parameters p: HyperParameters, weights w: WeightLoader, contextLength: Int)
        throws -> Decoder
    {
        let layout = try AttentionLayout(config: c, ropeLayout: .halfSplit, parameters: p)
        return try Decoder(w, config: c, layouts: Array(repeating: layout, count: c.blockCount)) { i in
            try DecoderBlockWeights(w, block: i, config: c, headNorms: true)
        }
    }
}
