import ThemisBackend
#if canImport(Glibc)
import Glibc
#endif

/// The backward ops on the CPU: the input gradient through a weight reuses the prefill GEMM's
/// register-blocked core on column tiles of the weight dequantised a block at a time; the rest are
/// row-parallel loops over SIMD vectors.
extension CPUBackend: TrainingBackend {
    public func matmulInputGradient(_ dy: Tensor, weight w: Tensor, into dx: Tensor, accumulate: Bool) {
        let n = dy.rowCount, m = w.rowCount, k = w.rowLength
        TrainingShapes.matmulInputGradient(dy, w, dx)
        guard n > 0, k > 0 else { return }
        // a task takes `chunk` columns of w (whole blocks, whole 32-column panels), dequantises
        // them for all m rows into a tile, and runs every row of dy against its panels
        let block = w.type.blockSize
        let chunk = block >= 64 ? block : 64 / block * block
        let stride = (chunk + 31) / 32 * 32
        ensureScratch(m * stride + 64)
        dispatch(w.type, InputGradientJob(pool: pool, scratch: scratch, w: rawPointer(w), rowBytes: w.rowBytes,
                                          dy: pointer(dy), dx: pointer(dx), n: n, m: m, k: k, chunk: chunk,
                                          stride: stride, accumulate: accumulate))
    }

    public func matmulWeightGradient(_ dy: Tensor, input x: Tensor, into dw: Tensor, accumulate: Bool) {
        let n = dy.rowCount, m = dy.rowLength, k = x.rowLength
        TrainingShapes.matmulWeightGradient(dy, x, dw)
        let gp = pointer(dy), xp = pointer(x), wp = pointer(dw)
        parallelRows(m, width: n * k) { j in
            let row = wp + j * k
            if !accumulate { row.update(repeating: 0, count: k) }
            for i in 0..<n { axpy(gp[i * m + j], xp + i * k, row, k) }
        }
    }

    public func rmsNormBackward(_ x: Tensor, weight: Tensor, epsilon: Float, gradient dy: Tensor, into dx: Tensor) {
        let width = x.rowLength
        TrainingShapes.elementwise("rmsNormBackward", x, [dy, dx], rowVector: weight)
        let xp = pointer(x), wp = pointer(weight), gp = pointer(dy), op = pointer(dx)
        parallelRows(x.rowCount, width: width * 2) { r in
            let v = xp + r * width, g = gp + r * width, o = op + r * width
            let scale = 1 / (dot(v, v, width) / Float(width) + epsilon).squareRoot()
            var acc = F16x(), i = 0, tail: Float = 0
            while i + 16 <= width { acc = acc.addingProduct(loadF(g + i) * loadF(wp + i), loadF(v + i)); i += 16 }
            while i < width { tail += g[i] * wp[i] * v[i]; i += 1 }
            let correction = scale * scale * (acc.sum() + tail) / Float(width)
            let s = F16x(repeating: scale), c = F16x(repeating: correction)
            i = 0
            while i + 16 <= width { storeF(s * (loadF(g + i) * loadF(wp + i) - loadF(v + i) * c), o + i); i += 16 }
            while i < width { o[i] = scale * (g[i] * wp[i] - v[i] * correction); i += 1 }
        }
    }

    public func ropeBackward(_ dy: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float,
                             layout: RoPELayout, scaling: RoPEScaling) {
        rotate(dy, headDim: headDim, ropeDim: ropeDim, startPosition: startPosition, freqBase: freqBase, layout: layout,
               scaling: scaling, inverse: true)
    }

    public func swigluBackward(gate: Tensor, up: Tensor, gradient dy: Tensor, gateGradient: Tensor, upGradient: Tensor) {
        let width = gate.rowLength
        TrainingShapes.elementwise("swigluBackward", gate, [up, dy, gateGradient, upGradient])
        let gp = pointer(gate), upp = pointer(up), dp = pointer(dy), dgp = pointer(gateGradient), dup = pointer(upGradient)
        let one = F16x(repeating: 1)
        parallelRows(gate.rowCount, width: width) { r in
            let o = r * width
            var i = 0
            while i + 16 <= width {
                let g = loadF(gp + o + i), u = loadF(upp + o + i), d = loadF(dp + o + i)
                let s = one / (one + vexp(-g))
                storeF(d * u * s * (one + g * (one - s)), dgp + o + i)
                storeF(d * g * s, dup + o + i)
                i += 16
            }
            while i < width {
                let g = gp[o + i], u = upp[o + i], d = dp[o + i]
                let s = 1 / (1 + expf(-g))
                dgp[o + i] = d * u * s * (1 + g * (1 - s))
                dup[o + i] = d * g * s
                i += 1
            }
        }
    }

