import ThemisBackend

/// The token embedding table and the factor its rows are multiplied by (Gemma: `sqrt(width)`).
public struct Embedding: @unchecked Sendable {
    // Tensors are immutable handles owned by the backend.
    public let table: Tensor
    public let scale: Float?

    /// `token_embd.weight`, `[vocab, width]`.
    public init(_ weights: WeightLoader, config c: ModelConfig, scale: Float? = nil) throws {
        table = try weights.tensor("token_embd.weight", [c.vocabularySize, c.embeddingLength])
        self.scale = scale
    }
}

/// The final norm and classifier, with Gemma 2's logit soft-capping.
public struct OutputHead: @unchecked Sendable {
    public let norm: Tensor
    public let weight: Tensor
    public let softcap: Float?

    /// `output_norm.weight` and `output.weight`, or the embedding table when the file ties them.
    public init(_ weights: WeightLoader, config c: ModelConfig, embedding: Embedding, softcap: Float? = nil) throws {
        norm = try weights.tensor("output_norm.weight", [c.embeddingLength])
        weight = try weights.optional("output.weight", [c.vocabularySize, c.embeddingLength]) ?? embedding.table
        self.softcap = softcap
    }
}

/// The projections of one attention block. Shapes `[out, in]`.
public struct AttentionWeights: @unchecked Sendable {
    public let q: Tensor, k: Tensor, v: Tensor, output: Tensor
    public let qBias: Tensor?, kBias: Tensor?, vBias: Tensor?, outputBias: Tensor?
    /// Per-head RMSNorm of queries and keys before RoPE (qwen3, gemma3).
    public let qNorm: Tensor?, kNorm: Tensor?

    /// `blk.N.attn_{q,k,v,output}.weight`, the biases when the file has them, and the per-head
    /// norms `attn_{q,k}_norm.weight` when `headNorms` (then required).
    public init(_ weights: WeightLoader, block i: Int, config c: ModelConfig, headNorms: Bool = false) throws {
        let p = "blk.\(i)."
        let d = c.embeddingLength
        q = try weights.tensor(p + "attn_q.weight", [c.qWidth, d])
        k = try weights.tensor(p + "attn_k.weight", [c.kvWidth, d])
        v = try weights.tensor(p + "attn_v.weight", [c.kvWidth, d])
        (qBias, kBias, vBias) = try Self.biases(weights, block: i, config: c)
        output = try weights.tensor(p + "attn_output.weight", [d, c.qWidth])
        outputBias = try weights.optional(p + "attn_output.bias", [d])
        qNorm = headNorms ? try weights.tensor(p + "attn_q_norm.weight", [c.headDim]) : nil
        kNorm = headNorms ? try weights.tensor(p + "attn_k_norm.weight", [c.headDim]) : nil
    }

    /// Q, K and V stacked in one matrix `blk.N.attn_qkv.weight` (Phi-3), split on loading.
    public init(fused weights: WeightLoader, block i: Int, config c: ModelConfig) throws {
        let p = "blk.\(i)."
        let d = c.embeddingLength
        let parts = try weights.split(p + "attn_qkv.weight", rows: [c.qWidth, c.kvWidth, c.kvWidth], inputs: d)
        (q, k, v) = (parts[0], parts[1], parts[2])
        (qBias, kBias, vBias) = (nil, nil, nil)
        output = try weights.tensor(p + "attn_output.weight", [d, c.qWidth])
        outputBias = try weights.optional(p + "attn_output.bias", [d])
        (qNorm, kNorm) = (nil, nil)
    }

    private static func biases(_ w: WeightLoader, block i: Int, config c: ModelConfig) throws -> (Tensor?, Tensor?, Tensor?) {
        let p = "blk.\(i)."
        return (try w.optional(p + "attn_q.bias", [c.qWidth]), try w.optional(p + "attn_k.bias", [c.kvWidth]),
                try w.optional(p + "attn_v.bias", [c.kvWidth]))
    }
}

