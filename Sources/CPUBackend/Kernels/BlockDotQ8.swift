import CByteDots
/// Decode matvec with 8-bit activations, as llama.cpp does: the activation row is quantised once
/// per matmul (values widened to Int16, a scale per 32 elements for the 32-element formats and
/// per 256 for the K-quants, and per 32 elements the sum `s = d·Σq`; the same values as bytes
/// for the C byte dots, `CByteDots`, which run instead where the build has them). In the Swift
/// kernels here, the portable path, each weight block is
/// dotted as signed 16-bit pairs multiplied and added into 32-bit lanes (`pairSums`: `vpmaddwd`,
/// one per 32 weights with AVX-512, two with AVX2; unsigned quants are centred first). The
/// 32-element formats convert and scale once per block; the K-quants multiply their small
/// integer sub-block scales into the weights first (`vpmullw`), so a whole 256-element block
/// sums in integers and converts once, which one activation scale per 256 allows.

/// An activation row quantised for `BlockDotQ8` kernels.
struct QuantizedRow {
    /// `k` values in -127...127.
    let q: UnsafeMutablePointer<Int16>
    /// Per 32 elements: the scale (the same for all 32-element pieces of a group).
    let d: UnsafeMutablePointer<Float>
    /// Per 32 elements: `d · Σq`.
    let s: UnsafeMutablePointer<Float>
    /// The same `k` values as bytes, for the C byte dots.
    let bytes: UnsafeMutablePointer<Int8>
    /// Per 16 elements: `Σq` (for Q6_K's offsets in the byte dots).
    let sums16: UnsafeMutablePointer<Int16>

    /// Floats needed for a row of `k` elements (the Int16 values take `k / 2` of them, the
    /// bytes `k / 4`, the 16-element sums `k / 32`).
    static func floatsNeeded(k: Int) -> Int { k / 2 + k / 4 + 3 * (k / 32) + 64 }

    /// The arrays of a row of `k` elements in `buffer` (`floatsNeeded(k:)` floats), as the
    /// quantising initialiser lays them out: rows quantised into buffers a fixed stride apart
    /// have every array that stride apart (the C GEMM reads them so).
    init(layoutIn buffer: UnsafeMutablePointer<Float>, k: Int) {
        let blocks = k / 32
        d = buffer
        s = buffer + blocks
        q = UnsafeMutableRawPointer(buffer + 2 * blocks).bindMemory(to: Int16.self, capacity: k)
        bytes = UnsafeMutableRawPointer(buffer + 2 * blocks + k / 2).bindMemory(to: Int8.self, capacity: k)
        sums16 = UnsafeMutableRawPointer(buffer + 2 * blocks + k / 2 + k / 4).bindMemory(to: Int16.self, capacity: k / 16)
    }

    /// Quantises `x[0 ..< k]` into `buffer` with one scale per `group` elements (32, or 256
    /// for the K-quants; `k` a multiple of it).
    init(_ x: UnsafePointer<Float>, k: Int, group: Int = 32, buffer: UnsafeMutablePointer<Float>) {
        self.init(layoutIn: buffer, k: k)
        let blocks = k / 32, per = group / 32
        var scale: Float = 0
        for b in 0..<blocks {
            let x0 = loadF(x + 32 * b), x1 = loadF(x + 32 * b + 16)
            if b % per == 0 {
                var top = F16x()
                for i in stride(from: 32 * b, to: 32 * (b + per), by: 16) {
                    let a = absolute(loadF(x + i))
                    top.replace(with: a, where: a .> top)
                }
                scale = top.max() / 127
            }
            let inv = F16x(repeating: scale == 0 ? 0 : 1 / scale)
            let r0 = roundedToEven(x0 * inv), r1 = roundedToEven(x1 * inv)
            UnsafeMutableRawPointer(q + 32 * b).storeBytes(of: int16(r0), as: SIMD16<Int16>.self)
            UnsafeMutableRawPointer(q + 32 * b + 16).storeBytes(of: int16(r1), as: SIMD16<Int16>.self)
            UnsafeMutableRawPointer(bytes + 32 * b).storeBytes(of: SIMD16<Int8>(truncatingIfNeeded: int16(r0)), as: SIMD16<Int8>.self)
            UnsafeMutableRawPointer(bytes + 32 * b + 16).storeBytes(of: SIMD16<Int8>(truncatingIfNeeded: int16(r1)), as: SIMD16<Int8>.self)
            let sum0 = r0.sum(), sum1 = r1.sum()  // integers, exact in floats
            sums16[2 * b] = Int16(sum0)
            sums16[2 * b + 1] = Int16(sum1)
            d[b] = scale
            s[b] = scale * (sum0 + sum1)
        }
    }
}

