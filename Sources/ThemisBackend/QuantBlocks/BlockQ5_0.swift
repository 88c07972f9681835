/// ggml `block_q5_0`: 32 weights as 5-bit codes `q` in 0...31, value `d * (q - 16)`. 22 bytes.
///
/// The low 4 bits are packed like Q4_0 (`qs[j]` holds elements `j` and `j + 16`); bit `i` of the
/// little-endian 32-bit `qh` is the fifth bit of element `i`.
public struct BlockQ5_0: QuantBlock {
    /// Scale, f16 bits.
    public var d: UInt16
    /// High bits, one per element, as a little-endian 32-bit word.
    public var qh: Bytes4
    /// Low 4 bits, two elements per byte.
    public var qs: Bytes16

    /// A block from its fields.
    public init(d: UInt16, qh: Bytes4, qs: Bytes16) {
        self.d = d
        self.qh = qh
        self.qs = qs
    }

    /// `StorageType.q5_0`.
    public static var storageType: StorageType { .q5_0 }

    /// Writes the block's 32 weights to `out`.
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        let d = Dequantize.f16(self.d)
        let high = littleEndianWord(qh)
        withUnsafeBytes(of: qs) { qs in
            for j in 0..<16 {
                let q0 = Int(qs[j] & 0x0F) | Int((high >> UInt32(j)) & 1) << 4
                let q1 = Int(qs[j] >> 4) | Int((high >> UInt32(j + 16)) & 1) << 4
                out[j] = d * Float(q0 - 16)
                out[j + 16] = d * Float(q1 - 16)
            }
        }
    }
}

/// The 4 bytes of `qh` as ggml reads them: one little-endian `uint32_t`.
@inline(__always)
func littleEndianWord(_ bytes: Bytes4) -> UInt32 {
    UInt32(bytes.0) | UInt32(bytes.1) << 8 | UInt32(bytes.2) << 16 | UInt32(bytes.3) << 24
}
