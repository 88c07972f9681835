/// How a tensor's elements are stored: GGUF's type ids and block layouts.
///
/// Quantised formats store elements in blocks; `blockSize` elements take `blockBytes` bytes.
public enum StorageType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q4K = 12
    case q5K = 13
    case q6K = 14
    case bf16 = 30

    /// Elements per block (1 for plain float types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
        case .q4K, .q5K, .q6K: return 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q4K: return 144
        case .q5K: return 176
        case .q6K: return 210
        }
    }

    /// Bytes taken by `count` elements; `count` must be a multiple of `blockSize`.
    public func byteCount(elements count: Int) -> Int { count / blockSize * blockBytes }

    /// ggml's name for the type (`q4_K`, `f16`, ...).
    public var description: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .bf16: return "bf16"
        case .q4_0: return "q4_0"
        case .q4_1: return "q4_1"
        case .q5_0: return "q5_0"
        case .q5_1: return "q5_1"
        case .q8_0: return "q8_0"
        case .q4K: return "q4_K"
        case .q5K: return "q5_K"
        case .q6K: return "q6_K"
        }
    }
}
