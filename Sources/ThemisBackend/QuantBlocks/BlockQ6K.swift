/// ggml `block_q6_K`: a 256-weight super-block of 16 sub-blocks of 16, value `d * scale_s * (q - 32)`
/// with 6-bit codes `q` and signed 8-bit per-sub-block scales. 210 bytes.
///
/// The super-block is two halves of 128 elements. In half `h`, element `l + 32 r` (`l` in 0..<32,
/// `r` in 0..<4) takes its low 4 bits from `ql[64h + l + 32 (r % 2)]` (low nibble for `r < 2`, high
/// nibble otherwise) and its top 2 bits from bits `2r, 2r + 1` of `qh[32h + l]`. Element `e` uses
/// `scales[e / 16]`.
public struct BlockQ6K: QuantBlock {
    /// Low 4 bits of the codes, two per byte.
    public var ql: Bytes128
    /// High 2 bits of the codes, four per byte.
    public var qh: Bytes64
    /// Sub-block scales, `int8_t` two's complement.
    public var scales: Bytes16
    /// Super-block scale, f16 bits.
    public var d: UInt16

    /// A block from its fields.
    public init(ql: Bytes128, qh: Bytes64, scales: Bytes16, d: UInt16) {
        self.ql = ql
        self.qh = qh
        self.scales = scales
        self.d = d
    }

    /// `StorageType.q6K`.
    public static var storageType: StorageType { .q6K }

    /// Writes the block's 256 weights to `out`.
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        let d = Dequantize.f16(self.d)
        withUnsafeBytes(of: ql) { ql in
            withUnsafeBytes(of: qh) { qh in
                withUnsafeBytes(of: scales) { scales in
                    // Element `e` of the super-block has 6-bit code `code`.
                    func put(_ e: Int, _ code: UInt8) {
                        let scale = d * Float(Int8(bitPattern: scales[e / 16]))
                        out[e] = scale * Float(Int(code) - 32)
                    }
                    for half in 0..<2 {
                        for l in 0..<32 {
                            let low0 = ql[64 * half + l]
                            let low1 = ql[64 * half + l + 32]
                            let high = qh[32 * half + l]
                            let e = 128 * half + l
                            put(e, (low0 & 0x0F) | (high & 3) << 4)
                            put(e + 32, (low1 & 0x0F) | ((high >> 2) & 3) << 4)
                            put(e + 64, (low0 >> 4) | ((high >> 4) & 3) << 4)
                            put(e + 96, (low1 >> 4) | ((high >> 6) & 3) << 4)
                        }
                    }
                }
            }
        }
    }
}