/// How one layer's attention runs: RoPE and the mask.
public struct AttentionLayout: Sendable {
    public var ropeDim: Int
    public var freqBase: Float
    public var ropeLayout: RoPELayout
    public var ropeScaling: RoPEScaling
    /// Scores are `scale * q·k`.
    public var scale: Float
    public var mask: AttentionMask

    public init(ropeDim: Int, freqBase: Float, ropeLayout: RoPELayout, ropeScaling: RoPEScaling = .none,
                scale: Float, mask: AttentionMask = .causal) {
        self.ropeDim = ropeDim
        self.freqBase = freqBase
        self.ropeLayout = ropeLayout
        self.ropeScaling = ropeScaling
        self.scale = scale
        self.mask = mask
    }

    /// The common case: the file's RoPE (with its linear scaling and magnitude), scores scaled by
    /// `1/sqrt(headDim)`, causal.
    public init(config c: ModelConfig, ropeLayout: RoPELayout, parameters: HyperParameters) throws {
        self.init(ropeDim: c.ropeDimensionCount, freqBase: c.ropeFreqBase, ropeLayout: ropeLayout,
                  ropeScaling: try RoPEScaling(linearFrom: parameters), scale: 1 / Float(c.headDim).squareRoot())
    }
}

/// The gated feed-forward network of one block.
public struct FeedForwardWeights: @unchecked Sendable {
    public enum Activation: Sendable { case silu, gelu }
    public let gate: Tensor, up: Tensor, down: Tensor
    public let activation: Activation

    /// `blk.N.ffn_{gate,up,down}.weight`.
    public init(_ weights: WeightLoader, block i: Int, config c: ModelConfig, activation: Activation) throws {
        let p = "blk.\(i)."
        let d = c.embeddingLength, f = c.feedForwardLength
        gate = try weights.tensor(p + "ffn_gate.weight", [f, d])
        up = try weights.tensor(p + "ffn_up.weight", [f, d])
        down = try weights.tensor(p + "ffn_down.weight", [d, f])
        self.activation = activation
    }

    /// Gate and up stacked in `blk.N.ffn_up.weight`, gate first (Phi-3), split on loading.
    public init(fusedGateUp weights: WeightLoader, block i: Int, config c: ModelConfig, activation: Activation) throws {
        let p = "blk.\(i)."
        let d = c.embeddingLength, f = c.feedForwardLength
        let parts = try weights.split(p + "ffn_up.weight", rows: [f, f], inputs: d)
        (gate, up) = (parts[0], parts[1])
        down = try weights.tensor(p + "ffn_down.weight", [d, f])
        self.activation = activation
    }
}

/// One decoder block: attention and feed-forward sub-blocks, each with a norm before it and, in
/// Gemma's "sandwich" form, a norm after it before the residual add.
public struct DecoderBlockWeights: @unchecked Sendable {
    public let attentionNorm: Tensor
    public let attention: AttentionWeights
    public let postAttentionNorm: Tensor?
    public let feedForwardNorm: Tensor
    public let feedForward: FeedForwardWeights
    public let postFeedForwardNorm: Tensor?

    /// A block of the usual tensor names: `AttentionWeights` (with per-head norms when
    /// `headNorms`), `FeedForwardWeights` with `activation`, and the norms (post-norms when
    /// `postNorms`).
    public init(_ weights: WeightLoader, block i: Int, config c: ModelConfig, headNorms: Bool = false,
                activation: FeedForwardWeights.Activation = .silu, postNorms: Bool = false) throws {
        try self.init(weights, block: i, config: c,
                      attention: AttentionWeights(weights, block: i, config: c, headNorms: headNorms),
                      feedForward: FeedForwardWeights(weights, block: i, config: c, activation: activation),
                      postNorms: postNorms)
    }

    /// `blk.N.attn_norm.weight`, `blk.N.ffn_norm.weight` and, when `postNorms`,
    /// `blk.N.post_attention_norm.weight` and `blk.N.post_ffw_norm.weight`.
    public init(_ weights: WeightLoader, block i: Int, config c: ModelConfig, attention: AttentionWeights,
                feedForward: FeedForwardWeights, postNorms: Bool = false) throws {
        let p = "blk.\(i)."
        let d = c.embeddingLength
        attentionNorm = try weights.tensor(p + "attn_norm.weight", [d])
        self.attention = attention
        postAttentionNorm = postNorms ? try weights.tensor(p + "post_attention_norm.weight", [d]) : nil
        feedForwardNorm = try weights.tensor(p + "ffn_norm.weight", [d])
        self.feedForward = feedForward
        postFeedForwardNorm = postNorms ? try weights.tensor(p + "post_ffw_norm.weight", [d]) : nil
    }
}

