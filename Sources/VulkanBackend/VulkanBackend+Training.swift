import ThemisBackend

/// The backward ops in GLSL (Shaders/*_back*.comp, matmul_grad.comp, weight_grad.comp,
/// cross_entropy.comp, dropout.comp; RoPE's transpose is rope.comp with the angles negated),
/// recorded into the command stream like the forward ops.
extension VulkanBackend: TrainingBackend {
    public func matmulInputGradient(_ dy: Tensor, weight w: Tensor, into dx: Tensor, accumulate: Bool) {
        TrainingShapes.matmulInputGradient(dy, w, dx)
        let n = dy.rowCount, m = w.rowCount, k = w.rowLength
        guard n > 0, m > 0, k > 0 else { return }
        let ws = storage(w), gs = storage(dy), xs = storage(dx)
        perform("matmul input gradient") {
            let kernel = try pipelines.kernel(
                "matmul_grad_\(typeName(w.type))", bindings: 3,
                constants: [(matmulTile[0] / matmulTile[2]) * (matmulTile[1] / matmulTile[3])] + matmulTile)
            let groups = ((k + Int(matmulTile[0]) - 1) / Int(matmulTile[0]), (n + Int(matmulTile[1]) - 1) / Int(matmulTile[1]), 1)
            var first = true
            // a weight split over several buffers: each piece adds its rows' share
            for piece in ws.pieces {
                let lo = max(piece.rows.lowerBound, w.rowOffset), hi = min(piece.rows.upperBound, w.rowOffset + m)
                guard lo < hi else { continue }
                let push: [UInt32] = [
                    UInt32(n), UInt32(k), UInt32(hi - lo), UInt32(w.rowBytes), offset(dy), offset(dx), UInt32(m),
                    UInt32(lo - w.rowOffset), accumulate || !first ? 1 : 0, UInt32((lo - piece.rows.lowerBound) * w.rowBytes),
                ]
                try stream.dispatch(
                    kernel, bindings: [piece.range, gs.whole, xs.whole], reads: [piece.range, gs.whole, xs.whole],
                    writes: [xs.whole], push: push, groups: groups, retain: [ws, gs, xs])
                first = false
            }
        }
    }

    public func matmulWeightGradient(_ dy: Tensor, input x: Tensor, into dw: Tensor, accumulate: Bool) {
        TrainingShapes.matmulWeightGradient(dy, x, dw)
        guard dw.count > 0 else { return }
        elementwise("weight_grad", [dy, x], dw, push: [
            UInt32(dy.rowCount), UInt32(dy.rowLength), UInt32(x.rowLength), offset(dy), offset(x), offset(dw),
            accumulate ? 1 : 0,
        ])
    }

    public func rmsNormBackward(_ x: Tensor, weight: Tensor, epsilon: Float, gradient dy: Tensor, into dx: Tensor) {
        TrainingShapes.elementwise("rmsNormBackward", x, [dy, dx], rowVector: weight)
        guard x.count > 0 else { return }
        rowwise("rms_norm_back", [x, weight, dy], dx,
                push: [UInt32(x.rowLength), offset(x), offset(weight), offset(dy), offset(dx), epsilon.bitPattern],
                rowOffsets: [1, 3, 4])
    }

    public func ropeBackward(_ dy: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float,
                             layout: RoPELayout, scaling: RoPEScaling) {
        rotate(dy, headDim: headDim, ropeDim: ropeDim, startPosition: startPosition, freqBase: freqBase, layout: layout,
               scaling: scaling, inverse: true)
    }

    public func swigluBackward(gate: Tensor, up: Tensor, gradient dy: Tensor, gateGradient: Tensor, upGradient: Tensor) {
        TrainingShapes.elementwise("swigluBackward", gate, [up, dy, gateGradient, upGradient])
        guard gate.count > 0 else { return }
        let ins = [gate, up, dy].map(storage), outs = [gateGradient, upGradient].map(storage)
        perform("swiglu backward") {
            let kernel = try pipelines.kernel("glu_back", bindings: 5, constants: [UInt32(reduceWorkgroup)])
            let g = grid(gate.count, reduceWorkgroup)
            let push: [UInt32] = [UInt32(gate.count), offset(gate), offset(up), offset(dy), offset(gateGradient),
                                  offset(upGradient), g.2]
            try stream.dispatch(
                kernel, bindings: ins.map(\.whole) + outs.map(\.whole), reads: ins.map(\.whole), writes: outs.map(\.whole),
                push: push, groups: (g.0, g.1, 1), retain: ins + outs)
        }
    }