/// |v| by clearing the sign bits.
@inline(__always) private func absolute(_ v: F16x) -> F16x {
    unsafeBitCast(unsafeBitCast(v, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: F16x.self)
}

/// Rounds to the nearest integer, ties to even, for |v| < 2^22: adding and subtracting 1.5·2^23
/// leaves the rounded value (the standard library's `rounded` is a generic call per vector).
@inline(__always) private func roundedToEven(_ v: F16x) -> F16x {
    let magic = F16x(repeating: 12_582_912)
    return (v + magic) - magic
}

/// Integral floats in Int16 range to Int16 lanes.
@inline(__always) private func int16(_ v: F16x) -> SIMD16<Int16> {
    var out = SIMD16<Int16>()
    for i in 0..<16 { out[i] = Int16(Int32(v[i])) }
    return out
}

@inline(__always) func int16(_ v: SIMD16<UInt8>) -> SIMD16<Int16> {
    var r = SIMD16<Int16>()
    for i in 0..<16 { r[i] = Int16(v[i]) }
    return r
}

@inline(__always) func int16(_ v: SIMD16<Int8>) -> SIMD16<Int16> {
    var r = SIMD16<Int16>()
    for i in 0..<16 { r[i] = Int16(v[i]) }
    return r
}

@inline(__always) func floats(_ v: SIMD16<Int32>) -> F16x {
    var r = F16x()
    for i in 0..<16 { r[i] = Float(v[i]) }
    return r
}


/// `w · x` over 32 lanes (`w0` then `w1`, against `x[0 ..< 32]`) as 16 float lane sums of
/// adjacent pairs. Written as a plain loop over pointers: the compiler turns it into the
/// multiply-add of 16-bit pairs into 32-bit lanes (`vpmaddwd`), which SIMD lane code does not
/// reach (it multiplies in 16-bit lanes and widens after).
@inline(__always) func pairSums(_ w0: SIMD16<Int16>, _ w1: SIMD16<Int16>, _ x: UnsafePointer<Int16>) -> F16x {
    floats(pairSumsInt(w0, w1, x))
}

/// `pairSums` before the conversion to floats.
@inline(__always) func pairSumsInt(_ w0: SIMD16<Int16>, _ w1: SIMD16<Int16>, _ x: UnsafePointer<Int16>) -> SIMD16<Int32> {
    var w = (w0, w1)
    var t = SIMD16<Int32>()
    withUnsafeBytes(of: &w) { raw in
        let a = raw.baseAddress!.assumingMemoryBound(to: Int16.self)
        withUnsafeMutableBytes(of: &t) { out in
            let o = out.baseAddress!.assumingMemoryBound(to: Int32.self)
            for l in 0..<16 { o[l] = Int32(a[2 * l]) &* Int32(x[2 * l]) &+ Int32(a[2 * l + 1]) &* Int32(x[2 * l + 1]) }
        }
    }
    return t
}

/// Unsigned quants (nibbles, five-bit values) minus `c`, as signed 16-bit lanes. `pairSums` gets
/// its single multiply-add only from values that may be negative: for values the compiler can
/// prove non-negative it splits even and odd lanes into two. The `c · Σx` this takes away is
/// added back in the block's scalar term.
@inline(__always) func centred(_ v: SIMD16<UInt8>, _ c: UInt8) -> SIMD16<Int16> {
    int16(SIMD16<Int8>(truncatingIfNeeded: v &- c))
}

/// A block format with an 8-bit-activation dot.
protocol BlockDotQ8: BlockKernel {
    /// Its format among the C byte dots (`CByteDots`), if it has one.
    static var byteFormat: themis_byte_format? { get }
    /// `acc` (lane partial sums) and `accS` (scalar terms) gain `w_block · x_block`; `xq`, `xd`,
    /// `xs` point at the block's first element, scale and sum. The row was quantised with one
    /// scale per block (`group` = `elements`).
    static func dotQ8(_ src: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>,
                      _ xs: UnsafePointer<Float>, _ acc: inout F16x, _ accS: inout Float)
}

extension BlockDotQ8 {
    static var byteFormat: themis_byte_format? { nil }
}

extension KernelQ4_0: BlockDotQ8 {
    static var byteFormat: themis_byte_format? { THEMIS_BYTE_Q4_0 }
    @inline(__always) static func dotQ8(_ src: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>,
                                        _ xs: UnsafePointer<Float>, _ acc: inout F16x, _ accS: inout Float) {
        let d = halfToFloat(src)
        let q = load16(src, 2)
        acc = acc.addingProduct(pairSums(centred(q & 0x0F, 8), centred(q &>> 4, 8), xq), F16x(repeating: d * xd[0]))
    }
}

extension KernelQ4_1: BlockDotQ8 {
    static var byteFormat: themis_byte_format? { THEMIS_BYTE_Q4_1 }
    @inline(__always) static func dotQ8(_ src: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>,
                                        _ xs: UnsafePointer<Float>, _ acc: inout F16x, _ accS: inout Float) {
        let d = halfToFloat(src), m = halfToFloat(src, 2)
        let q = load16(src, 4)
        acc = acc.addingProduct(pairSums(centred(q & 0x0F, 8), centred(q &>> 4, 8), xq), F16x(repeating: d * xd[0]))
        accS += (m + 8 * d) * xs[0]
    }
}

/// The fifth bits of a Q5 block as lane masks (all ones where the bit is set): low 16 lanes
/// from bits 0-15, high 16 from bits 16-31. Each lane tests its own bit (an and and a compare):
/// shifting it into place instead takes a variable 16-bit shift, which AVX2 does not have (the
/// compiler emulates it, and Q5_0 ran at half the speed of Q4_0 there).
@inline(__always) private func fifthBitMasks(_ qh: UInt32) -> (SIMD16<Int16>, SIMD16<Int16>) {
    // a local constant: a global one costs a lazy-initialisation call (and spills) per row
    let laneBits = SIMD16<Int16>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, -32768)
    let lo = SIMD16<Int16>(repeating: Int16(truncatingIfNeeded: qh)) & laneBits
    let hi = SIMD16<Int16>(repeating: Int16(truncatingIfNeeded: qh >> 16)) & laneBits
    return (unsafeBitCast(lo .== laneBits, to: SIMD16<Int16>.self), unsafeBitCast(hi .== laneBits, to: SIMD16<Int16>.self))
}

