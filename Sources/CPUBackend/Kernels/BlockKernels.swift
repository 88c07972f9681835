import ThemisBackend

/// Dequantisation of one storage block into floats, specialised per format.
///
/// Float formats use 16-element "blocks" so every kernel can step in whole vectors; their rows
/// may end in a partial block, which `dequantizeTail` handles.
protocol BlockKernel {
    /// Elements per kernel block.
    static var elements: Int { get }
    /// Bytes per kernel block.
    static var bytes: Int { get }
    /// Writes `elements` floats.
    static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>)
    /// Writes `count < elements` floats from a final partial block (float formats only).
    static func dequantizeTail(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int)
}

extension BlockKernel {
    static func dequantizeTail(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        preconditionFailure("quantised rows hold whole blocks")
    }
}

enum KernelF32: BlockKernel {
    static var elements: Int { 16 }
    static var bytes: Int { 64 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        storeF(src.loadUnaligned(as: F16x.self), dst)
    }
    static func dequantizeTail(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
    }
}

enum KernelF16: BlockKernel {
    static var elements: Int { 16 }
    static var bytes: Int { 32 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let h = src.loadUnaligned(as: SIMD16<UInt16>.self)
        var r = F16x()
        for i in 0..<16 { r[i] = Float(Float16(bitPattern: h[i])) }
        storeF(r, dst)
    }
    static func dequantizeTail(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = halfToFloat(src, 2 * i) }
    }
}

enum KernelBF16: BlockKernel {
    static var elements: Int { 16 }
    static var bytes: Int { 32 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let h = src.loadUnaligned(as: SIMD16<UInt16>.self)
        var r = F16x()
        for i in 0..<16 { r[i] = Float(bitPattern: UInt32(h[i]) << 16) }
        storeF(r, dst)
    }
    static func dequantizeTail(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
        }
    }
}

/// Q4_0: f16 d, 16 bytes of nibbles; x = (q - 8) * d; low nibbles are elements 0-15.
enum KernelQ4_0: BlockKernel {
    static var elements: Int { 32 }
    static var bytes: Int { 18 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let d = F16x(repeating: halfToFloat(src))
        let q = load16(src, 2)
        let eight = F16x(repeating: 8)
        storeF((floats(q & 0x0F) - eight) * d, dst)
        storeF((floats(q &>> 4) - eight) * d, dst + 16)
    }
}

/// Q4_1: f16 d, f16 m, 16 bytes of nibbles; x = q * d + m.
enum KernelQ4_1: BlockKernel {
    static var elements: Int { 32 }
    static var bytes: Int { 20 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let d = F16x(repeating: halfToFloat(src))
        let m = F16x(repeating: halfToFloat(src, 2))
        let q = load16(src, 4)
        storeF(floats(q & 0x0F) * d + m, dst)
        storeF(floats(q &>> 4) * d + m, dst + 16)
    }
}

/// Q5_0: f16 d, 32 high bits, 16 bytes of nibbles; x = (q | h << 4 - 16) * d.
enum KernelQ5_0: BlockKernel {
    static var elements: Int { 32 }
    static var bytes: Int { 22 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let d = F16x(repeating: halfToFloat(src))
        let qh = SIMD16<UInt32>(repeating: src.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        let q = load16(src, 6)
        let lo = widen(q & 0x0F) | (((qh &>> laneIndex) & 1) &<< 4)
        let hi = widen(q &>> 4) | (((qh &>> (laneIndex &+ 16)) & 1) &<< 4)
        let sixteen = F16x(repeating: 16)
        storeF((floats(lo) - sixteen) * d, dst)
        storeF((floats(hi) - sixteen) * d, dst + 16)
    }
}

/// Q5_1: f16 d, f16 m, 32 high bits, 16 bytes of nibbles; x = (q | h << 4) * d + m.
enum KernelQ5_1: BlockKernel {
    static var elements: Int { 32 }
    static var bytes: Int { 24 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let d = F16x(repeating: halfToFloat(src))
        let m = F16x(repeating: halfToFloat(src, 2))
        let qh = SIMD16<UInt32>(repeating: src.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let q = load16(src, 8)
        let lo = widen(q & 0x0F) | (((qh &>> laneIndex) & 1) &<< 4)
        let hi = widen(q &>> 4) | (((qh &>> (laneIndex &+ 16)) & 1) &<< 4)
        storeF(floats(lo) * d + m, dst)
        storeF(floats(hi) * d + m, dst + 16)
    }
}

/// Q8_0: f16 d, 32 signed bytes; x = q * d.
enum KernelQ8_0: BlockKernel {
    static var elements: Int { 32 }
    static var bytes: Int { 34 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let d = F16x(repeating: halfToFloat(src))
        storeF(floats(src.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self)) * d, dst)
        storeF(floats(src.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self)) * d, dst + 16)
    }
}

