#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// The ops of `Backend`, written as the formulas in its doc comments. Inputs are read (and
// dequantised) into fresh arrays before any output is written, so every op may work in place.
extension ReferenceBackend {
    /// `out[i] = dequantise(table[ids[i]])`.
    public func getRows(_ table: Tensor, ids: [Int32], into out: Tensor) {
        let width = table.rowLength
        precondition(
            out.rowCount == ids.count && out.rowLength == width,
            "getRows: \(ids.count) rows of \(table.shape) into \(out.shape)")
        var result = [Float](repeating: 0, count: ids.count * width)
        result.withUnsafeMutableBufferPointer { result in
            for (i, id) in ids.enumerated() {
                precondition(id >= 0 && Int(id) < table.rowCount, "getRows: id \(id) out of \(table.shape)")
                loadRow(table, Int(id), into: result.baseAddress! + i * width)
            }
        }
        store(result, into: out)
    }

    /// `y[i, j] = Σ_t x[i, t] · w[j, t]`, accumulated in `Double`; `w` is dequantised row by row.
    public func matmul(_ x: Tensor, weight w: Tensor, into y: Tensor) {
        let n = x.rowCount
        let k = x.rowLength
        let m = w.rowCount
        precondition(
            w.rowLength == k && y.rowCount == n && y.rowLength == m,
            "matmul: x \(x.shape) · w \(w.shape)ᵀ into y \(y.shape)")
        let xs = load(x)
        var result = [Float](repeating: 0, count: n * m)
        var weightRow = [Float](repeating: 0, count: k)
        xs.withUnsafeBufferPointer { xs in
            weightRow.withUnsafeMutableBufferPointer { weightRow in
                result.withUnsafeMutableBufferPointer { result in
                    for j in 0..<m {
                        loadRow(w, j, into: weightRow.baseAddress!)
                        for i in 0..<n {
                            var sum = 0.0
                            for t in 0..<k {
                                sum += Double(xs[i * k + t]) * Double(weightRow[t])
                            }
                            result[i * m + j] = Float(sum)
                        }
                    }
                }
            }
        }
        store(result, into: y)
    }

    /// `out = a + b`, with `b` either the shape of `a` or one row added to every row of `a`.
    public func add(_ a: Tensor, _ b: Tensor, into out: Tensor) {
        let width = a.rowLength
        let broadcast = b.rowCount == 1 && a.rowCount != 1
        precondition(
            b.rowLength == width && (broadcast || b.rowCount == a.rowCount),
            "add: \(a.shape) + \(b.shape)")
        precondition(out.rowCount == a.rowCount && out.rowLength == width, "add: \(a.shape) into \(out.shape)")
        var result = load(a)
        let bs = load(b)
        for i in 0..<result.count {
            result[i] += bs[broadcast ? i % width : i]
        }
        store(result, into: out)
    }