/// The state of one forward call over `n` tokens, handed to an architecture's `block`: the
/// residual stream `x`, scratch rows, and the sequences the rows belong to. Matmuls, norms and
/// activations run on all rows at once; RoPE, the cache write and attention per sequence.
public struct ForwardPass {
    public let backend: any Backend
    public let config: ModelConfig
    /// `[n, width]`: the residual stream, and the normed input of a sub-block.
    public let x: Tensor, h: Tensor
    let q: Tensor, k: Tensor, v: Tensor, attn: Tensor, proj: Tensor, gate: Tensor, up: Tensor
    let segments: [(rows: Range<Int>, startPosition: Int, cache: KVCache)]
    /// The adapter applied on the fly, with its scratch.
    let lora: LoRAScratch?

    /// `out = rmsNorm(input) * weight` with the model's epsilon.
    public func norm(_ input: Tensor, _ weight: Tensor, into out: Tensor) {
        backend.rmsNorm(input, weight: weight, epsilon: config.rmsEpsilon, into: out)
    }

    /// A whole decoder block on `x`: `x += post(attention(norm(x)))`, then
    /// `x += post(feedForward(norm(x)))`, where `post` is the block's post-norm if it has one.
    public func decoderBlock(_ layer: Int, _ w: DecoderBlockWeights, _ layout: AttentionLayout) {
        norm(x, w.attentionNorm, into: h)
        selfAttention(layer, input: h, w.attention, layout, into: proj)
        if let post = w.postAttentionNorm { norm(proj, post, into: proj) }
        backend.add(x, proj, into: x)
        norm(x, w.feedForwardNorm, into: h)
        feedForward(layer, input: h, w.feedForward, into: proj)
        if let post = w.postFeedForwardNorm { norm(proj, post, into: proj) }
        backend.add(x, proj, into: x)
    }

    /// Attention of block `layer` on `input`: projections (and biases), per-head Q/K norms,
    /// RoPE, the KV-cache write, attention over each sequence's cache, and the output projection
    /// into `out`.
    public func selfAttention(_ layer: Int, input: Tensor, _ w: AttentionWeights, _ a: AttentionLayout, into out: Tensor) {
        let b = backend, c = config
        b.matmul(input, weights: [w.q, w.k, w.v], into: [q, k, v])
        adapt(layer, .q, input, q)
        adapt(layer, .k, input, k)
        adapt(layer, .v, input, v)
        if let bias = w.qBias { b.add(q, bias, into: q) }
        if let bias = w.kBias { b.add(k, bias, into: k) }
        if let bias = w.vBias { b.add(v, bias, into: v) }
        if let n = w.qNorm { let heads = q.reshaped(rowLength: c.headDim); norm(heads, n, into: heads) }
        if let n = w.kNorm { let heads = k.reshaped(rowLength: c.headDim); norm(heads, n, into: heads) }
        for (r, pos, cache) in segments {
            let qs = q.rows(r), ks = k.rows(r)
            b.rope(qs, headDim: c.headDim, ropeDim: a.ropeDim, startPosition: pos, freqBase: a.freqBase,
                   layout: a.ropeLayout, scaling: a.ropeScaling)
            b.rope(ks, headDim: c.headDim, ropeDim: a.ropeDim, startPosition: pos, freqBase: a.freqBase,
                   layout: a.ropeLayout, scaling: a.ropeScaling)
            // KV cache write, then causal GQA attention over positions 0 ..< pos + rows
            b.copyRows(ks, into: cache.keys[layer], atRow: pos)
            b.copyRows(v.rows(r), into: cache.values[layer], atRow: pos)
            b.attention(q: qs, keys: cache.keys[layer], values: cache.values[layer], headCount: c.headCount,
                        headCountKV: c.headCountKV, startPosition: pos, scale: a.scale, mask: a.mask,
                        into: attn.rows(r))
        }
        b.matmul(attn, weight: w.output, into: out)
        adapt(layer, .o, attn, out)
        if let bias = w.outputBias { b.add(out, bias, into: out) }
    }

