/// What kind of processor a device is; drives `--device auto`.
public enum DeviceKind: String, Sendable, CaseIterable {
    case cpu, discrete, integrated, software, other
}

/// Optional capabilities a device may report.
public struct DeviceFeatures: Sendable, Equatable {
    public var fp16: Bool
    public var int8Dot: Bool
    public var storage16Bit: Bool
    public var subgroupSize: Int
    /// Largest range of one storage-buffer binding, in bytes (`Int.max` where unlimited).
    public var maxBufferRange: Int

    public init(fp16: Bool = false, int8Dot: Bool = false, storage16Bit: Bool = false,
                subgroupSize: Int = 1, maxBufferRange: Int = .max) {
        self.fp16 = fp16
        self.int8Dot = int8Dot
        self.storage16Bit = storage16Bit
        self.subgroupSize = subgroupSize
        self.maxBufferRange = maxBufferRange
    }
}

/// A compute device as a backend provider reports it.
public struct DeviceInfo: Sendable, Equatable {
    /// The name used on the command line (`cpu`, `vulkan:0`).
    public var id: String
    public var name: String
    public var kind: DeviceKind
    /// Device memory in bytes (system memory for the CPU).
    public var memoryBytes: UInt64
    /// Threads or compute units used.
    public var computeUnits: Int
    public var features: DeviceFeatures
    /// Free-form extra lines for `themis devices` (driver and API versions, heaps).
    public var details: [String]

    public init(id: String, name: String, kind: DeviceKind, memoryBytes: UInt64, computeUnits: Int,
                features: DeviceFeatures = DeviceFeatures(), details: [String] = []) {
        self.id = id
        self.name = name
        self.kind = kind
        self.memoryBytes = memoryBytes
        self.computeUnits = computeUnits
        self.features = features
        self.details = details
    }
}
