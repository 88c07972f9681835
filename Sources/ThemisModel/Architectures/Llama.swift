import ThemisBackend

/// Llama 1, 2 and 3, SmolLM and Mistral files (`llama`): pre-norm blocks, SwiGLU, RoPE on
/// adjacent pairs (the converter permutes Q and K for it), Llama 3's per-pair frequency factors
/// (`rope_freqs.weight`) and linear RoPE scaling where the file has them, optional biases, and
/// Mistral's sliding window on every layer where the file sets `attention.sliding_window`.
/// (llama.cpp's converter writes no window for Mistral and llama.cpp ignores the key for this
/// architecture, so files it made run as it runs them; a file that does set one gets the
/// attention of Mistral's reference implementation.)
enum Llama: DecoderArchitecture {
    static let names = ["llama"]

    static func load(config c: ModelConfig, parameters p: HyperParameters, weights w: WeightLoader, contextLength: Int)
        throws -> Decoder
    {
        var layout = try AttentionLayout(config: c, ropeLayout: .adjacentPairs, parameters: p)
        layout.ropeScaling.frequencyFactors = try w.hostVector("rope_freqs.weight", count: c.ropeDimensionCount / 2)
        layout.mask.window = try p.int("attention.sliding_window", default: 0, 0...ModelConfig.limits.context.upperBound)
        return try Decoder(w, config: c, layouts: Array(repeating: layout, count: c.blockCount)) { i in
            // old converters stored the rotary tables; llama.cpp ignores them too
            w.ignore("blk.\(i).attn_rot_embd")
            return try DecoderBlockWeights(w, block: i, config: c)
        }
    }
}
