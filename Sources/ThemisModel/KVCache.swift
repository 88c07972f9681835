import ThemisBackend

/// Keys and values of every layer for one sequence: `[contextLength, headCountKV * headDim]` each.
public final class KVCache: @unchecked Sendable {
    // Owned by one session; the backend orders writes and reads.
    public let keys: [Tensor]
    public let values: [Tensor]
    public let contextLength: Int

    public init(config: ModelConfig, contextLength: Int, backend: any Backend) throws {
        try KVCache.checkFits(config: config, contextLength: contextLength, device: backend.device)
        self.contextLength = contextLength
        keys = try (0..<config.blockCount).map { _ in try backend.makeTensor(shape: [contextLength, config.kvWidth]) }
        values = try (0..<config.blockCount).map { _ in try backend.makeTensor(shape: [contextLength, config.kvWidth]) }
    }

    /// Bytes of one sequence's cache, or nil when the product overflows.
    public static func byteCount(config: ModelConfig, contextLength: Int) -> Int? {
        let (perRow, o1) = config.kvWidth.multipliedReportingOverflow(by: 2 * 4 * config.blockCount)
        let (bytes, o2) = perRow.multipliedReportingOverflow(by: contextLength)
        return o1 || o2 ? nil : bytes
    }

    /// Throws `contextTooLarge` when a cache of `contextLength` tokens cannot fit `device`'s memory.
    public static func checkFits(config: ModelConfig, contextLength: Int, device: DeviceInfo) throws {
        guard contextLength >= 1 else { throw ModelError.badHyperParameter("context length \(contextLength)") }
        let bytes = byteCount(config: config, contextLength: contextLength)
        guard let bytes, UInt64(bytes) <= device.memoryBytes else {
            throw ModelError.contextTooLarge(tokens: contextLength, bytes: bytes, available: device.memoryBytes)
        }
    }

    /// Bytes held by the cache.
    public var byteCount: Int { (keys.count + values.count) * contextLength * (keys.first?.rowLength ?? 0) * 4 }
}
