/// ggml `block_q4_0`: 32 weights as 4-bit codes `q` in 0...15, value `d * (q - 8)`. 18 bytes.
///
/// Byte `j` of `qs` holds element `j` in its low nibble and element `j + 16` in its high nibble.
public struct BlockQ4_0: QuantBlock {
    /// Scale, f16 bits.
    public var d: UInt16
    /// 4-bit codes, two per byte.
    public var qs: Bytes16

    /// A block from its fields.
    public init(d: UInt16, qs: Bytes16) {
        self.d = d
        self.qs = qs
    }

    /// `StorageType.q4_0`.
    public static var storageType: StorageType { .q4_0 }

    /// Writes the block's 32 weights to `out`.
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        let d = Dequantize.f16(self.d)
        withUnsafeBytes(of: qs) { qs in
            for j in 0..<16 {
                out[j] = d * Float(Int(qs[j] & 0x0F) - 8)
                out[j + 16] = d * Float(Int(qs[j] >> 4) - 8)
            }
        }
    }
}