extension KernelQ5_0: BlockDotQ8 {
    static var byteFormat: themis_byte_format? { THEMIS_BYTE_Q5_0 }
    /// value = nibble + 16·bit - 16, which in two's complement is the nibble with 0xFFF0 set
    /// where the bit is clear: no separate offset term.
    @inline(__always) static func dotQ8(_ src: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>,
                                        _ xs: UnsafePointer<Float>, _ acc: inout F16x, _ accS: inout Float) {
        let d = halfToFloat(src)
        let (m0, m1) = fifthBitMasks(src.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        let q = load16(src, 6)
        let high = SIMD16<Int16>(repeating: -16)
        let v0 = int16(q & 0x0F) | (~m0 & high), v1 = int16(q &>> 4) | (~m1 & high)
        acc = acc.addingProduct(pairSums(v0, v1, xq), F16x(repeating: d * xd[0]))
    }
}

extension KernelQ5_1: BlockDotQ8 {
    static var byteFormat: themis_byte_format? { THEMIS_BYTE_Q5_1 }
    @inline(__always) static func dotQ8(_ src: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>,
                                        _ xs: UnsafePointer<Float>, _ acc: inout F16x, _ accS: inout Float) {
        let d = halfToFloat(src), m = halfToFloat(src, 2)
        let (m0, m1) = fifthBitMasks(src.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let q = load16(src, 8)
        let sixteen = SIMD16<Int16>(repeating: 16)
        let v0 = int16(q & 0x0F) | (m0 & sixteen), v1 = int16(q &>> 4) | (m1 & sixteen)
        acc = acc.addingProduct(pairSums(v0 &- sixteen, v1 &- sixteen, xq), F16x(repeating: d * xd[0]))
        accS += (m + 16 * d) * xs[0]
    }
}

extension KernelQ8_0: BlockDotQ8 {
    static var byteFormat: themis_byte_format? { THEMIS_BYTE_Q8_0 }
    @inline(__always) static func dotQ8(_ src: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>,
                                        _ xs: UnsafePointer<Float>, _ acc: inout F16x, _ accS: inout Float) {
        let d = halfToFloat(src)
        let w0 = src.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self)
        let w1 = src.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self)
        acc = acc.addingProduct(pairSums(int16(w0), int16(w1), xq), F16x(repeating: d * xd[0]))
    }
}

