/// One ggml quantisation block: `elementCount` weights packed into `MemoryLayout<Self>.size` bytes.
///
/// Conforming structs mirror ggml's C structs field for field (same names, same order, f16 values
/// as `UInt16` bit patterns), so a block can be loaded straight from GGUF bytes with
/// `UnsafeRawPointer.loadUnaligned(fromByteOffset:as:)`; their size equals `storageType.blockBytes`.
public protocol QuantBlock: BitwiseCopyable, Sendable {
    /// The GGUF storage type whose blocks this struct describes.
    static var storageType: StorageType { get }
    /// Weights per block (`storageType.blockSize`).
    static var elementCount: Int { get }
    /// Writes the block's `elementCount` weights to `out`, in ggml's element order.
    func dequantize(into out: UnsafeMutablePointer<Float>)
}

extension QuantBlock {
    /// Weights per block (`storageType.blockSize`).
    public static var elementCount: Int { storageType.blockSize }
}

// Fixed-size byte arrays for block fields. Nested tuples of `UInt8` are laid out contiguously with
// alignment 1, so they add exactly their byte count to a block, like C's `uint8_t x[N]`.

/// 4 contiguous bytes (a block field such as Q5_0's `qh`).
public typealias Bytes4 = (UInt8, UInt8, UInt8, UInt8)
/// 12 contiguous bytes (the packed 6-bit scales and mins of Q4_K / Q5_K).
public typealias Bytes12 = (Bytes4, Bytes4, Bytes4)
/// 16 contiguous bytes.
public typealias Bytes16 = (Bytes4, Bytes4, Bytes4, Bytes4)
/// 32 contiguous bytes.
public typealias Bytes32 = (Bytes16, Bytes16)
/// 64 contiguous bytes.
public typealias Bytes64 = (Bytes32, Bytes32)
/// 128 contiguous bytes.
public typealias Bytes128 = (Bytes64, Bytes64)
