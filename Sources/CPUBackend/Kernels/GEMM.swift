/// Prefill-shape matmul over one panel of 32 weight rows: `y[i, j0 + c] = x[i] · w[j0 + c]`.
///
/// The panel's rows are dequantised once into `tmp` (`[32, k]`), transposed into `panel`
/// (`[k, 32]`, so a k-step loads two vectors), and an 8x32 register-blocked kernel runs over
/// the activation rows. Rows of the panel past `m` are zero and their outputs not stored.
func gemmPanel<K: BlockKernel>(_: K.Type, w: UnsafeRawPointer, rowBytes: Int, m: Int, k: Int, j0: Int,
                               x: UnsafePointer<Float>, n: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                               tmp: UnsafeMutablePointer<Float>, panel: UnsafeMutablePointer<Float>) {
    let cols = min(32, m - j0)
    for c in 0..<cols {
        dequantizeRow(K.self, w + (j0 + c) * rowBytes, tmp + c * k, count: k)
    }
    for kk in 0..<k {
        let p = panel + kk * 32
        for c in 0..<cols { p[c] = tmp[c * k + kk] }
        for c in cols..<32 { p[c] = 0 }
    }
    panelProduct(x: x, n: n, k: k, panel: panel, ldp: 32, y: y + j0, ldy: ldy, cols: cols, accumulate: false)
}

/// `y[i, 0 ..< cols] (+)= x[i] · panel[·, 0 ..< cols]` for the `n` rows of `x` (`k` long), where
/// `panel` holds `k` rows of at least 32 floats, `ldp` apart: the register-blocked core of the
/// GEMMs (the prefill matmul, and the input gradient through a weight).
///
/// The register tile fits the target's vector registers: 8 rows x 32 columns (16 accumulators
/// of 16 floats) with AVX-512's 32 registers, 6 x 16 (12 accumulators of 8 floats) with AVX2's 16,
/// where the 8 x 32 tile spilled and ran at 121 GFLOP/s against 215 (Qwen ffn_down, n = 512).
/// Every output is one accumulator summed over k in order either way: the same numbers.
@inline(__always)
func panelProduct(x: UnsafePointer<Float>, n: Int, k: Int, panel: UnsafePointer<Float>, ldp: Int,
                  y: UnsafeMutablePointer<Float>, ldy: Int, cols: Int, accumulate: Bool) {
    #if THEMIS_AVX512
    var i = 0
    while i + 8 <= n {
        kernel8x32(x: x + i * k, k: k, panel: panel, ldp: ldp, y: y + i * ldy, ldy: ldy, cols: cols, accumulate: accumulate)
        i += 8
    }
    while i < n {
        kernel1x32(x: x + i * k, k: k, panel: panel, ldp: ldp, y: y + i * ldy, cols: cols, accumulate: accumulate)
        i += 1
    }
    #else
    for half in 0..<2 where 16 * half < cols {
        let c = min(16, cols - 16 * half), p = panel + 16 * half
        var i = 0
        while i + 6 <= n {
            kernel6x16(x: x + i * k, k: k, panel: p, ldp: ldp, y: y + i * ldy + 16 * half, ldy: ldy, cols: c,
                       accumulate: accumulate)
            i += 6
        }
        while i < n {
            kernel1x16(x: x + i * k, k: k, panel: p, ldp: ldp, y: y + i * ldy + 16 * half, cols: c, accumulate: accumulate)
            i += 1
        }
    }
    #endif
}

@inline(__always)
private func store16(_ a: F16x, _ y: UnsafeMutablePointer<Float>, cols: Int, accumulate: Bool) {
    if cols == 16 {
        storeF(accumulate ? loadF(y) + a : a, y)
    } else {
        for c in 0..<cols { y[c] = accumulate ? y[c] + a[c] : a[c] }
    }
}

@inline(__always)
private func kernel6x16(x: UnsafePointer<Float>, k: Int, panel: UnsafePointer<Float>, ldp: Int,
                        y: UnsafeMutablePointer<Float>, ldy: Int, cols: Int, accumulate: Bool) {
    var c0 = F16x(), c1 = F16x(), c2 = F16x(), c3 = F16x(), c4 = F16x(), c5 = F16x()
    let x0 = x, x1 = x + k, x2 = x + 2 * k, x3 = x + 3 * k, x4 = x + 4 * k, x5 = x + 5 * k
    for kk in 0..<k {
        let b = loadF(panel + kk * ldp)
        c0 = c0.addingProduct(F16x(repeating: x0[kk]), b)
        c1 = c1.addingProduct(F16x(repeating: x1[kk]), b)
        c2 = c2.addingProduct(F16x(repeating: x2[kk]), b)
        c3 = c3.addingProduct(F16x(repeating: x3[kk]), b)
        c4 = c4.addingProduct(F16x(repeating: x4[kk]), b)
        c5 = c5.addingProduct(F16x(repeating: x5[kk]), b)
    }
    store16(c0, y, cols: cols, accumulate: accumulate)
    store16(c1, y + ldy, cols: cols, accumulate: accumulate)
    store16(c2, y + 2 * ldy, cols: cols, accumulate: accumulate)
    store16(c3, y + 3 * ldy, cols: cols, accumulate: accumulate)
    store16(c4, y + 4 * ldy, cols: cols, accumulate: accumulate)
    store16(c5, y + 5 * ldy, cols: cols, accumulate: accumulate)
}

