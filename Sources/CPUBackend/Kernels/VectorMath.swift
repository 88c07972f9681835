/// e^x for 16 lanes: Cephes-style range reduction and a degree-6 polynomial (relative error
/// about 2e-7 over the clamped range; inputs below -87 give about 1e-38, not 0).
@inline(__always) func vexp(_ v: F16x) -> F16x {
    let lo = F16x(repeating: -87.0), hi = F16x(repeating: 88.0)
    let x = v.replacing(with: lo, where: v .< lo).replacing(with: hi, where: v .> hi)
    let magic = F16x(repeating: 12_582_912.0)  // 1.5 * 2^23: adding it rounds to an integer
    let t = x * 1.442_695_04 + magic
    let n = t - magic
    var r = x.addingProduct(n, F16x(repeating: -0.693_359_375))
    r = r.addingProduct(n, F16x(repeating: 2.121_944_4e-4))
    var p = F16x(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let e = (p * r * r + r) + 1
    let nBits = unsafeBitCast(t, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
    let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: F16x.self)
    return e * scale
}

/// Dot product of `count` floats.
@inline(__always) func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc0 = F16x(), acc1 = F16x()
    var i = 0
    while i + 32 <= count {
        acc0 = acc0.addingProduct(loadF(a + i), loadF(b + i))
        acc1 = acc1.addingProduct(loadF(a + i + 16), loadF(b + i + 16))
        i += 32
    }
    if i + 16 <= count { acc0 = acc0.addingProduct(loadF(a + i), loadF(b + i)); i += 16 }
    var s = (acc0 + acc1).sum()
    while i < count { s += a[i] * b[i]; i += 1 }
    return s
}

/// Maximum of `count > 0` floats.
@inline(__always) func maxOf(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var i = 0
    var m = -Float.infinity
    if count >= 16 {
        var acc = loadF(p)
        i = 16
        while i + 16 <= count { let v = loadF(p + i); acc.replace(with: v, where: v .> acc); i += 16 }
        m = acc.max()
    }
    while i < count { m = max(m, p[i]); i += 1 }
    return m
}

/// `p[i] = exp(p[i] - shift)` in place; returns the sum of the results.
@inline(__always) func expShiftSum(_ p: UnsafeMutablePointer<Float>, _ count: Int, shift: Float) -> Float {
    var acc = F16x()
    let s = F16x(repeating: shift)
    var i = 0
    while i + 16 <= count {
        let e = vexp(loadF(p + i) - s)
        storeF(e, p + i)
        acc += e
        i += 16
    }
    if i < count {
        var v = F16x(repeating: -Float.infinity)
        for j in 0..<(count - i) { v[j] = p[i + j] }
        let e = vexp(v - s)
        for j in 0..<(count - i) { p[i + j] = e[j]; acc[j] += e[j] }
    }
    return acc.sum()
}

/// `y += a * x` over `count` floats.
@inline(__always) func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
    let av = F16x(repeating: a)
    var i = 0
    while i + 16 <= count { storeF(loadF(y + i).addingProduct(av, loadF(x + i)), y + i); i += 16 }
    while i < count { y[i] += a * x[i]; i += 1 }
}

/// `out[0..<64] = scale · Σ_p w[p] · v[p·stride ..< p·stride + 64]`, with the sum in registers
/// (the common head size; the generic path reads and writes `out` for every position).
@inline(__always) func weightedSum64(_ w: UnsafePointer<Float>, _ v: UnsafePointer<Float>, stride: Int, count: Int,
                                     scale: Float, into out: UnsafeMutablePointer<Float>) {
    var a0 = F16x(), a1 = F16x(), a2 = F16x(), a3 = F16x()
    for p in 0..<count {
        let wp = F16x(repeating: w[p])
        let row = v + p * stride
        a0 = a0.addingProduct(wp, loadF(row))
        a1 = a1.addingProduct(wp, loadF(row + 16))
        a2 = a2.addingProduct(wp, loadF(row + 32))
        a3 = a3.addingProduct(wp, loadF(row + 48))
    }
    let s = F16x(repeating: scale)
    storeF(a0 * s, out)
    storeF(a1 * s, out + 16)
    storeF(a2 * s, out + 32)
    storeF(a3 * s, out + 48)
}