    /// Per row: `out = x / sqrt(mean(x²) + epsilon) * weight`, the mean in `Double`.
    public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float, into out: Tensor) {
        let width = x.rowLength
        precondition(weight.count == width, "rmsNorm: weight \(weight.shape) for rows of \(width)")
        precondition(out.rowCount == x.rowCount && out.rowLength == width, "rmsNorm: \(x.shape) into \(out.shape)")
        var values = load(x)
        let w = load(weight)
        for row in 0..<x.rowCount {
            let base = row * width
            var sumOfSquares = 0.0
            for j in 0..<width {
                sumOfSquares += Double(values[base + j]) * Double(values[base + j])
            }
            let inverseRMS = 1 / (sumOfSquares / Double(width) + Double(epsilon)).squareRoot()
            for j in 0..<width {
                values[base + j] = Float(Double(values[base + j]) * inverseRMS * Double(w[j]))
            }
        }
        store(values, into: out)
    }

    /// Rotates pairs of the first `ropeDim` elements of each head by `position * frequencies[j]`
    /// (plainly `position * freqBase^(-2j/ropeDim)`) and scales them by `scaling.magnitude`.
    ///
    /// Pair `j` (0..<ropeDim/2) is elements `(2j, 2j+1)` for `.adjacentPairs` and `(j, j + ropeDim/2)`
    /// for `.halfSplit`; `(a, b)` becomes `m (a cos θ - b sin θ, a sin θ + b cos θ)`. Angles and the
    /// rotation are computed in `Double`.
    public func rope(_ x: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float, layout: RoPELayout,
                     scaling: RoPEScaling) {
        rotate(x, headDim: headDim, ropeDim: ropeDim, startPosition: startPosition, freqBase: freqBase, layout: layout,
               scaling: scaling, inverse: false)
    }

    /// RoPE's rotation of every pair by its angle, or by the opposite angle when `inverse` (the
    /// transpose: RoPE's backward), times the magnitude either way.
    func rotate(_ x: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float, layout: RoPELayout,
                scaling: RoPEScaling, inverse: Bool) {
        let width = x.rowLength
        precondition(headDim > 0 && width % headDim == 0, "rope: rows of \(width) are not whole heads of \(headDim)")
        precondition(
            ropeDim >= 0 && ropeDim % 2 == 0 && ropeDim <= headDim, "rope: ropeDim \(ropeDim) for heads of \(headDim)")
        precondition(scaling.frequencyFactors.map { $0.count == ropeDim / 2 } ?? true,
                     "rope: \(scaling.frequencyFactors?.count ?? 0) frequency factors for \(ropeDim / 2) pairs")
        var values = load(x)
        let half = ropeDim / 2
        let magnitude = Double(scaling.magnitude)
        let frequencies = scaling.frequencies(ropeDim: ropeDim, freqBase: freqBase)
        for row in 0..<x.rowCount {
            for j in 0..<half {
                let theta = Double(startPosition + row) * frequencies[j]
                let cosine = cos(theta) * magnitude
                let sine = sin(theta) * magnitude * (inverse ? -1 : 1)
                let (first, second) = layout == .adjacentPairs ? (2 * j, 2 * j + 1) : (j, j + half)
                for head in 0..<width / headDim {
                    let base = row * width + head * headDim
                    let a = Double(values[base + first])
                    let b = Double(values[base + second])
                    values[base + first] = Float(a * cosine - b * sine)
                    values[base + second] = Float(a * sine + b * cosine)
                }
            }
        }
        store(values, into: x)
    }

    /// `out = gate · sigmoid(gate) · up`, element-wise, in `Double`.
    public func swiglu(gate: Tensor, up: Tensor, into out: Tensor) {
        gated("swiglu", gate, up, into: out) { g in g / (1 + exp(-g)) }
    }

    /// `out = gelu(gate) · up` with GELU's tanh approximation, element-wise, in `Double`.
    public func geglu(gate: Tensor, up: Tensor, into out: Tensor) {
        gated("geglu", gate, up, into: out) { g in
            0.5 * g * (1 + tanh((2 / Double.pi).squareRoot() * (g + 0.044715 * g * g * g)))
        }
    }

    private func gated(_ name: String, _ gate: Tensor, _ up: Tensor, into out: Tensor, _ act: (Double) -> Double) {
        precondition(
            up.rowCount == gate.rowCount && up.rowLength == gate.rowLength, "\(name): gate \(gate.shape), up \(up.shape)")
        precondition(
            out.rowCount == gate.rowCount && out.rowLength == gate.rowLength, "\(name): \(gate.shape) into \(out.shape)")
        var values = load(gate)
        let ups = load(up)
        for i in 0..<values.count { values[i] = Float(act(Double(values[i])) * Double(ups[i])) }
        store(values, into: out)
    }

    /// `out = x · factor`, element-wise.
    public func scale(_ x: Tensor, by factor: Float, into out: Tensor) {
        precondition(out.rowCount == x.rowCount && out.rowLength == x.rowLength, "scale: \(x.shape) into \(out.shape)")
        store(load(x).map { Float(Double($0) * Double(factor)) }, into: out)
    }

    /// `out = cap · tanh(x / cap)`, element-wise, in `Double`.
    public func softcap(_ x: Tensor, cap: Float, into out: Tensor) {
        precondition(cap > 0, "softcap: cap \(cap)")
        precondition(out.rowCount == x.rowCount && out.rowLength == x.rowLength, "softcap: \(x.shape) into \(out.shape)")
        let c = Double(cap)
        store(load(x).map { Float(c * tanh(Double($0) / c)) }, into: out)
    }

    /// Writes all rows of `source` into `destination` from row `row` on.
    public func copyRows(_ source: Tensor, into destination: Tensor, atRow row: Int) {
        precondition(
            source.rowLength == destination.rowLength, "copyRows: rows of \(source.shape) into \(destination.shape)")
        store(load(source), into: destination, atRow: row)
    }

    /// Causal grouped-query attention: for query row `i` and head `h`,
    /// `out = Σ_p softmax_p(s_p) v_p` over positions `p` in
    /// `mask.firstVisible(from: startPosition + i) ... startPosition + i`, with `s_p = scale · q·k_p`
    /// (then `softcap · tanh(s_p / softcap)` when the mask soft-caps) and `k`, `v` taken from KV head
    /// `h / (headCount / headCountKV)`. Scores, softmax and the weighted sum are in `Double`.
    public func attention(
        q: Tensor, keys: Tensor, values: Tensor, headCount: Int, headCountKV: Int,
        startPosition: Int, scale: Float, mask: AttentionMask, into out: Tensor
    ) {
        let n = q.rowCount
        precondition(
            headCount > 0 && headCountKV > 0 && headCount % headCountKV == 0,
            "attention: \(headCount) query heads over \(headCountKV) KV heads")
        precondition(q.rowLength % headCount == 0, "attention: q rows of \(q.rowLength) over \(headCount) heads")
        let headDim = q.rowLength / headCount
        let kvWidth = headCountKV * headDim
        let visible = startPosition + n
        precondition(
            keys.rowLength == kvWidth && values.rowLength == kvWidth,
            "attention: keys \(keys.shape) / values \(values.shape) for \(headCountKV) KV heads of \(headDim)")
        precondition(
            startPosition >= 0 && visible <= keys.rowCount && visible <= values.rowCount,
            "attention: positions 0..<\(visible) past the cache \(keys.shape)")
        precondition(out.rowCount == n && out.rowLength == q.rowLength, "attention: q \(q.shape) into \(out.shape)")
        let qs = load(q)
        let ks = load(keys, rows: 0..<visible)
        let vs = load(values, rows: 0..<visible)
        let groupSize = headCount / headCountKV
        var result = [Float](repeating: 0, count: n * q.rowLength)
        var scores = [Double](repeating: 0, count: visible)
        var accumulator = [Double](repeating: 0, count: headDim)
        let softcap = Double(mask.softcap)
        for i in 0..<n {
            let last = startPosition + i
            let first = mask.firstVisible(from: last)
            for h in 0..<headCount {
                let qBase = i * q.rowLength + h * headDim
                let kvOffset = (h / groupSize) * headDim
                var maxScore = -Double.infinity
                for p in first...last {
                    var dot = 0.0
                    for t in 0..<headDim {
                        dot += Double(qs[qBase + t]) * Double(ks[p * kvWidth + kvOffset + t])
                    }
                    scores[p] = Double(scale) * dot
                    if softcap > 0 { scores[p] = softcap * tanh(scores[p] / softcap) }
                    maxScore = max(maxScore, scores[p])
                }
                var total = 0.0
                for p in first...last {
                    scores[p] = exp(scores[p] - maxScore)
                    total += scores[p]
                }
                for t in 0..<headDim { accumulator[t] = 0 }
                for p in first...last {
                    let weight = scores[p] / total
                    for t in 0..<headDim {
                        accumulator[t] += weight * Double(vs[p * kvWidth + kvOffset + t])
                    }
                }
                for t in 0..<headDim { result[qBase + t] = Float(accumulator[t]) }
            }
        }
        store(result, into: out)
    }

    /// Per row: `out = exp(x - max) / Σ exp(x - max)`, in `Double`.
    public func softmax(_ x: Tensor, into out: Tensor) {
        precondition(
            out.rowCount == x.rowCount && out.rowLength == x.rowLength, "softmax: \(x.shape) into \(out.shape)")
        var values = load(x)
        let width = x.rowLength
        for row in 0..<x.rowCount {
            let base = row * width
            let (maximum, total) = Self.maxAndExpSum(values[base..<base + width])
            for j in 0..<width {
                values[base + j] = Float(exp(Double(values[base + j]) - maximum) / total)
            }
        }
        store(values, into: out)
    }

    /// Per row: `out = x - max - log Σ exp(x - max)`, in `Double`.
    public func logSoftmax(_ x: Tensor, into out: Tensor) {
        precondition(
            out.rowCount == x.rowCount && out.rowLength == x.rowLength, "logSoftmax: \(x.shape) into \(out.shape)")
        var values = load(x)
        let width = x.rowLength
        for row in 0..<x.rowCount {
            let base = row * width
            let (maximum, total) = Self.maxAndExpSum(values[base..<base + width])
            let logTotal = log(total)
            for j in 0..<width {
                values[base + j] = Float(Double(values[base + j]) - maximum - logTotal)
            }
        }
        store(values, into: out)
    }

    /// The row maximum and `Σ exp(x - max)`; subtracting the maximum keeps `exp` from overflowing.
    private static func maxAndExpSum(_ row: ArraySlice<Float>) -> (maximum: Double, total: Double) {
        let maximum = Double(row.max() ?? 0)
        var total = 0.0
        for value in row {
            total += exp(Double(value) - maximum)
        }
        return (maximum, total)
    }
}
