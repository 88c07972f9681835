import ThemisBackend

/// Keys and values of every layer for one sequence: `[contextLength, headCountKV * headDim]` each.
public final class KVCache: @unchecked Sendable {
    // Owned by one session; the backend orders writes and reads.
    public let keys: [Tensor]
    public let values: [Tensor]
    public let contextLength: Int

    public init(config: ModelConfig, contextLength: Int, backend: any Backend) throws {
        self.contextLength = contextLength
        keys = try (0..<config.blockCount).map { _ in try backend.makeTensor(shape: [contextLength, config.kvWidth]) }
        values = try (0..<config.blockCount).map { _ in try backend.makeTensor(shape: [contextLength, config.kvWidth]) }
    }

    /// Bytes held by the cache.
    public var byteCount: Int { (keys.count + values.count) * contextLength * (keys.first?.rowLength ?? 0) * 4 }
}
