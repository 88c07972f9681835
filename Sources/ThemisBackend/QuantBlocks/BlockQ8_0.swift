/// ggml `block_q8_0`: 32 weights as signed 8-bit codes `q`, value `d * q`. 34 bytes.
public struct BlockQ8_0: QuantBlock {
    /// Scale, f16 bits.
    public var d: UInt16
    /// Codes, `int8_t` two's complement, in element order.
    public var qs: Bytes32

    /// A block from its fields.
    public init(d: UInt16, qs: Bytes32) {
        self.d = d
        self.qs = qs
    }

    /// `StorageType.q8_0`.
    public static var storageType: StorageType { .q8_0 }

    /// Writes the block's 32 weights to `out`.
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        let d = Dequantize.f16(self.d)
        withUnsafeBytes(of: qs) { qs in
            for j in 0..<32 {
                out[j] = d * Float(Int8(bitPattern: qs[j]))
            }
        }
    }
}