    public func attentionBackward(q: Tensor, keys: Tensor, values: Tensor, gradient dOut: Tensor, headCount: Int,
                                  headCountKV: Int, scale: Float, mask: AttentionMask,
                                  queryGradient dq: Tensor, keyGradient dk: Tensor, valueGradient dv: Tensor) {
        let n = q.rowCount, width = q.rowLength
        let d = TrainingShapes.attentionBackward(q: q, keys: keys, values: values, dOut: dOut, headCount: headCount,
                                                 headCountKV: headCountKV, mask: mask, dq: dq, dk: dk, dv: dv)
        let kvWidth = headCountKV * d
        guard n > 0 else { return }
        let qp = pointer(q), kp = pointer(keys), vp = pointer(values), gp = pointer(dOut)
        let dqp = pointer(dq), dkp = pointer(dk), dvp = pointer(dv)
        let group = headCount / headCountKV
        // One KV head at a time, its keys and values transposed into blocks of 16 positions
        // (`[block][dim][16]`), so scores and dOut·v come 16 positions per SIMD step; then each of
        // its query heads: pass 1 per query row computes the row's softmax P, dS = P (dP - D) ·
        // scale and dq, and stores P and dS by column block (`[block][row][16]`); pass 2 per block
        // of 16 keys and 16 dimensions streams down those columns: dk = Σ dS·q, dv = Σ P·dOut,
        // four keys at a time in registers.
        let blocks = (n + 15) / 16, padded = blocks * 16
        let kt = UnsafeMutablePointer<Float>.allocate(capacity: padded * d)
        let vt = UnsafeMutablePointer<Float>.allocate(capacity: padded * d)
        let probabilities = UnsafeMutablePointer<Float>.allocate(capacity: blocks * n * 16)
        let scoreGradients = UnsafeMutablePointer<Float>.allocate(capacity: blocks * n * 16)
        defer { kt.deallocate(); vt.deallocate(); probabilities.deallocate(); scoreGradients.deallocate() }
        ensureScratch(2 * padded + 64)
        let scratch = self.scratch
        let window = mask.window
        let lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let tiles = d % 16 == 0 ? d / 16 : 0
        for g in 0..<headCountKV {
            let kvo = g * d
            pool.run(tasks: blocks) { blk, _ in
                for t in 0..<d {
                    for lane in 0..<16 {
                        let j = blk * 16 + lane
                        kt[(blk * d + t) * 16 + lane] = j < n ? kp[j * kvWidth + kvo + t] : 0
                        vt[(blk * d + t) * 16 + lane] = j < n ? vp[j * kvWidth + kvo + t] : 0
                    }
                }
            }
            for h in g * group..<(g + 1) * group {
                let qo = h * d
                pool.run(tasks: n) { i, thread in
                    let first = mask.firstVisible(from: i)
                    let b0 = first / 16, b1 = i / 16
                    let qi = qp + i * width + qo, gi = gp + i * width + qo
                    let sRow = scratch[thread], dpRow = sRow + padded
                    var top = -Float.infinity
                    for blk in b0...b1 {
                        let j = lanes &+ Int32(blk * 16)
                        let visible = (j .>= Int32(first)) .& (j .<= Int32(i))
                        let acc = (columnDot(qi, kt + blk * 16 * d, d) * scale).replacing(with: -.infinity, where: .!visible)
                        storeF(acc, sRow + blk * 16)
                        top = max(top, acc.max())
                    }
                    var total: Float = 0
                    let topv = F16x(repeating: top)
                    for blk in b0...b1 {
                        let j = lanes &+ Int32(blk * 16)
                        let visible = (j .>= Int32(first)) .& (j .<= Int32(i))
                        let e = vexp(loadF(sRow + blk * 16) - topv).replacing(with: 0, where: .!visible)
                        storeF(e, sRow + blk * 16)
                        total += e.sum()
                    }
                    let inv = F16x(repeating: 1 / total)
                    var dd: Float = 0
                    for blk in b0...b1 {
                        let dp = columnDot(gi, vt + blk * 16 * d, d)
                        let pv = loadF(sRow + blk * 16) * inv
                        storeF(pv, probabilities + (blk * n + i) * 16)
                        storeF(dp, dpRow + blk * 16)
                        dd += (pv * dp).sum()
                    }
                    let ddv = F16x(repeating: dd), sv = F16x(repeating: scale)
                    let out = dqp + i * width + qo
                    if d == 64 {
                        // the common head size: dq in registers, two keys at a time
                        var a0 = F16x(), a1 = F16x(), a2 = F16x(), a3 = F16x()
                        var c0 = F16x(), c1 = F16x(), c2 = F16x(), c3 = F16x()
                        for blk in b0...b1 {
                            let ds = loadF(probabilities + (blk * n + i) * 16) * (loadF(dpRow + blk * 16) - ddv) * sv
                            storeF(ds, scoreGradients + (blk * n + i) * 16)
                            var lane = blk == b0 ? first - blk * 16 : 0
                            let end = blk == b1 ? i - blk * 16 + 1 : 16
                            while lane + 1 < end {
                                let k = kp + (blk * 16 + lane) * kvWidth + kvo, k2 = k + kvWidth
                                let x = F16x(repeating: ds[lane]), y = F16x(repeating: ds[lane + 1])
                                a0 = a0.addingProduct(x, loadF(k)); a1 = a1.addingProduct(x, loadF(k + 16))
                                a2 = a2.addingProduct(x, loadF(k + 32)); a3 = a3.addingProduct(x, loadF(k + 48))
                                c0 = c0.addingProduct(y, loadF(k2)); c1 = c1.addingProduct(y, loadF(k2 + 16))
                                c2 = c2.addingProduct(y, loadF(k2 + 32)); c3 = c3.addingProduct(y, loadF(k2 + 48))
                                lane += 2
                            }
                            if lane < end {
                                let k = kp + (blk * 16 + lane) * kvWidth + kvo, x = F16x(repeating: ds[lane])
                                a0 = a0.addingProduct(x, loadF(k)); a1 = a1.addingProduct(x, loadF(k + 16))
                                a2 = a2.addingProduct(x, loadF(k + 32)); a3 = a3.addingProduct(x, loadF(k + 48))
                            }
                        }
                        storeF(a0 + c0, out); storeF(a1 + c1, out + 16); storeF(a2 + c2, out + 32); storeF(a3 + c3, out + 48)
                        return
                    }
                    out.update(repeating: 0, count: d)
                    for blk in b0...b1 {
                        let ds = loadF(probabilities + (blk * n + i) * 16) * (loadF(dpRow + blk * 16) - ddv) * sv
                        storeF(ds, scoreGradients + (blk * n + i) * 16)
                        let lo = blk == b0 ? first - blk * 16 : 0, hi = blk == b1 ? i - blk * 16 + 1 : 16
                        for lane in lo..<hi { axpy(ds[lane], kp + (blk * 16 + lane) * kvWidth + kvo, out, d) }
                    }
                }
                let firstHead = h == g * group
                if tiles > 0 {
                    pool.run(tasks: blocks * tiles) { task, _ in
                        let jb = task / tiles, t0 = (task % tiles) * 16
                        let j0 = jb * 16
                        let last = window > 0 ? min(n - 1, j0 + 15 + window - 1) : n - 1
                        for (columns, rows, out) in [(scoreGradients, qp, dkp), (probabilities, gp, dvp)] {
                            let column = columns + jb * n * 16
                            for kg in stride(from: 0, to: min(16, n - j0), by: 4) {
                                var s0 = F16x(), s1 = F16x(), s2 = F16x(), s3 = F16x()
                                for i in j0...last {
                                    let x = loadF(rows + i * width + qo + t0), c = column + i * 16 + kg
                                    s0 = s0.addingProduct(F16x(repeating: c[0]), x)
                                    s1 = s1.addingProduct(F16x(repeating: c[1]), x)
                                    s2 = s2.addingProduct(F16x(repeating: c[2]), x)
                                    s3 = s3.addingProduct(F16x(repeating: c[3]), x)
                                }
                                for (lane, sum) in [s0, s1, s2, s3].enumerated() where j0 + kg + lane < n {
                                    let o = out + (j0 + kg + lane) * kvWidth + kvo + t0
                                    storeF(firstHead ? sum : loadF(o) + sum, o)
                                }
                            }
                        }
                    }
                } else {
                    pool.run(tasks: n) { j, _ in
                        let dkj = dkp + j * kvWidth + kvo, dvj = dvp + j * kvWidth + kvo
                        if firstHead {
                            dkj.update(repeating: 0, count: d)
                            dvj.update(repeating: 0, count: d)
                        }
                        let last = window > 0 ? min(n - 1, j + window - 1) : n - 1
                        let c = (j / 16) * n * 16 + j % 16
                        for i in j...last {
                            axpy(scoreGradients[c + i * 16], qp + i * width + qo, dkj, d)
                            axpy(probabilities[c + i * 16], gp + i * width + qo, dvj, d)
                        }
                    }
                }
            }
        }
    }

