/// ggml `block_q5_1`: 32 weights as 5-bit codes `q` in 0...31, value `d * q + m`. 24 bytes.
///
/// Packed like Q5_0: low nibbles in `qs` (elements `j` and `j + 16` share byte `j`), fifth bits
/// in the little-endian 32-bit `qh` (bit `i` for element `i`).
public struct BlockQ5_1: QuantBlock {
    /// Scale, f16 bits.
    public var d: UInt16
    /// Offset (the block minimum), f16 bits.
    public var m: UInt16
    /// High bits, one per element, as a little-endian 32-bit word.
    public var qh: Bytes4
    /// Low 4 bits, two elements per byte.
    public var qs: Bytes16

    /// A block from its fields.
    public init(d: UInt16, m: UInt16, qh: Bytes4, qs: Bytes16) {
        self.d = d
        self.m = m
        self.qh = qh
        self.qs = qs
    }

    /// `StorageType.q5_1`.
    public static var storageType: StorageType { .q5_1 }

    /// Writes the block's 32 weights to `out`.
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        let d = Dequantize.f16(self.d)
        let m = Dequantize.f16(self.m)
        let high = littleEndianWord(qh)
        withUnsafeBytes(of: qs) { qs in
            for j in 0..<16 {
                let q0 = UInt32(qs[j] & 0x0F) | ((high >> UInt32(j)) & 1) << 4
                let q1 = UInt32(qs[j] >> 4) | ((high >> UInt32(j + 16)) & 1) << 4
                out[j] = d * Float(q0) + m
                out[j + 16] = d * Float(q1) + m
            }
        }
    }
}