/// Q4_K and Q5_K's eight 6-bit scales and eight mins, unpacked from their 12 bytes with 32-bit
/// masks and shifts (sub-blocks 0-3 keep six low bits; 4-7 take a nibble of bytes 8-11 and two
/// high bits of bytes 0-7); the words are read little-endian, as x86 and arm64 store them.
@inline(__always) func scalesMinsK(_ q: UnsafeRawPointer) -> (scales: SIMD8<UInt8>, mins: SIMD8<UInt8>) {
    let w0 = q.loadUnaligned(as: UInt32.self), w1 = q.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    let w2 = q.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    let low6: UInt32 = 0x3F3F_3F3F, low4: UInt32 = 0x0F0F_0F0F, low2: UInt32 = 0x0303_0303
    let scales = SIMD2<UInt32>(w0 & low6, (w2 & low4) | (((w0 >> 6) & low2) << 4))
    let mins = SIMD2<UInt32>(w1 & low6, ((w2 >> 4) & low4) | (((w1 >> 6) & low2) << 4))
    return (unsafeBitCast(scales, to: SIMD8<UInt8>.self), unsafeBitCast(mins, to: SIMD8<UInt8>.self))
}

/// Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles (256 elements).
enum KernelQ4K: BlockKernel {
    static var elements: Int { 256 }
    static var bytes: Int { 144 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let d = halfToFloat(src)
        let dmin = halfToFloat(src, 2)
        let (scales, mins) = scalesMinsK(src + 4)
        for j in 0..<4 {
            let d1 = F16x(repeating: d * Float(scales[2 * j])), n1 = F16x(repeating: dmin * Float(mins[2 * j]))
            let d2 = F16x(repeating: d * Float(scales[2 * j + 1])), n2 = F16x(repeating: dmin * Float(mins[2 * j + 1]))
            let y = dst + 64 * j
            for h in 0..<2 {
                let q = load16(src, 16 + 32 * j + 16 * h)
                storeF(floats(q & 0x0F) * d1 - n1, y + 16 * h)
                storeF(floats(q &>> 4) * d2 - n2, y + 32 + 16 * h)
            }
        }
    }
}

/// Q5_K: f16 d, f16 dmin, 12 bytes of scales/mins, 32 bytes of high bits, 128 bytes of nibbles.
enum KernelQ5K: BlockKernel {
    static var elements: Int { 256 }
    static var bytes: Int { 176 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let d = halfToFloat(src)
        let dmin = halfToFloat(src, 2)
        let (scales, mins) = scalesMinsK(src + 4)
        for j in 0..<4 {
            let d1 = F16x(repeating: d * Float(scales[2 * j])), n1 = F16x(repeating: dmin * Float(mins[2 * j]))
            let d2 = F16x(repeating: d * Float(scales[2 * j + 1])), n2 = F16x(repeating: dmin * Float(mins[2 * j + 1]))
            let y = dst + 64 * j
            let shiftLo = UInt8(2 * j), shiftHi = UInt8(2 * j + 1)
            for h in 0..<2 {
                let ql = load16(src, 48 + 32 * j + 16 * h)
                let qh = load16(src, 16 + 16 * h)
                let lo = (ql & 0x0F) | (((qh &>> shiftLo) & 1) &<< 4)
                let hi = (ql &>> 4) | (((qh &>> shiftHi) & 1) &<< 4)
                storeF(floats(lo) * d1 - n1, y + 16 * h)
                storeF(floats(hi) * d2 - n2, y + 32 + 16 * h)
            }
        }
    }
}

/// Q6_K: 128 bytes low nibbles, 64 bytes of 2-bit highs, 16 signed 8-bit scales, f16 d.
enum KernelQ6K: BlockKernel {
    static var elements: Int { 256 }
    static var bytes: Int { 210 }
    @inline(__always) static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>) {
        let d = halfToFloat(src, 208)
        let sc = (src + 192).assumingMemoryBound(to: Int8.self)
        let thirtyTwo = F16x(repeating: 32)
        for n in 0..<2 {
            let ql = 64 * n, qh = 128 + 32 * n
            let s = sc + 8 * n
            let y = dst + 128 * n
            for c in 0..<2 {
                let a = load16(src, ql + 16 * c)
                let b = load16(src, ql + 32 + 16 * c)
                let h = load16(src, qh + 16 * c)
                let q1 = (a & 0x0F) | ((h & 3) &<< 4)
                let q2 = (b & 0x0F) | (((h &>> 2) & 3) &<< 4)
                let q3 = (a &>> 4) | (((h &>> 4) & 3) &<< 4)
                let q4 = (b &>> 4) | (((h &>> 6) & 3) &<< 4)
                storeF((floats(q1) - thirtyTwo) * F16x(repeating: d * Float(s[c])), y + 16 * c)
                storeF((floats(q2) - thirtyTwo) * F16x(repeating: d * Float(s[c + 2])), y + 32 + 16 * c)
                storeF((floats(q3) - thirtyTwo) * F16x(repeating: d * Float(s[c + 4])), y + 64 + 16 * c)
                storeF((floats(q4) - thirtyTwo) * F16x(repeating: d * Float(s[c + 6])), y + 96 + 16 * c)
            }
        }
    }
}