    public func attentionBackward(q: Tensor, keys: Tensor, values: Tensor, gradient dOut: Tensor, headCount: Int,
                                  headCountKV: Int, startPosition start: Int, scale: Float, mask: AttentionMask,
                                  queryGradient dq: Tensor, keyGradient dk: Tensor, valueGradient dv: Tensor) {
        let d = TrainingShapes.attentionBackward(q: q, keys: keys, values: values, dOut: dOut, headCount: headCount,
                                                 headCountKV: headCountKV, startPosition: start, mask: mask,
                                                 dq: dq, dk: dk, dv: dv)
        precondition(d <= 256, "attentionBackward: heads of \(d) (the kernel takes up to 256)")
        let n = q.rowCount, keyCount = start + n
        guard n > 0 else {
            write([Float](repeating: 0, count: dk.count), to: dk)
            write([Float](repeating: 0, count: dv.count), to: dv)
            return
        }
        precondition(keyCount <= vk.maxGroupCount.y, "attentionBackward: \(keyCount) positions in one dispatch")
        // P and dS of every (head, row, position): headCount · n · (start + n) floats each, kept
        // between calls
        let needed = headCount * n * keyCount
        if attentionScratch.map({ $0.p.count < needed }) ?? true {
            attentionScratch = nil
            perform("allocation") { attentionScratch = (try makeTensor(shape: [1, needed]), try makeTensor(shape: [1, needed])) }
        }
        guard let (pt, dst) = attentionScratch else { return }  // the failure is thrown at the next read
        let qs = storage(q), ks = storage(keys), vs = storage(values), gs = storage(dOut)
        let ps = storage(pt), dss = storage(dst), dqs = storage(dq), dks = storage(dk), dvs = storage(dv)
        let window = UInt32(max(0, mask.window))
        perform("attention backward") {
            let rows = try pipelines.kernel("attention_back_rows", bindings: 7, constants: [64])
            try stream.dispatch(
                rows, bindings: [qs.whole, ks.whole, vs.whole, gs.whole, ps.whole, dss.whole, dqs.whole],
                reads: [qs.whole, ks.whole, vs.whole, gs.whole], writes: [ps.whole, dss.whole, dqs.whole],
                push: [UInt32(d), UInt32(headCount), UInt32(headCountKV), UInt32(n), offset(q), offset(keys), offset(values),
                       offset(dOut), 0, offset(dq), scale.bitPattern, window, UInt32(start)],
                groups: (headCount, n, 1), retain: [qs, ks, vs, gs, ps, dss, dqs])
            let columns = try pipelines.kernel("attention_back_cols", bindings: 6, constants: [64])
            try stream.dispatch(
                columns, bindings: [qs.whole, gs.whole, ps.whole, dss.whole, dks.whole, dvs.whole],
                reads: [qs.whole, gs.whole, ps.whole, dss.whole], writes: [dks.whole, dvs.whole],
                push: [UInt32(d), UInt32(headCount), UInt32(headCountKV), UInt32(n), offset(q), offset(dOut), 0,
                       offset(dk), offset(dv), window, UInt32(start)],
                groups: (headCountKV, keyCount, 1), retain: [qs, gs, ps, dss, dks, dvs])
        }
    }

    public func crossEntropy(_ logits: Tensor, targets: [Int32], weights: [Float], factor: Float, losses: Tensor,
                             gradient: Tensor) {
        TrainingShapes.crossEntropy(logits, targets: targets, weights: weights, losses: losses, gradient: gradient)
        let n = logits.rowCount, vocab = logits.rowLength
        guard n > 0 else { return }
        let xs = storage(logits), ls = storage(losses), gs = storage(gradient)
        perform("cross-entropy") {
            var words: [UInt32] = []
            words.reserveCapacity(2 * n)
            for (t, w) in zip(targets, weights) { words += [UInt32(t), w.bitPattern] }
            let at = try words.withUnsafeBytes { try stream.stage($0) }
            let kernel = try pipelines.kernel("cross_entropy", bindings: 4, constants: [UInt32(reduceWorkgroup)])
            for start in stride(from: 0, to: n, by: vk.maxGroupCount.x) {
                let rows = min(n - start, vk.maxGroupCount.x)
                let push: [UInt32] = [
                    UInt32(vocab), offset(logits) + UInt32(start * vocab), UInt32(at / 4 + 2 * start),
                    offset(losses) + UInt32(start), offset(gradient) + UInt32(start * vocab), factor.bitPattern,
                ]
                try stream.dispatch(
                    kernel, bindings: [xs.whole, stream.arenaRange, ls.whole, gs.whole], reads: [xs.whole],
                    writes: [ls.whole, gs.whole], push: push, groups: (rows, 1, 1), retain: [xs, ls, gs])
            }
        }
    }

    public func dropout(_ x: Tensor, probability: Float, seed: UInt64, into out: Tensor) {
        precondition(out.count == x.count && probability >= 0 && probability < 1, "dropout shapes")
        guard x.count > 0 else { return }
        elementwise("dropout", [x], out, push: [
            UInt32(x.count), offset(x), offset(out), UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32),
            probability.bitPattern, (1 / (1 - probability)).bitPattern,
        ])
    }
}