/// Integer scale `v` in every lane.
@inline(__always) private func lanes(_ v: UInt8) -> SIMD16<Int16> { SIMD16(repeating: Int16(v)) }

/// `Σ v[i]·xs[i]` over 8 sub-blocks.
@inline(__always) private func dot8(_ v: SIMD8<UInt8>, _ xs: UnsafePointer<Float>) -> Float {
    var f = SIMD8<Float>()
    for i in 0..<8 { f[i] = Float(v[i]) }
    return (f * UnsafeRawPointer(xs).loadUnaligned(as: SIMD8<Float>.self)).sum()
}

extension KernelQ4K: BlockDotQ8 {
    static var byteFormat: themis_byte_format? { THEMIS_BYTE_Q4_K }
    /// Σ_j s_j·Σ(q - 8)·x in integers (|(q - 8)·s| ≤ 504 fits Int16), then 8·Σ_j s_j·Σx and the
    /// mins through the sub-block activation sums.
    @inline(__always) static func dotQ8(_ src: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>,
                                        _ xs: UnsafePointer<Float>, _ acc: inout F16x, _ accS: inout Float) {
        let d = halfToFloat(src), dmin = halfToFloat(src, 2)
        let (scales, mins) = scalesMinsK(src + 4)
        var sum = SIMD16<Int32>()
        for j in 0..<4 {
            let qa = load16(src, 16 + 32 * j), qb = load16(src, 32 + 32 * j)
            let x = xq + 64 * j
            let v1 = lanes(scales[2 * j]), v2 = lanes(scales[2 * j + 1])
            sum &+= pairSumsInt(centred(qa & 0x0F, 8) &* v1, centred(qb & 0x0F, 8) &* v1, x)
            sum &+= pairSumsInt(centred(qa &>> 4, 8) &* v2, centred(qb &>> 4, 8) &* v2, x + 32)
        }
        acc = acc.addingProduct(floats(sum), F16x(repeating: d * xd[0]))
        accS += 8 * d * dot8(scales, xs) - dmin * dot8(mins, xs)
    }
}

extension KernelQ5K: BlockDotQ8 {
    static var byteFormat: themis_byte_format? { THEMIS_BYTE_Q5_K }
    /// As Q4_K, with five-bit values centred by 16 (|(q - 16)·s| ≤ 1008).
    @inline(__always) static func dotQ8(_ src: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>,
                                        _ xs: UnsafePointer<Float>, _ acc: inout F16x, _ accS: inout Float) {
        let d = halfToFloat(src), dmin = halfToFloat(src, 2)
        let qh0 = load16(src, 16), qh1 = load16(src, 32)
        let (scales, mins) = scalesMinsK(src + 4)
        var sum = SIMD16<Int32>()
        for j in 0..<4 {
            let qa = load16(src, 48 + 32 * j), qb = load16(src, 64 + 32 * j)
            let sl = UInt8(2 * j), sh = UInt8(2 * j + 1)
            let a0 = (qa & 0x0F) | (((qh0 &>> sl) & 1) &<< 4), b0 = (qb & 0x0F) | (((qh1 &>> sl) & 1) &<< 4)
            let a1 = (qa &>> 4) | (((qh0 &>> sh) & 1) &<< 4), b1 = (qb &>> 4) | (((qh1 &>> sh) & 1) &<< 4)
            let x = xq + 64 * j
            let v1 = lanes(scales[2 * j]), v2 = lanes(scales[2 * j + 1])
            sum &+= pairSumsInt(centred(a0, 16) &* v1, centred(b0, 16) &* v1, x)
            sum &+= pairSumsInt(centred(a1, 16) &* v2, centred(b1, 16) &* v2, x + 32)
        }
        acc = acc.addingProduct(floats(sum), F16x(repeating: d * xd[0]))
        accS += 16 * d * dot8(scales, xs) - dmin * dot8(mins, xs)
    }
}

