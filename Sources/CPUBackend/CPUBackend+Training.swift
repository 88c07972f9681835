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
        precondition(dy.rowLength == m && dx.rowCount == n && dx.rowLength == k,
                     "matmulInputGradient: dy \(dy.shape) · w \(w.shape) into dx \(dx.shape)")
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
        precondition(x.rowCount == n && dw.rowCount == m && dw.rowLength == k && dw.type == .f32,
                     "matmulWeightGradient: dy \(dy.shape)ᵀ · x \(x.shape) into dw \(dw.shape)")
        let gp = pointer(dy), xp = pointer(x), wp = pointer(dw)
        parallelRows(m, width: n * k) { j in
            let row = wp + j * k
            if !accumulate { row.update(repeating: 0, count: k) }
            for i in 0..<n { axpy(gp[i * m + j], xp + i * k, row, k) }
        }
    }

    public func rmsNormBackward(_ x: Tensor, weight: Tensor, epsilon: Float, gradient dy: Tensor, into dx: Tensor) {
        let width = x.rowLength
        precondition(dy.count == x.count && dx.count == x.count && weight.count == width, "rmsNormBackward shapes")
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
        precondition(up.count == gate.count && dy.count == gate.count && gateGradient.count == gate.count
                     && upGradient.count == gate.count, "swigluBackward shapes")
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
        precondition(headCount > 0 && headCountKV > 0 && headCount % headCountKV == 0 && width % headCount == 0,
                     "attentionBackward: \(headCount) heads over \(headCountKV) KV heads, rows of \(width)")
        let d = width / headCount, kvWidth = headCountKV * d
        precondition(keys.rowCount == n && values.rowCount == n && keys.rowLength == kvWidth && values.rowLength == kvWidth
                     && dOut.count == q.count && dq.count == q.count && dk.count == keys.count && dv.count == keys.count,
                     "attentionBackward shapes")
        precondition(mask.softcap == 0, "attentionBackward: soft-capped scores are not supported")
        guard n > 0 else { return }
        let qp = pointer(q), kp = pointer(keys), vp = pointer(values), gp = pointer(dOut)
        let dqp = pointer(dq), dkp = pointer(dk), dvp = pointer(dv)
        let group = headCount / headCountKV
        // pass 1, per (head, query row): the row's softmax p, dp = dOut·v, D = Σ p·dp, and
        // dq = scale Σ p (dp - D) k; the log-sum-exp and D are kept for pass 2
        ensureScratch(2 * n + 64)
        let stats = UnsafeMutablePointer<Float>.allocate(capacity: 2 * headCount * n)
        defer { stats.deallocate() }
        let scratch = self.scratch
        pool.run(tasks: headCount * n) { t, thread in
            let h = t / n, i = t % n
            let qo = h * d, kvo = (h / group) * d
            let p = scratch[thread], dp = p + n
            let first = mask.firstVisible(from: i)
            let qi = qp + i * width + qo, gi = gp + i * width + qo
            var top = -Float.infinity
            for j in first...i {
                p[j] = scale * dot(qi, kp + j * kvWidth + kvo, d)
                top = max(top, p[j])
            }
            var total: Float = 0
            for j in first...i {
                p[j] = expf(p[j] - top)
                total += p[j]
            }
            let inv = 1 / total
            var dd: Float = 0
            for j in first...i {
                p[j] *= inv
                dp[j] = dot(gi, vp + j * kvWidth + kvo, d)
                dd += p[j] * dp[j]
            }
            stats[t * 2] = top + logf(total)
            stats[t * 2 + 1] = dd
            let out = dqp + i * width + qo
            out.update(repeating: 0, count: d)
            for j in first...i { axpy(p[j] * (dp[j] - dd) * scale, kp + j * kvWidth + kvo, out, d) }
        }
        // pass 2, per (KV head, key row): dk and dv from every query row that sees the key
        pool.run(tasks: headCountKV * n) { t, _ in
            let g = t / n, j = t % n
            let kvo = g * d
            let kj = kp + j * kvWidth + kvo, vj = vp + j * kvWidth + kvo
            let dkj = dkp + j * kvWidth + kvo, dvj = dvp + j * kvWidth + kvo
            dkj.update(repeating: 0, count: d)
            dvj.update(repeating: 0, count: d)
            for h in g * group..<(g + 1) * group {
                let qo = h * d
                var i = j
                while i < n && mask.firstVisible(from: i) <= j {
                    let qi = qp + i * width + qo, gi = gp + i * width + qo
                    let st = (h * n + i) * 2
                    let p = expf(scale * dot(qi, kj, d) - stats[st])
                    let ds = p * (dot(gi, vj, d) - stats[st + 1]) * scale
                    axpy(ds, qi, dkj, d)
                    axpy(p, gi, dvj, d)
                    i += 1
                }
            }
        }
    }

    public func crossEntropy(_ logits: Tensor, targets: [Int32], weights: [Float], factor: Float, losses: Tensor,
                             gradient: Tensor) {
        let n = logits.rowCount, vocab = logits.rowLength
        precondition(targets.count == n && weights.count == n && losses.count == n && gradient.rowCount == n
                     && gradient.rowLength == vocab, "crossEntropy shapes")
        precondition(targets.allSatisfy { $0 >= 0 && Int($0) < vocab }, "crossEntropy: a target outside the vocabulary")
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