    /// The gated feed-forward network of block `layer` on `input` into `out`.
    public func feedForward(_ layer: Int, input: Tensor, _ w: FeedForwardWeights, into out: Tensor) {
        let b = backend
        b.matmul(input, weights: [w.gate, w.up], into: [gate, up])
        adapt(layer, .gate, input, gate)
        adapt(layer, .up, input, up)
        switch w.activation {
        case .silu: b.swiglu(gate: gate, up: up, into: gate)
        case .gelu: b.geglu(gate: gate, up: up, into: gate)
        }
        b.matmul(gate, weight: w.down, into: out)
        adapt(layer, .down, gate, out)
    }

    /// `output += factor · B (A input)` when the adapter adapts `target` of block `layer`.
    func adapt(_ layer: Int, _ target: LoRATarget, _ input: Tensor, _ output: Tensor) {
        guard let lora, let pair = lora.adapter.blocks[layer][target] else { return }
        let n = input.rowCount
        let mid = lora.mid.leading(rows: n, rowLength: pair.rank)
        let delta = lora.out.leading(rows: n, rowLength: output.rowLength)
        backend.matmul(input, weight: pair.a, into: mid)
        backend.scale(mid, by: pair.factor, into: mid)
        backend.matmul(mid, weight: pair.b, into: delta)
        backend.add(output, delta, into: output)
    }
}

/// An adapter and the scratch its on-the-fly application needs: `[maxBatch, maxRank]` and
/// `[maxBatch, widest projection]`.
struct LoRAScratch {
    let adapter: LoRAAdapter
    let mid: Tensor, out: Tensor
}

extension RoPEScaling {
    /// Linear position scaling from `<arch>.rope.scaling.factor` (or the older
    /// `rope.scale_linear`), as llama.cpp reads it; refuses scaling kinds this engine does not
    /// implement (YaRN) rather than run them as plain RoPE.
    public init(linearFrom p: HyperParameters) throws {
        self.init()
        if p.has("rope.scaling.type") {
            let kind = try p.file.string(p.architecture + ".rope.scaling.type")
            guard ["none", "linear"].contains(kind) else {
                throw ModelError.badHyperParameter("\(p.architecture).rope.scaling.type is '\(kind)'; this version implements linear RoPE scaling only")
            }
        }
        for key in ["rope.scaling.factor", "rope.scale_linear"] where p.has(key) {
            positionScale = 1 / (try p.positive(key, below: 1e6))
            break
        }
        // llama.cpp multiplies cosine and sine by this for every architecture (Phi-3's long-RoPE)
        if p.has("rope.scaling.attn_factor") { magnitude = try p.positive("rope.scaling.attn_factor", below: 100) }
    }
}

extension HyperParameters {
    /// Which layers use sliding-window attention, as llama.cpp decides: the per-layer flags of
    /// `attention.sliding_window_pattern` when the file has an array there, else a period `n`
    /// (that key's number, or `period`) in which all layers but the last of each `n` slide.
    public func slidingLayers(blockCount: Int, period: Int) throws -> [Bool] {
        let key = architecture + ".attention.sliding_window_pattern"
        if let flags = file.metadata[key]?.array {
            guard flags.count >= blockCount else {
                throw ModelError.badHyperParameter("\(key) has \(flags.count) entries for \(blockCount) layers")
            }
            return try flags.prefix(blockCount).map {
                guard let flag = $0.bool ?? $0.int.map({ $0 != 0 }) else {
                    throw ModelError.badHyperParameter("\(key) holds a value that is not a flag")
                }
                return flag
            }
        }
        let n = try int("attention.sliding_window_pattern", default: period, 0...ModelConfig.limits.blocks.upperBound)
        return (0..<blockCount).map { n == 0 || $0 % n < n - 1 }
    }
}
