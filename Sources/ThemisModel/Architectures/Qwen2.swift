import ThemisBackend

/// Qwen 2 and 2.5 (`qwen2`): Llama's blocks with Q/K/V biases and RoPE on the two halves of each
/// head (NeoX order, as the file keeps Q and K unpermuted).
enum Qwen2: DecoderArchitecture {
    static let names = ["qwen2"]

    static func load(config c: ModelConfig, parameters p: HyperParameters, weights w: WeightLoader, contextLength: Int)
        throws -> Decoder
    {
        let layout = try AttentionLayout(config: c, ropeLayout: .halfSplit, parameters: p)
        return try Decoder(w, config: c, layouts: Array(repeating: layout, count: c.blockCount)) { i in
            try DecoderBlockWeights(w, block: i, config: c)
        }
    }
}
