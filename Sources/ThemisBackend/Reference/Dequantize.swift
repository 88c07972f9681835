/// Scalar reference dequantisation of GGUF rows, bit-for-bit as ggml's `dequantize_row_*`.
///
/// This is the ground truth the optimised kernels are tested against: plain loops, no SIMD.
public enum Dequantize {
    /// The `Float` value of IEEE half-precision bits `bits` (exact, subnormals, infinities and
    /// NaN payloads included).
    ///
    /// Written out rather than using `Float16`, which is unavailable on Intel macOS.
    @inline(__always)
    public static func f16(_ bits: UInt16) -> Float {
        let sign: UInt32 = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let mantissa = UInt32(bits & 0x03FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa * 2^-24, exact in Float.
            let magnitude = Float(mantissa) * 0x1p-24
            return Float(bitPattern: sign | magnitude.bitPattern)
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        }
        // Re-bias the exponent from 15 to 127.
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }

    /// The `Float` value of bfloat16 bits `bits` (the top half of an f32).
    @inline(__always)
    public static func bf16(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Dequantises `count` elements of storage `type` starting at `bytes` into `out`.
    ///
    /// `count` must be a multiple of `type.blockSize`; `bytes` needs no alignment and must hold
    /// `type.byteCount(elements: count)` bytes.
    public static func row(
        _ type: StorageType, _ bytes: UnsafeRawPointer, count: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        precondition(
            count >= 0 && count % type.blockSize == 0,
            "\(count) elements is not a whole number of \(type) blocks")
        switch type {
        case .f32:
            for i in 0..<count {
                out[i] = bytes.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
            }
        case .f16:
            for i in 0..<count {
                out[i] = f16(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            }
        case .bf16:
            for i in 0..<count {
                out[i] = bf16(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            }
        case .q4_0: blocks(BlockQ4_0.self, bytes, count: count, into: out)
        case .q4_1: blocks(BlockQ4_1.self, bytes, count: count, into: out)
        case .q5_0: blocks(BlockQ5_0.self, bytes, count: count, into: out)
        case .q5_1: blocks(BlockQ5_1.self, bytes, count: count, into: out)
        case .q8_0: blocks(BlockQ8_0.self, bytes, count: count, into: out)
        case .q4K: blocks(BlockQ4K.self, bytes, count: count, into: out)
        case .q5K: blocks(BlockQ5K.self, bytes, count: count, into: out)
        case .q6K: blocks(BlockQ6K.self, bytes, count: count, into: out)
        }
    }

    /// The first `count` elements of storage `type` in `bytes`, dequantised.
    ///
    /// `count` must be a multiple of `type.blockSize` and `bytes` must hold at least
    /// `type.byteCount(elements: count)` bytes.
    public static func row(_ type: StorageType, _ bytes: UnsafeRawBufferPointer, count: Int) -> [Float] {
        precondition(
            bytes.count >= type.byteCount(elements: count),
            "\(bytes.count) bytes is too few for \(count) \(type) elements")
        guard count > 0, let base = bytes.baseAddress else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            row(type, base, count: count, into: out.baseAddress!)
            initialized = count
        }
    }

    /// Dequantises `count / Block.elementCount` consecutive blocks.
    private static func blocks<Block: QuantBlock>(
        _: Block.Type, _ bytes: UnsafeRawPointer, count: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        let stride = MemoryLayout<Block>.size
        for b in 0..<count / Block.elementCount {
            // GGUF packs blocks back to back, so a block may sit at any byte offset.
            let block = bytes.loadUnaligned(fromByteOffset: b * stride, as: Block.self)
            block.dequantize(into: out + b * Block.elementCount)
        }
    }
}