@inline(__always)
private func kernel1x16(x: UnsafePointer<Float>, k: Int, panel: UnsafePointer<Float>, ldp: Int,
                        y: UnsafeMutablePointer<Float>, cols: Int, accumulate: Bool) {
    var c = F16x()
    for kk in 0..<k { c = c.addingProduct(F16x(repeating: x[kk]), loadF(panel + kk * ldp)) }
    store16(c, y, cols: cols, accumulate: accumulate)
}

@inline(__always)
private func store32(_ a: F16x, _ b: F16x, _ y: UnsafeMutablePointer<Float>, cols: Int, accumulate: Bool) {
    if cols == 32 {
        storeF(accumulate ? loadF(y) + a : a, y)
        storeF(accumulate ? loadF(y + 16) + b : b, y + 16)
    } else {
        for c in 0..<min(cols, 16) { y[c] = accumulate ? y[c] + a[c] : a[c] }
        if cols > 16 { for c in 16..<cols { y[c] = accumulate ? y[c] + b[c - 16] : b[c - 16] } }
    }
}

// Written out by hand: arrays or tuples of accumulators spill to the stack.
@inline(__always)
private func kernel8x32(x: UnsafePointer<Float>, k: Int, panel: UnsafePointer<Float>, ldp: Int,
                        y: UnsafeMutablePointer<Float>, ldy: Int, cols: Int, accumulate: Bool) {
    var c00 = F16x(), c01 = F16x(), c10 = F16x(), c11 = F16x()
    var c20 = F16x(), c21 = F16x(), c30 = F16x(), c31 = F16x()
    var c40 = F16x(), c41 = F16x(), c50 = F16x(), c51 = F16x()
    var c60 = F16x(), c61 = F16x(), c70 = F16x(), c71 = F16x()
    let x0 = x, x1 = x + k, x2 = x + 2 * k, x3 = x + 3 * k
    let x4 = x + 4 * k, x5 = x + 5 * k, x6 = x + 6 * k, x7 = x + 7 * k
    for kk in 0..<k {
        let b0 = loadF(panel + kk * ldp)
        let b1 = loadF(panel + kk * ldp + 16)
        var a = F16x(repeating: x0[kk])
        c00 = c00.addingProduct(a, b0); c01 = c01.addingProduct(a, b1)
        a = F16x(repeating: x1[kk])
        c10 = c10.addingProduct(a, b0); c11 = c11.addingProduct(a, b1)
        a = F16x(repeating: x2[kk])
        c20 = c20.addingProduct(a, b0); c21 = c21.addingProduct(a, b1)
        a = F16x(repeating: x3[kk])
        c30 = c30.addingProduct(a, b0); c31 = c31.addingProduct(a, b1)
        a = F16x(repeating: x4[kk])
        c40 = c40.addingProduct(a, b0); c41 = c41.addingProduct(a, b1)
        a = F16x(repeating: x5[kk])
        c50 = c50.addingProduct(a, b0); c51 = c51.addingProduct(a, b1)
        a = F16x(repeating: x6[kk])
        c60 = c60.addingProduct(a, b0); c61 = c61.addingProduct(a, b1)
        a = F16x(repeating: x7[kk])
        c70 = c70.addingProduct(a, b0); c71 = c71.addingProduct(a, b1)
    }
    store32(c00, c01, y, cols: cols, accumulate: accumulate)
    store32(c10, c11, y + ldy, cols: cols, accumulate: accumulate)
    store32(c20, c21, y + 2 * ldy, cols: cols, accumulate: accumulate)
    store32(c30, c31, y + 3 * ldy, cols: cols, accumulate: accumulate)
    store32(c40, c41, y + 4 * ldy, cols: cols, accumulate: accumulate)
    store32(c50, c51, y + 5 * ldy, cols: cols, accumulate: accumulate)
    store32(c60, c61, y + 6 * ldy, cols: cols, accumulate: accumulate)
    store32(c70, c71, y + 7 * ldy, cols: cols, accumulate: accumulate)
}

@inline(__always)
private func kernel1x32(x: UnsafePointer<Float>, k: Int, panel: UnsafePointer<Float>, ldp: Int,
                        y: UnsafeMutablePointer<Float>, cols: Int, accumulate: Bool) {
    var c0 = F16x(), c1 = F16x()
    for kk in 0..<k {
        let a = F16x(repeating: x[kk])
        c0 = c0.addingProduct(a, loadF(panel + kk * ldp))
        c1 = c1.addingProduct(a, loadF(panel + kk * ldp + 16))
    }
    store32(c0, c1, y, cols: cols, accumulate: accumulate)
}
