/// ggml `block_q4_K`: a 256-weight super-block of 8 sub-blocks of 32, value
/// `d * scale_s * q - dmin * min_s` with 4-bit codes `q` and 6-bit per-sub-block `scale_s`, `min_s`.
/// 144 bytes.
///
/// `qs` is 4 chunks of 32 bytes; chunk `c` holds sub-block `2c` in its low nibbles and sub-block
/// `2c + 1` in its high nibbles. The 6-bit scales and mins are packed into `scales` as ggml's
/// `get_scale_min_k4` reads them (see `scaleMin(_:_:)`).
public struct BlockQ4K: QuantBlock {
    /// Super-block scale for the sub-block scales, f16 bits.
    public var d: UInt16
    /// Super-block scale for the sub-block mins, f16 bits.
    public var dmin: UInt16
    /// Eight 6-bit scales and eight 6-bit mins, packed.
    public var scales: Bytes12
    /// 4-bit codes, two per byte.
    public var qs: Bytes128

    /// A block from its fields.
    public init(d: UInt16, dmin: UInt16, scales: Bytes12, qs: Bytes128) {
        self.d = d
        self.dmin = dmin
        self.scales = scales
        self.qs = qs
    }

    /// `StorageType.q4K`.
    public static var storageType: StorageType { .q4K }

    /// The 6-bit scale and min of sub-block `j` (0..<8) from the 12 packed bytes (ggml's
    /// `get_scale_min_k4`).
    ///
    /// Bytes 0..<4 hold scales 0..<4 in their low 6 bits, bytes 4..<8 mins 0..<4 likewise; scales
    /// and mins 4..<8 take their low 4 bits from the nibbles of bytes 8..<12 and their top 2 bits
    /// from the spare top bits of bytes 0..<4 (scales) and 4..<8 (mins).
    @inline(__always)
    public static func scaleMin(_ j: Int, _ packed: UnsafeRawBufferPointer) -> (scale: UInt8, min: UInt8) {
        if j < 4 {
            return (packed[j] & 63, packed[j + 4] & 63)
        }
        let scale = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4)
        let min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4)
        return (scale, min)
    }

    /// Writes the block's 256 weights to `out`.
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        let d = Dequantize.f16(self.d)
        let dmin = Dequantize.f16(self.dmin)
        withUnsafeBytes(of: scales) { scales in
            withUnsafeBytes(of: qs) { qs in
                for chunk in 0..<4 {
                    let (scaleLow, minLow) = Self.scaleMin(2 * chunk, scales)
                    let (scaleHigh, minHigh) = Self.scaleMin(2 * chunk + 1, scales)
                    let dLow = d * Float(scaleLow)
                    let mLow = dmin * Float(minLow)
                    let dHigh = d * Float(scaleHigh)
                    let mHigh = dmin * Float(minHigh)
                    let y = out + 64 * chunk
                    for l in 0..<32 {
                        let q = qs[32 * chunk + l]
                        y[l] = dLow * Float(q & 0x0F) - mLow
                        y[l + 32] = dHigh * Float(q >> 4) - mHigh
                    }
                }
            }
        }
    }
}
