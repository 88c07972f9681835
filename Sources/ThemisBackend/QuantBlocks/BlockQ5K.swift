/// ggml `block_q5_K`: like Q4_K with a fifth bit per code: value `d * scale_s * q - dmin * min_s`
/// with 5-bit codes `q`. 176 bytes.
///
/// Low nibbles are packed as in Q4_K (`qs` chunk `c` holds sub-blocks `2c` and `2c + 1`); the fifth
/// bit of element `l` of sub-block `s` is bit `s` of `qh[l]`. Scales and mins are packed as in
/// Q4_K (`BlockQ4K.scaleMin(_:_:)`).
public struct BlockQ5K: QuantBlock {
    /// Super-block scale for the sub-block scales, f16 bits.
    public var d: UInt16
    /// Super-block scale for the sub-block mins, f16 bits.
    public var dmin: UInt16
    /// Eight 6-bit scales and eight 6-bit mins, packed.
    public var scales: Bytes12
    /// Fifth bits: bit `s` of byte `l` belongs to element `l` of sub-block `s`.
    public var qh: Bytes32
    /// Low 4 bits, two per byte.
    public var qs: Bytes128

    /// A block from its fields.
    public init(d: UInt16, dmin: UInt16, scales: Bytes12, qh: Bytes32, qs: Bytes128) {
        self.d = d
        self.dmin = dmin
        self.scales = scales
        self.qh = qh
        self.qs = qs
    }

    /// `StorageType.q5K`.
    public static var storageType: StorageType { .q5K }

    /// Writes the block's 256 weights to `out`.
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        let d = Dequantize.f16(self.d)
        let dmin = Dequantize.f16(self.dmin)
        withUnsafeBytes(of: scales) { scales in
            withUnsafeBytes(of: qh) { qh in
                withUnsafeBytes(of: qs) { qs in
                    for chunk in 0..<4 {
                        let (scaleLow, minLow) = BlockQ4K.scaleMin(2 * chunk, scales)
                        let (scaleHigh, minHigh) = BlockQ4K.scaleMin(2 * chunk + 1, scales)
                        let dLow = d * Float(scaleLow)
                        let mLow = dmin * Float(minLow)
                        let dHigh = d * Float(scaleHigh)
                        let mHigh = dmin * Float(minHigh)
                        let y = out + 64 * chunk
                        for l in 0..<32 {
                            let q = qs[32 * chunk + l]
                            let h = qh[l] >> UInt8(2 * chunk)
                            y[l] = dLow * Float((q & 0x0F) | (h & 1) << 4) - mLow
                            y[l + 32] = dHigh * Float((q >> 4) | ((h >> 1) & 1) << 4) - mHigh
                        }
                    }
                }
            }
        }
    }
}
