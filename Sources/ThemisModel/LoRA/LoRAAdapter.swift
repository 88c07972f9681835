import ThemisBackend

/// One adapted projection on a backend: `y += factor · B (A x)` with `a` `[rank, inputs]` and
/// `b` `[outputs, rank]` (weights in the matmul's sense: `x · aᵀ`, then `· bᵀ`).
public struct LoRAPair: @unchecked Sendable {
    // Tensors are immutable handles owned by the backend.
    public let a: Tensor
    public let b: Tensor
    public let factor: Float

    public init(a: Tensor, b: Tensor, factor: Float) {
        precondition(a.shape.count == 2 && b.shape.count == 2 && a.shape[0] == b.shape[1], "LoRA pair \(a.shape), \(b.shape)")
        self.a = a
        self.b = b
        self.factor = factor
    }

    public var rank: Int { a.shape[0] }
}

/// A LoRA adapter applied on the fly: its pairs per block and target, on the model's backend.
public final class LoRAAdapter: @unchecked Sendable {
    // Immutable after init; the file keeps the bytes the weights may use in place.
    public let source: LoRAAdapterFile?
    /// `blocks[i][target]`: the pair adapting that projection of block `i`, if any.
    public let blocks: [[LoRATarget: LoRAPair]]

    /// Pairs already on a backend (a trainer's adapters), `blocks.count` = the model's blocks.
    public init(blocks: [[LoRATarget: LoRAPair]]) {
        source = nil
        self.blocks = blocks
    }

    /// The adapter of `file` at the user's `scale`, its matrices uploaded to `backend`.
    public init(file: LoRAAdapterFile, scale: Float, config: ModelConfig, backend: any Backend) throws {
        source = file
        var blocks = [[LoRATarget: LoRAPair]](repeating: [:], count: config.blockCount)
        for e in file.entries {
            func upload(_ info: GGUFTensorInfo) throws -> Tensor {
                if backend.supports(info.type) {
                    return try backend.makeWeight(type: info.type, shape: info.shape, bytes: file.file.bytes(of: info))
                }
                let t = try backend.makeTensor(shape: info.shape)
                backend.write(file.values(info), to: t)
                return t
            }
            blocks[e.block][e.target] = LoRAPair(a: try upload(e.a), b: try upload(e.b), factor: file.factor(e, scale: scale))
        }
        self.blocks = blocks
    }

    /// The largest rank of any pair.
    public var maxRank: Int { blocks.flatMap(\.values).map(\.rank).max() ?? 0 }
}

/// A LoRA adapter file to apply on the fly, at `scale` (llama.cpp's `--lora-scaled FILE SCALE`).
public struct LoRAOptions: Sendable, Equatable {
    public var path: String
    public var scale: Float
    public init(path: String, scale: Float = 1) {
        self.path = path
        self.scale = scale
    }
}
