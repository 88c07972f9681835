import ThemisBackend

/// The weights of one transformer block on a backend. Shapes `[out, in]`.
public struct BlockWeights: @unchecked Sendable {
    // Tensors are immutable handles owned by the backend.
    public let attnNorm: Tensor
    public let q: Tensor, k: Tensor, v: Tensor
    public let qBias: Tensor?, kBias: Tensor?, vBias: Tensor?
    public let output: Tensor
    public let ffnNorm: Tensor
    public let gate: Tensor, up: Tensor, down: Tensor
}

/// All weights of a model, uploaded once (used in place on the CPU).
public struct TransformerWeights: @unchecked Sendable {
    public let tokenEmbedding: Tensor  // [vocab, dim]
    public let outputNorm: Tensor      // [1, dim]
    public let output: Tensor          // [vocab, dim]; the embedding when tied
    public let blocks: [BlockWeights]

    /// Loads the tensors of `config` from `file` onto `backend`, checking every shape.
    public init(file: GGUFFile, config c: ModelConfig, backend: any Backend) throws {
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard let info = file.tensorInfo(name) else { throw GGUFError.missingTensor(name) }
            // 1-D GGUF tensors (norms, biases) become a single row.
            let want = shape.count == 1 ? [1, shape[0]] : shape
            let have = info.shape.count == 1 ? [1, info.shape[0]] : info.shape
            guard have == want else {
                throw ModelError.badHyperParameter("tensor \(name) has shape \(info.shape), expected \(shape)")
            }
            guard backend.supports(info.type) else { throw BackendError.unsupportedType(info.type, op: "weights") }
            // Norm weights and biases are read as f32 vectors by every op that takes them.
            if shape.count == 1 && info.type != .f32 {
                throw GGUFError.wrongTensorType(name, type: info.type, allowed: [.f32])
            }
            if info.type == .f32 && want[0] == 1 {
                // Small f32 vectors become activation-format tensors so every backend can read them.
                let t = try backend.makeTensor(shape: want)
                let b = file.bytes(of: info)
                backend.write(Array(b.bindMemory(to: Float.self)), to: t)
                return t
            }
            return try backend.makeWeight(type: info.type, shape: want, bytes: file.bytes(of: info))
        }
        func optional(_ name: String, _ shape: [Int]) throws -> Tensor? {
            file.tensorInfo(name) == nil ? nil : try tensor(name, shape)
        }
        let dim = c.embeddingLength
        tokenEmbedding = try tensor("token_embd.weight", [c.vocabularySize, dim])
        outputNorm = try tensor("output_norm.weight", [dim])
        output = try optional("output.weight", [c.vocabularySize, dim]) ?? tokenEmbedding
        blocks = try (0..<c.blockCount).map { i in
            let p = "blk.\(i)."
            return BlockWeights(
                attnNorm: try tensor(p + "attn_norm.weight", [dim]),
                q: try tensor(p + "attn_q.weight", [c.qWidth, dim]),
                k: try tensor(p + "attn_k.weight", [c.kvWidth, dim]),
                v: try tensor(p + "attn_v.weight", [c.kvWidth, dim]),
                qBias: try optional(p + "attn_q.bias", [c.qWidth]),
                kBias: try optional(p + "attn_k.bias", [c.kvWidth]),
                vBias: try optional(p + "attn_v.bias", [c.kvWidth]),
                output: try tensor(p + "attn_output.weight", [dim, c.qWidth]),
                ffnNorm: try tensor(p + "ffn_norm.weight", [dim]),
                gate: try tensor(p + "ffn_gate.weight", [c.feedForwardLength, dim]),
                up: try tensor(p + "ffn_up.weight", [c.feedForwardLength, dim]),
                down: try tensor(p + "ffn_down.weight", [dim, c.feedForwardLength]))
        }
    }
}
