/// A backend that also runs the backward ops LoRA fine-tuning needs: gradients flow through the
/// frozen weights to the activations, and into f32 adapter matrices.
///
/// The contract of `Backend` holds (recorded ops, errors at the next read). Shapes follow the
/// forward ops they differentiate; a gradient tensor has the shape of its value. Unless an op
/// says so, outputs must not alias inputs.
public protocol TrainingBackend: Backend {
    /// The input gradient of `y = x · wᵀ`: `dx = dy · w` (`dx += ...` when `accumulate`), with
    /// `dy` `[n, m]`, `w` `[m, k]` in any type `supports` accepts (dequantised a block at a time,
    /// never as a whole), `dx` `[n, k]`.
    func matmulInputGradient(_ dy: Tensor, weight w: Tensor, into dx: Tensor, accumulate: Bool)

    /// The weight gradient of `y = x · wᵀ` for an f32 `w` `[m, k]`: `dw = dyᵀ · x` (`dw += ...`
    /// when `accumulate`), with `dy` `[n, m]`, `x` `[n, k]`.
    func matmulWeightGradient(_ dy: Tensor, input x: Tensor, into dw: Tensor, accumulate: Bool)

    /// The input gradient of `rmsNorm(x, weight, epsilon)` per row:
    /// `dx = r (g - x r² mean(g x))` with `g = dy · weight`, `r = 1 / sqrt(mean(x²) + epsilon)`.
    /// `dx` may be `dy`.
    func rmsNormBackward(_ x: Tensor, weight: Tensor, epsilon: Float, gradient dy: Tensor, into dx: Tensor)

    /// The input gradient of `rope` with the same arguments, in place on `dy`: each pair turned
    /// back by its angle (and multiplied by `scaling.magnitude`).
    func ropeBackward(_ dy: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float,
                      layout: RoPELayout, scaling: RoPEScaling)

    /// The gradients of `swiglu(gate, up)`: `dGate = dy · up · s (1 + gate (1 - s))` with
    /// `s = sigmoid(gate)`, `dUp = dy · gate · s`. `gateGradient` may be `gate` and `upGradient`
    /// may be `up` (each element is read before it is written).
    func swigluBackward(gate: Tensor, up: Tensor, gradient dy: Tensor, gateGradient: Tensor, upGradient: Tensor)

    /// The gradients of causal grouped-query attention, `attention`'s meaning of every argument:
    /// `q` `[n, headCount * headDim]` holds positions `startPosition ..< startPosition + n`, and
    /// `keys`, `values` exactly the `startPosition + n` rows they attend over (a shared prefix's
    /// rows, then the sequence's own). Soft-capping is not supported here (`mask.softcap` must
    /// be 0). Writes `dq` `[n, headCount * headDim]`, and `dk`, `dv` `[startPosition + n, ...]`
    /// (the sum over the query rows and the query heads sharing each KV head; 0 where no row
    /// sees a position).
    func attentionBackward(q: Tensor, keys: Tensor, values: Tensor, gradient dOut: Tensor, headCount: Int,
                           headCountKV: Int, startPosition: Int, scale: Float, mask: AttentionMask,
                           queryGradient dq: Tensor, keyGradient dk: Tensor, valueGradient dv: Tensor)

    /// Weighted cross-entropy of each row of `logits` `[n, vocab]` against `targets[i]`:
    /// `losses[i] = weights[i] (logsumexp(row) - row[target])` into `losses` `[n, 1]`, and the
    /// gradient `factor · weights[i] (softmax(row) - onehot(target))` into `gradient` (which may be
    /// `logits`). Rows of weight 0 give 0 loss and 0 gradient.
    func crossEntropy(_ logits: Tensor, targets: [Int32], weights: [Float], factor: Float, losses: Tensor,
                      gradient: Tensor)

    /// Inverted dropout: `out = x · keep / (1 - probability)` where `keep` is 1 for element `e` (its
    /// index in the tensor, row-major) unless `dropoutDraw(seed, e) < probability`. The same seed
    /// gives the same mask on every backend, so running it on a gradient is its backward.
    /// `out` may be `x`.
    func dropout(_ x: Tensor, probability: Float, seed: UInt64, into out: Tensor)
}

