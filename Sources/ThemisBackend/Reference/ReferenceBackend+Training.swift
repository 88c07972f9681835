#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The backward ops in plain loops, summing in `Double`: the ground truth of the training
/// conformance cases (themselves checked against finite differences of the forward ops).
extension ReferenceBackend: TrainingBackend {
    public func matmulInputGradient(_ dy: Tensor, weight w: Tensor, into dx: Tensor, accumulate: Bool) {
        let n = dy.rowCount, m = w.rowCount, k = w.rowLength
        TrainingShapes.matmulInputGradient(dy, w, dx)
        let g = load(dy), ws = load(w)
        var out = accumulate ? load(dx).map(Double.init) : [Double](repeating: 0, count: n * k)
        for i in 0..<n {
            for j in 0..<m {
                let d = Double(g[i * m + j])
                for c in 0..<k { out[i * k + c] += d * Double(ws[j * k + c]) }
            }
        }
        store(out.map { Float($0) }, into: dx)
    }

    public func matmulWeightGradient(_ dy: Tensor, input x: Tensor, into dw: Tensor, accumulate: Bool) {
        let n = dy.rowCount, m = dy.rowLength, k = x.rowLength
        TrainingShapes.matmulWeightGradient(dy, x, dw)
        let g = load(dy), xs = load(x)
        var out = accumulate ? load(dw).map(Double.init) : [Double](repeating: 0, count: m * k)
        for i in 0..<n {
            for j in 0..<m {
                let d = Double(g[i * m + j])
                for c in 0..<k { out[j * k + c] += d * Double(xs[i * k + c]) }
            }
        }
        store(out.map { Float($0) }, into: dw)
    }

    public func rmsNormBackward(_ x: Tensor, weight: Tensor, epsilon: Float, gradient dy: Tensor, into dx: Tensor) {
        let width = x.rowLength
        TrainingShapes.elementwise("rmsNormBackward", x, [dy, dx], rowVector: weight)
        let xs = load(x), g = load(dy), w = load(weight)
        var out = [Float](repeating: 0, count: xs.count)
        for row in 0..<x.rowCount {
            let base = row * width
            var squares = 0.0, dot = 0.0
            for j in 0..<width {
                let v = Double(xs[base + j])
                squares += v * v
                dot += Double(g[base + j]) * Double(w[j]) * v
            }
            let r = 1 / (squares / Double(width) + Double(epsilon)).squareRoot()
            let correction = r * r * dot / Double(width)
            for j in 0..<width {
                out[base + j] = Float(r * (Double(g[base + j]) * Double(w[j]) - Double(xs[base + j]) * correction))
            }
        }
        store(out, into: dx)
    }

    public func ropeBackward(_ dy: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float,
                             layout: RoPELayout, scaling: RoPEScaling) {
        rotate(dy, headDim: headDim, ropeDim: ropeDim, startPosition: startPosition, freqBase: freqBase, layout: layout,
               scaling: scaling, inverse: true)
    }

    public func swigluBackward(gate: Tensor, up: Tensor, gradient dy: Tensor, gateGradient: Tensor, upGradient: Tensor) {
        TrainingShapes.elementwise("swigluBackward", gate, [up, dy, gateGradient, upGradient])
        let gs = load(gate), us = load(up), d = load(dy)
        var dg = [Float](repeating: 0, count: gs.count), du = dg
        for i in 0..<gs.count {
            let g = Double(gs[i]), s = 1 / (1 + exp(-g))
            dg[i] = Float(Double(d[i]) * Double(us[i]) * s * (1 + g * (1 - s)))
            du[i] = Float(Double(d[i]) * g * s)
        }
        store(dg, into: gateGradient)
        store(du, into: upGradient)
    }

