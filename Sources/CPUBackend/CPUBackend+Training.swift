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
        guard m > 0, k > 0 else { return }
        ensureScratch(16 * min(max(m, k), 16) + 64)
        let scratch = self.scratch
        if m <= 16 {
            // few rows (a LoRA A): per block of 16 columns, every row's sum in a register
            pool.run(tasks: (k + 15) / 16) { c, thread in
                let c0 = c * 16
                skinnySums(n: n, wide: xp + c0, wideStride: k, width: min(16, k - c0), narrow: gp, narrowStride: m,
                           narrowCount: m, acc: scratch[thread], out: wp + c0, outNarrow: k, outWide: 1, accumulate: accumulate)
            }
        } else if k <= 16 {
            // few columns (a LoRA B): per block of 16 rows, the rows' sums for each column
            pool.run(tasks: (m + 15) / 16) { b, thread in
                let j0 = b * 16
                skinnySums(n: n, wide: gp + j0, wideStride: m, width: min(16, m - j0), narrow: xp, narrowStride: k,
                           narrowCount: k, acc: scratch[thread], out: wp + j0 * k, outNarrow: 1, outWide: k,
                           accumulate: accumulate)
            }
        } else {
            parallelRows(m, width: n * k) { j in
                let row = wp + j * k
                if !accumulate { row.update(repeating: 0, count: k) }
                for i in 0..<n { axpy(gp[i * m + j], xp + i * k, row, k) }
            }
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
                                  headCountKV: Int, startPosition start: Int, scale: Float, mask: AttentionMask,
                                  queryGradient dq: Tensor, keyGradient dk: Tensor, valueGradient dv: Tensor) {
        // n query rows at positions start ..< start + n over nk keys
        let n = q.rowCount, width = q.rowLength, nk = start + n
        let d = TrainingShapes.attentionBackward(q: q, keys: keys, values: values, dOut: dOut, headCount: headCount,
                                                 headCountKV: headCountKV, startPosition: start, mask: mask,
                                                 dq: dq, dk: dk, dv: dv)
        let kvWidth = headCountKV * d
        let qp = pointer(q), kp = pointer(keys), vp = pointer(values), gp = pointer(dOut)
        let dqp = pointer(dq), dkp = pointer(dk), dvp = pointer(dv)
        guard n > 0 else {
            dkp.update(repeating: 0, count: nk * kvWidth)
            dvp.update(repeating: 0, count: nk * kvWidth)
            return
        }
        let group = headCount / headCountKV
        // One KV head at a time, its keys and values transposed into blocks of 16 positions
        // (`[block][dim][16]`), so scores and dOut·v come 16 positions per SIMD step; then each of
        // its query heads: pass 1 per query row computes the row's softmax P, dS = P (dP - D) ·
        // scale and dq, and stores P and dS by column block (`[block][row][16]`); pass 2 per block
        // of 16 keys and 16 dimensions streams down those columns: dk = Σ dS·q, dv = Σ P·dOut,
        // four keys at a time in registers.
        let blocks = (nk + 15) / 16, padded = blocks * 16
        let work = attentionWorkspace(2 * padded * d + 2 * blocks * n * 16)
        let kt = work, vt = kt + padded * d
        let probabilities = vt + padded * d, scoreGradients = probabilities + blocks * n * 16
        ensureScratch(4 * padded + 64)
        let scratch = self.scratch
        let window = mask.window
        let lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let tiles = d % 16 == 0 ? d / 16 : 0
        for g in 0..<headCountKV {
            let kvo = g * d
            pool.run(tasks: blocks) { blk, _ in
                transposeBlock(kp, stride: kvWidth, offset: kvo, headDim: d, length: nk, block: blk, into: kt + blk * d * 16)
                transposeBlock(vp, stride: kvWidth, offset: kvo, headDim: d, length: nk, block: blk, into: vt + blk * d * 16)
            }
            for h in g * group..<(g + 1) * group {
                let qo = h * d
                // two query rows per task: they share every block of keys and values they load
                pool.run(tasks: (n + 1) / 2) { task, thread in
                    // local rows r0, r1 at positions at0, at1
                    let r0 = 2 * task, r1 = min(2 * task + 1, n - 1), at0 = start + r0, at1 = start + r1
                    let f0 = mask.firstVisible(from: at0), f1 = mask.firstVisible(from: at1)
                    let b0 = f0 / 16, b1 = at1 / 16
                    let q0 = qp + r0 * width + qo, q1 = qp + r1 * width + qo
                    let g0 = gp + r0 * width + qo, g1 = gp + r1 * width + qo
                    let s0 = scratch[thread], s1 = s0 + padded, dp0 = s1 + padded, dp1 = dp0 + padded
                    // blocks every lane of which both rows see need no mask (Swift's masked
                    // selects run lane by lane); only the edge blocks get one
                    @inline(__always) func interior(_ blk: Int) -> Bool { blk * 16 >= f1 && blk * 16 + 15 <= at0 }
                    @inline(__always) func visible(_ blk: Int) -> (SIMDMask<SIMD16<Int32>>, SIMDMask<SIMD16<Int32>>) {
                        let j = lanes &+ Int32(blk * 16)
                        return ((j .>= Int32(f0)) .& (j .<= Int32(at0)), (j .>= Int32(f1)) .& (j .<= Int32(at1)))
                    }
                    // reductions across lanes are sequential (ordered float adds): vectors carry
                    // the maxima and sums over blocks, and each row reduces once
                    var top0 = F16x(repeating: -.infinity), top1 = F16x(repeating: -.infinity)
                    for blk in b0...b1 {
                        let (x, y) = blockDot2(q0, q1, kt + blk * 16 * d, d)
                        var a = x * scale, c = y * scale
                        if !interior(blk) {
                            let (v0, v1) = visible(blk)
                            a = a.replacing(with: -.infinity, where: .!v0)
                            c = c.replacing(with: -.infinity, where: .!v1)
                        }
                        storeF(a, s0 + blk * 16)
                        storeF(c, s1 + blk * 16)
                        top0.replace(with: a, where: a .> top0)
                        top1.replace(with: c, where: c .> top1)
                    }
                    var total0 = F16x(), total1 = F16x()
                    let t0v = F16x(repeating: top0.max()), t1v = F16x(repeating: top1.max())
                    for blk in b0...b1 {
                        var e0 = vexp(loadF(s0 + blk * 16) - t0v), e1 = vexp(loadF(s1 + blk * 16) - t1v)
                        if !interior(blk) {
                            let (v0, v1) = visible(blk)
                            e0 = e0.replacing(with: 0, where: .!v0)
                            e1 = e1.replacing(with: 0, where: .!v1)
                        }
                        storeF(e0, s0 + blk * 16)
                        storeF(e1, s1 + blk * 16)
                        total0 += e0
                        total1 += e1
                    }
                    let inv0 = F16x(repeating: 1 / total0.sum()), inv1 = F16x(repeating: 1 / total1.sum())
                    var dd0 = F16x(), dd1 = F16x()
                    for blk in b0...b1 {
                        let (x, y) = blockDot2(g0, g1, vt + blk * 16 * d, d)
                        let p0 = loadF(s0 + blk * 16) * inv0, p1 = loadF(s1 + blk * 16) * inv1
                        storeF(p0, s0 + blk * 16)
                        storeF(p1, s1 + blk * 16)
                        storeF(x, dp0 + blk * 16)
                        storeF(y, dp1 + blk * 16)
                        dd0 = dd0.addingProduct(p0, x)
                        dd1 = dd1.addingProduct(p1, y)
                    }
                    let dd0v = F16x(repeating: dd0.sum()), dd1v = F16x(repeating: dd1.sum()), sv = F16x(repeating: scale)
                    let out0 = dqp + r0 * width + qo, out1 = dqp + r1 * width + qo
                    var a0 = F16x(), a1 = F16x(), a2 = F16x(), a3 = F16x()
                    var c0 = F16x(), c1 = F16x(), c2 = F16x(), c3 = F16x()
                    if d != 64 {
                        out0.update(repeating: 0, count: d)
                        out1.update(repeating: 0, count: d)
                    }
                    for blk in b0...b1 {
                        let p0 = loadF(s0 + blk * 16), p1 = loadF(s1 + blk * 16)
                        let ds0 = p0 * (loadF(dp0 + blk * 16) - dd0v) * sv, ds1 = p1 * (loadF(dp1 + blk * 16) - dd1v) * sv
                        // row r1's stores come second: with one row (r1 == r0) they write the same
                        storeF(p0, probabilities + (blk * n + r0) * 16)
                        storeF(ds0, scoreGradients + (blk * n + r0) * 16)
                        storeF(p1, probabilities + (blk * n + r1) * 16)
                        storeF(ds1, scoreGradients + (blk * n + r1) * 16)
                        let lo = blk == b0 ? f0 - blk * 16 : 0, hi = blk == b1 ? at1 - blk * 16 + 1 : 16
                        for lane in lo..<hi {
                            let k = kp + (blk * 16 + lane) * kvWidth + kvo
                            if d == 64 {
                                let x = F16x(repeating: ds0[lane]), y = F16x(repeating: ds1[lane])
                                let k0 = loadF(k), k1 = loadF(k + 16), k2 = loadF(k + 32), k3 = loadF(k + 48)
                                a0 = a0.addingProduct(x, k0); a1 = a1.addingProduct(x, k1)
                                a2 = a2.addingProduct(x, k2); a3 = a3.addingProduct(x, k3)
                                c0 = c0.addingProduct(y, k0); c1 = c1.addingProduct(y, k1)
                                c2 = c2.addingProduct(y, k2); c3 = c3.addingProduct(y, k3)
                            } else {
                                axpy(ds0[lane], k, out0, d)
                                if r1 != r0 { axpy(ds1[lane], k, out1, d) }
                            }
                        }
                    }
                    if d == 64 {
                        storeF(a0, out0); storeF(a1, out0 + 16); storeF(a2, out0 + 32); storeF(a3, out0 + 48)
                        storeF(c0, out1); storeF(c1, out1 + 16); storeF(c2, out1 + 32); storeF(c3, out1 + 48)
                    }
                }
                let firstHead = h == g * group
                if tiles > 0 {
                    pool.run(tasks: blocks * tiles) { task, _ in
                        let jb = task / tiles, t0 = (task % tiles) * 16
                        let j0 = jb * 16
                        // the local rows that see some key of the block (none when a window
                        // ends before the first row)
                        let first = max(j0, start) - start
                        let last = (window > 0 ? min(nk - 1, j0 + 15 + window - 1) : nk - 1) - start
                        for (columns, rows, out) in [(scoreGradients, qp, dkp), (probabilities, gp, dvp)] {
                            let column = columns + jb * n * 16
                            for kg in stride(from: 0, to: min(16, nk - j0), by: 4) {
                                var s0 = F16x(), s1 = F16x(), s2 = F16x(), s3 = F16x()
                                for i in stride(from: first, through: last, by: 1) {
                                    let x = loadF(rows + i * width + qo + t0), c = column + i * 16 + kg
                                    s0 = s0.addingProduct(F16x(repeating: c[0]), x)
                                    s1 = s1.addingProduct(F16x(repeating: c[1]), x)
                                    s2 = s2.addingProduct(F16x(repeating: c[2]), x)
                                    s3 = s3.addingProduct(F16x(repeating: c[3]), x)
                                }
                                for (lane, sum) in [s0, s1, s2, s3].enumerated() where j0 + kg + lane < nk {
                                    let o = out + (j0 + kg + lane) * kvWidth + kvo + t0
                                    storeF(firstHead ? sum : loadF(o) + sum, o)
                                }
                            }
                        }
                    }
                } else {
                    pool.run(tasks: nk) { j, _ in
                        let dkj = dkp + j * kvWidth + kvo, dvj = dvp + j * kvWidth + kvo
                        if firstHead {
                            dkj.update(repeating: 0, count: d)
                            dvj.update(repeating: 0, count: d)
                        }
                        let first = max(j, start) - start
                        let last = (window > 0 ? min(nk - 1, j + window - 1) : nk - 1) - start
                        let c = (j / 16) * n * 16 + j % 16
                        for i in stride(from: first, through: last, by: 1) {
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

/// The weight gradient's skinny case, one block: `Σ_i narrow[i, a] · wide[i, 0 ..< width]` for
/// every `a < narrowCount` (at most 16), each sum a 16-lane vector in `acc`, added to (or, without
/// `accumulate`, written over) `out[a · outNarrow + w · outWide]`. `wide` and `narrow` are rows
/// `wideStride` and `narrowStride` floats apart; `width` is at most 16.
@inline(__always)
private func skinnySums(n: Int, wide: UnsafePointer<Float>, wideStride: Int, width: Int, narrow: UnsafePointer<Float>,
                        narrowStride: Int, narrowCount: Int, acc: UnsafeMutablePointer<Float>,
                        out: UnsafeMutablePointer<Float>, outNarrow: Int, outWide: Int, accumulate: Bool) {
    acc.update(repeating: 0, count: 16 * narrowCount)
    var padded = F16x()
    for i in 0..<n {
        let v: F16x
        if width == 16 {
            v = loadF(wide + i * wideStride)
        } else {
            for t in 0..<width { padded[t] = wide[i * wideStride + t] }
            v = padded
        }
        for a in 0..<narrowCount {
            storeF(loadF(acc + a * 16).addingProduct(F16x(repeating: narrow[i * narrowStride + a]), v), acc + a * 16)
        }
    }
    for a in 0..<narrowCount {
        for w in 0..<width {
            let o = out + a * outNarrow + w * outWide
            o.pointee = (accumulate ? o.pointee : 0) + acc[a * 16 + w]
        }
    }
}