extension KernelQ6K: BlockDotQ8 {
    static var byteFormat: themis_byte_format? { THEMIS_BYTE_Q6_K }
    /// Values are 6 bits minus 32 (signed already, so `pairSums` gets its single multiply-add),
    /// times their 16-element signed scale (|product| ≤ 4096 fits Int16), summed in integers.
    @inline(__always) static func dotQ8(_ src: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>,
                                        _ xs: UnsafePointer<Float>, _ acc: inout F16x, _ accS: inout Float) {
        let sc = int16(src.loadUnaligned(fromByteOffset: 192, as: SIMD16<Int8>.self))
        let bias = SIMD16<Int16>(repeating: 32)
        var sum = SIMD16<Int32>()
        for n in 0..<2 {
            let ql = 64 * n, qh = 128 + 32 * n
            let s = 8 * n
            let x = xq + 128 * n
            let a0 = load16(src, ql), a1 = load16(src, ql + 16), b0 = load16(src, ql + 32), b1 = load16(src, ql + 48)
            let h0 = load16(src, qh), h1 = load16(src, qh + 16)
            // the six-bit values of 16 elements times the scale of their sub-block i
            @inline(__always) func six(_ low: SIMD16<UInt8>, _ high: SIMD16<UInt8>, _ i: Int) -> SIMD16<Int16> {
                (int16(low | (high &<< 4)) &- bias) &* SIMD16(repeating: sc[i])
            }
            sum &+= pairSumsInt(six(a0 & 0x0F, h0 & 3, s), six(a1 & 0x0F, h1 & 3, s + 1), x)
            sum &+= pairSumsInt(six(b0 & 0x0F, (h0 &>> 2) & 3, s + 2), six(b1 & 0x0F, (h1 &>> 2) & 3, s + 3), x + 32)
            sum &+= pairSumsInt(six(a0 &>> 4, (h0 &>> 4) & 3, s + 4), six(a1 &>> 4, (h1 &>> 4) & 3, s + 5), x + 64)
            sum &+= pairSumsInt(six(b0 &>> 4, h0 &>> 6, s + 6), six(b1 &>> 4, h1 &>> 6, s + 7), x + 96)
        }
        acc = acc.addingProduct(floats(sum), F16x(repeating: halfToFloat(src, 208) * xd[0]))
    }
}

/// Decode rows with 8-bit activations, one row after another with two accumulators. Rows are
/// read strictly in order: interleaving two rows halved the speed of streaming from memory
/// (the hardware prefetcher follows one sequential stream far better than two).
@inline(__always)
func matVecRowsQ8<K: BlockDotQ8>(_: K.Type, w: UnsafeRawPointer, rowBytes: Int, k: Int, x: QuantizedRow,
                                 y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
    let blocks = k / K.elements
    let per = K.elements / 32
    for r in rows {
        let row = w + r * rowBytes
        var acc0 = F16x(), acc1 = F16x()
        var s0: Float = 0, s1: Float = 0
        var b = 0
        while b + 1 < blocks {
            K.dotQ8(row + b * K.bytes, x.q + b * K.elements, x.d + b * per, x.s + b * per, &acc0, &s0)
            K.dotQ8(row + (b + 1) * K.bytes, x.q + (b + 1) * K.elements, x.d + (b + 1) * per, x.s + (b + 1) * per, &acc1, &s1)
            b += 2
        }
        if b < blocks { K.dotQ8(row + b * K.bytes, x.q + b * K.elements, x.d + b * per, x.s + b * per, &acc0, &s0) }
        y[r] = (acc0 + acc1).sum() + s0 + s1
    }
}