    public func crossEntropy(_ logits: Tensor, targets: [Int32], weights: [Float], factor: Float, losses: Tensor,
                             gradient: Tensor) {
        let n = logits.rowCount, vocab = logits.rowLength
        TrainingShapes.crossEntropy(logits, targets: targets, weights: weights, losses: losses, gradient: gradient)
        let xp = pointer(logits), lp = pointer(losses), gp = pointer(gradient)
        parallelRows(n, width: vocab) { r in
            let x = xp + r * vocab, g = gp + r * vocab
            let w = weights[r]
            guard w != 0 else {
                lp[r] = 0
                g.update(repeating: 0, count: vocab)
                return
            }
            let top = maxOf(x, vocab)
            let t = Int(targets[r]), target = x[t]
            var acc = F16x(), i = 0, tail: Float = 0
            let topv = F16x(repeating: top)
            while i + 16 <= vocab { acc += vexp(loadF(x + i) - topv); i += 16 }
            while i < vocab { tail += expf(x[i] - top); i += 1 }
            let total = acc.sum() + tail
            lp[r] = w * (top + logf(total) - target)
            let scale = factor * w / total
            let sv = F16x(repeating: scale)
            i = 0
            while i + 16 <= vocab { storeF(vexp(loadF(x + i) - topv) * sv, g + i); i += 16 }
            while i < vocab { g[i] = expf(x[i] - top) * scale; i += 1 }
            g[t] -= factor * w
        }
    }