    public func attentionBackward(q: Tensor, keys: Tensor, values: Tensor, gradient dOut: Tensor, headCount: Int,
                                  headCountKV: Int, startPosition: Int, scale: Float, mask: AttentionMask,
                                  queryGradient dq: Tensor, keyGradient dk: Tensor, valueGradient dv: Tensor) {
        let n = q.rowCount, width = q.rowLength, keyCount = startPosition + n
        let headDim = TrainingShapes.attentionBackward(q: q, keys: keys, values: values, dOut: dOut, headCount: headCount,
                                                       headCountKV: headCountKV, startPosition: startPosition, mask: mask,
                                                       dq: dq, dk: dk, dv: dv)
        let kvWidth = headCountKV * headDim
        let qs = load(q), ks = load(keys), vs = load(values), g = load(dOut)
        var gq = [Double](repeating: 0, count: n * width)
        var gk = [Double](repeating: 0, count: keyCount * kvWidth), gv = gk
        let group = headCount / headCountKV
        var p = [Double](repeating: 0, count: keyCount), dp = p
        for h in 0..<headCount {
            let qo = h * headDim, kvo = (h / group) * headDim
            for i in 0..<n {
                let position = startPosition + i, first = mask.firstVisible(from: position)
                var top = -Double.infinity
                for j in first...position {
                    var dot = 0.0
                    for t in 0..<headDim { dot += Double(qs[i * width + qo + t]) * Double(ks[j * kvWidth + kvo + t]) }
                    p[j] = Double(scale) * dot
                    top = max(top, p[j])
                }
                var total = 0.0
                for j in first...position {
                    p[j] = exp(p[j] - top)
                    total += p[j]
                }
                var d = 0.0
                for j in first...position {
                    p[j] /= total
                    var dot = 0.0
                    for t in 0..<headDim { dot += Double(g[i * width + qo + t]) * Double(vs[j * kvWidth + kvo + t]) }
                    dp[j] = dot
                    d += p[j] * dot
                }
                for j in first...position {
                    let ds = p[j] * (dp[j] - d) * Double(scale)
                    for t in 0..<headDim {
                        gq[i * width + qo + t] += ds * Double(ks[j * kvWidth + kvo + t])
                        gk[j * kvWidth + kvo + t] += ds * Double(qs[i * width + qo + t])
                        gv[j * kvWidth + kvo + t] += p[j] * Double(g[i * width + qo + t])
                    }
                }
            }
        }
        store(gq.map { Float($0) }, into: dq)
        store(gk.map { Float($0) }, into: dk)
        store(gv.map { Float($0) }, into: dv)
    }

    public func crossEntropy(_ logits: Tensor, targets: [Int32], weights: [Float], factor: Float, losses: Tensor,
                             gradient: Tensor) {
        let n = logits.rowCount, vocab = logits.rowLength
        TrainingShapes.crossEntropy(logits, targets: targets, weights: weights, losses: losses, gradient: gradient)
        let xs = load(logits)
        var loss = [Float](repeating: 0, count: n), grad = [Float](repeating: 0, count: n * vocab)
        for i in 0..<n where weights[i] != 0 {
            let row = xs[i * vocab..<(i + 1) * vocab]
            let top = Double(row.max()!)
            let total = row.reduce(0.0) { $0 + exp(Double($1) - top) }
            let t = Int(targets[i])
            loss[i] = Float(Double(weights[i]) * (top + log(total) - Double(xs[i * vocab + t])))
            let scale = Double(factor) * Double(weights[i])
            for c in 0..<vocab {
                let softmax = exp(Double(xs[i * vocab + c]) - top) / total
                grad[i * vocab + c] = Float(scale * (softmax - (c == t ? 1 : 0)))
            }
        }
        store(loss, into: losses)
        store(grad, into: gradient)
    }

    public func dropout(_ x: Tensor, probability: Float, seed: UInt64, into out: Tensor) {
        precondition(out.count == x.count && probability >= 0 && probability < 1, "dropout shapes")
        let keep = 1 / Double(1 - probability)
        let values = load(x).enumerated().map { e, v in
            dropoutDraw(seed: seed, index: e) < probability ? 0 : Float(Double(v) * keep)
        }
        store(values, into: out)
    }
}