/// The uniform number in [0, 1) that decides whether dropout keeps element `index`: a 32-bit
/// integer hash (lowbias32) of the index mixed with both halves of the seed, so a GPU computes it
/// without 64-bit integers.
@inlinable public func dropoutDraw(seed: UInt64, index: Int) -> Float {
    @inline(__always) func mix(_ v: UInt32) -> UInt32 {
        var x = v
        x ^= x >> 16
        x &*= 0x7FEB_352D
        x ^= x >> 15
        x &*= 0x846C_A68B
        x ^= x >> 16
        return x
    }
    let h = mix(mix(UInt32(truncatingIfNeeded: index) ^ UInt32(truncatingIfNeeded: seed)) ^ UInt32(truncatingIfNeeded: seed >> 32))
    return Float(h >> 8) * (1 / 16_777_216)
}

/// The shape contracts of the backward ops, checked the same way by every implementation.
public enum TrainingShapes {
    public static func matmulInputGradient(_ dy: Tensor, _ w: Tensor, _ dx: Tensor) {
        precondition(dy.rowLength == w.rowCount && dx.rowCount == dy.rowCount && dx.rowLength == w.rowLength,
                     "matmulInputGradient: dy \(dy.shape) · w \(w.shape) into dx \(dx.shape)")
    }

    public static func matmulWeightGradient(_ dy: Tensor, _ x: Tensor, _ dw: Tensor) {
        precondition(x.rowCount == dy.rowCount && dw.rowCount == dy.rowLength && dw.rowLength == x.rowLength && dw.type == .f32,
                     "matmulWeightGradient: dy \(dy.shape)ᵀ · x \(x.shape) into dw \(dw.shape)")
    }

    /// Same element counts (and `x`'s row length for `rowVector`, a weight of one row).
    public static func elementwise(_ op: String, _ x: Tensor, _ others: [Tensor], rowVector: Tensor? = nil) {
        precondition(others.allSatisfy { $0.count == x.count } && (rowVector.map { $0.count == x.rowLength } ?? true),
                     "\(op): shapes \(([x] + others).map(\.shape))")
    }

    /// Checks `attentionBackward`'s arguments; returns the head size.
    public static func attentionBackward(q: Tensor, keys: Tensor, values: Tensor, dOut: Tensor, headCount: Int,
                                         headCountKV: Int, startPosition: Int, mask: AttentionMask, dq: Tensor, dk: Tensor,
                                         dv: Tensor) -> Int {
        let n = q.rowCount, width = q.rowLength, keyCount = startPosition + n
        precondition(startPosition >= 0, "attentionBackward: start position \(startPosition)")
        precondition(headCount > 0 && headCountKV > 0 && headCount % headCountKV == 0 && width % headCount == 0,
                     "attentionBackward: \(headCount) heads over \(headCountKV) KV heads, rows of \(width)")
        let d = width / headCount, kvWidth = headCountKV * d
        precondition(keys.rowCount == keyCount && values.rowCount == keyCount && keys.rowLength == kvWidth
                     && values.rowLength == kvWidth && dOut.rowCount == n && dOut.rowLength == width && dq.rowCount == n
                     && dq.rowLength == width && dk.rowCount == keyCount && dk.rowLength == kvWidth
                     && dv.rowCount == keyCount && dv.rowLength == kvWidth,
                     "attentionBackward shapes")
        precondition(mask.softcap == 0, "attentionBackward: soft-capped scores are not supported")
        return d
    }

    public static func crossEntropy(_ logits: Tensor, targets: [Int32], weights: [Float], losses: Tensor, gradient: Tensor) {
        let n = logits.rowCount, vocab = logits.rowLength
        precondition(targets.count == n && weights.count == n && losses.count == n && gradient.rowCount == n
                     && gradient.rowLength == vocab, "crossEntropy shapes")
        precondition(targets.allSatisfy { $0 >= 0 && Int($0) < vocab }, "crossEntropy: a target outside the vocabulary")
    }
}