/// tanh for 16 lanes as `1 - 2 / (e^(2x) + 1)`: absolute error about 1e-7 (what GELU and
/// soft-capping need; near 0 the relative error grows).
@inline(__always) func vtanh(_ v: F16x) -> F16x {
    let one = F16x(repeating: 1)
    return one - 2 / (vexp(v + v) + one)
}

/// GELU with the tanh approximation for 16 lanes: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
@inline(__always) func vgelu(_ x: F16x) -> F16x {
    let inner = x * 0.797_884_56 * (x * x * 0.044_715 + 1)
    return x * 0.5 * (vtanh(inner) + 1)
}

// MARK: attention over keys in blocks of 16 positions (forward and backward)

/// Block `block` of one head's keys (or values): positions `block·16 ..< block·16 + 16` of rows
/// `stride` floats apart, `headDim` values from `offset`, stored dimension-major
/// (`dst[d·16 + lane]`) so one 16-lane FMA gives 16 positions' products; zero past `length`.
@inline(__always)
func transposeBlock(_ src: UnsafePointer<Float>, stride: Int, offset: Int, headDim: Int, length: Int, block: Int,
                    into dst: UnsafeMutablePointer<Float>) {
    for j in 0..<16 {
        let p = block * 16 + j
        if p < length {
            let row = src + p * stride + offset
            for d in 0..<headDim { dst[d * 16 + j] = row[d] }
        } else {
            for d in 0..<headDim { dst[d * 16 + j] = 0 }
        }
    }
}

/// `Σ_d q[d] · block[d·16 ..< d·16 + 16]` over `headDim` dimensions: one row's dot products with
/// the 16 positions of a transposed block, over four independent sums (one chain of FMAs would
/// wait on each latency) joined pairwise.
@inline(__always)
func blockDot(_ q: UnsafePointer<Float>, _ block: UnsafePointer<Float>, _ headDim: Int) -> F16x {
    var a0 = F16x(), a1 = F16x(), a2 = F16x(), a3 = F16x()
    var d = 0
    while d + 4 <= headDim {
        a0 = a0.addingProduct(F16x(repeating: q[d]), loadF(block + d * 16))
        a1 = a1.addingProduct(F16x(repeating: q[d + 1]), loadF(block + (d + 1) * 16))
        a2 = a2.addingProduct(F16x(repeating: q[d + 2]), loadF(block + (d + 2) * 16))
        a3 = a3.addingProduct(F16x(repeating: q[d + 3]), loadF(block + (d + 3) * 16))
        d += 4
    }
    while d < headDim {
        a0 = a0.addingProduct(F16x(repeating: q[d]), loadF(block + d * 16))
        d += 1
    }
    return (a0 + a1) + (a2 + a3)
}

/// `blockDot` for two rows at once, sharing every load of the block; each row's sum in the same
/// order as `blockDot`'s, so the numbers are the same.
@inline(__always)
func blockDot2(_ qa: UnsafePointer<Float>, _ qb: UnsafePointer<Float>, _ block: UnsafePointer<Float>, _ headDim: Int)
    -> (F16x, F16x)
{
    var a0 = F16x(), a1 = F16x(), a2 = F16x(), a3 = F16x()
    var c0 = F16x(), c1 = F16x(), c2 = F16x(), c3 = F16x()
    var d = 0
    while d + 4 <= headDim {
        let k0 = loadF(block + d * 16), k1 = loadF(block + (d + 1) * 16)
        let k2 = loadF(block + (d + 2) * 16), k3 = loadF(block + (d + 3) * 16)
        a0 = a0.addingProduct(F16x(repeating: qa[d]), k0)
        a1 = a1.addingProduct(F16x(repeating: qa[d + 1]), k1)
        a2 = a2.addingProduct(F16x(repeating: qa[d + 2]), k2)
        a3 = a3.addingProduct(F16x(repeating: qa[d + 3]), k3)
        c0 = c0.addingProduct(F16x(repeating: qb[d]), k0)
        c1 = c1.addingProduct(F16x(repeating: qb[d + 1]), k1)
        c2 = c2.addingProduct(F16x(repeating: qb[d + 2]), k2)
        c3 = c3.addingProduct(F16x(repeating: qb[d + 3]), k3)
        d += 4
    }
    while d < headDim {
        let k = loadF(block + d * 16)
        a0 = a0.addingProduct(F16x(repeating: qa[d]), k)
        c0 = c0.addingProduct(F16x(repeating: qb[d]), k)
        d += 1
    }
    return ((a0 + a1) + (a2 + a3), (c0 + c1) + (c2 + c3))
}