    public func dropout(_ x: Tensor, probability: Float, seed: UInt64, into out: Tensor) {
        precondition(out.count == x.count && probability >= 0 && probability < 1, "dropout shapes")
        let width = x.rowLength, xp = pointer(x), op = pointer(out)
        let keep = 1 / (1 - probability)
        parallelRows(x.rowCount, width: width) { r in
            for c in 0..<width {
                let e = r * width + c
                op[e] = dropoutDraw(seed: seed, index: e) < probability ? 0 : xp[e] * keep
            }
        }
    }
}

/// `dx (+)= dy · w` in column chunks of `w`, one task per chunk.
struct InputGradientJob: KernelVisitor {
    let pool: ThreadPool
    let scratch: [UnsafeMutablePointer<Float>]
    let w: UnsafeRawPointer
    let rowBytes: Int
    let dy: UnsafeMutablePointer<Float>
    let dx: UnsafeMutablePointer<Float>
    let n: Int, m: Int, k: Int, chunk: Int, stride: Int
    let accumulate: Bool

    func visit<K: BlockKernel>(_ kernel: K.Type) {
        let (w, rowBytes, dy, dx, n, m, k, chunk, stride, accumulate, scratch) =
            (w, rowBytes, dy, dx, n, m, k, chunk, stride, accumulate, scratch)
        pool.run(tasks: (k + chunk - 1) / chunk) { t, thread in
            let c0 = t * chunk, cw = min(chunk, k - c0)
            let tile = scratch[thread]
            let blockOffset = c0 / K.elements * K.bytes
            for j in 0..<m {
                let row = tile + j * stride
                dequantizeRow(K.self, w + j * rowBytes + blockOffset, row, count: cw)
                if cw < stride { (row + cw).update(repeating: 0, count: stride - cw) }
            }
            var p = 0
            while p < cw {
                panelProduct(x: dy, n: n, k: m, panel: tile + p, ldp: stride, y: dx + c0 + p, ldy: k,
                             cols: min(32, cw - p), accumulate: accumulate)
                p += 32
            }
        }
    }
}

/// `Σ_t x[t] · base[t·16 ..< t·16 + 16]` for `d` values of `t`: 16 dot products at once against a
/// block of 16 positions stored dimension-major, over four independent sums (one chain of FMAs
/// would wait on each one's latency).
@inline(__always)
private func columnDot(_ x: UnsafePointer<Float>, _ base: UnsafePointer<Float>, _ d: Int) -> F16x {
    var a0 = F16x(), a1 = F16x(), a2 = F16x(), a3 = F16x()
    var t = 0
    while t + 4 <= d {
        a0 = a0.addingProduct(F16x(repeating: x[t]), loadF(base + t * 16))
        a1 = a1.addingProduct(F16x(repeating: x[t + 1]), loadF(base + (t + 1) * 16))
        a2 = a2.addingProduct(F16x(repeating: x[t + 2]), loadF(base + (t + 2) * 16))
        a3 = a3.addingProduct(F16x(repeating: x[t + 3]), loadF(base + (t + 3) * 16))
        t += 4
    }
    while t < d {
        a0 = a0.addingProduct(F16x(repeating: x[t]), loadF(base + t * 16))
        t += 1
    }
    return (a0 + a1) + (a2 + a3)
}
