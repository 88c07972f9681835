/// Decode-shape matmul: `y[r] = dot(w[r], x)` for weight rows `rows`, one activation row.
///
/// Each storage block is dequantised into an L1-resident buffer and dotted with `x` with FMA;
/// two accumulators hide FMA latency.
@inline(__always)
func matVecRows<K: BlockKernel>(_: K.Type, w: UnsafeRawPointer, rowBytes: Int, k: Int,
                                x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Range<Int>,
                                scratch: UnsafeMutablePointer<Float>) {
    let blocks = k / K.elements
    let tail = k - blocks * K.elements
    for r in rows {
        let row = w + r * rowBytes
        var dot = BlockOrderedDot()
        for b in 0..<blocks {
            K.dequantize(row + b * K.bytes, scratch)
            dot.add(K.self, scratch, x + b * K.elements)
        }
        if tail > 0 { K.dequantizeTail(row + blocks * K.bytes, scratch, count: tail) }
        y[r] = dot.sum(tail: tail, scratch, x + blocks * K.elements)
    }
}

/// Decode-shape matmul for a few activation rows (sequences decoding together): each weight row
/// is dequantised once into `scratch` (`k` floats, L1-resident) and dotted with every activation
/// row, so the weights are read once for all of them. Each row's FMAs run in `matVecRows`' order:
/// a sequence gets the same numbers whether it decodes alone or in a batch.
@inline(__always)
func matVecRowsMulti<K: BlockKernel>(_: K.Type, w: UnsafeRawPointer, rowBytes: Int, k: Int,
                                     x: UnsafePointer<Float>, n: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                                     rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
    let blocks = k / K.elements
    let tail = k - blocks * K.elements
    let body = blocks * K.elements
    for r in rows {
        dequantizeRow(K.self, w + r * rowBytes, scratch, count: k)
        var i = 0
        while i + 4 <= n {
            // four rows at once: each weight vector is loaded once for all four
            var d0 = BlockOrderedDot(), d1 = BlockOrderedDot(), d2 = BlockOrderedDot(), d3 = BlockOrderedDot()
            let x0 = x + i * k, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k
            for b in 0..<blocks {
                let o = b * K.elements
                let vecsPerBlock = K.elements / 16
                var v = 0
                while v + 1 < vecsPerBlock {
                    let wa = loadF(scratch + o + 16 * v), wb = loadF(scratch + o + 16 * v + 16)
                    d0.acc0 = d0.acc0.addingProduct(wa, loadF(x0 + o + 16 * v)); d0.acc1 = d0.acc1.addingProduct(wb, loadF(x0 + o + 16 * v + 16))
                    d1.acc0 = d1.acc0.addingProduct(wa, loadF(x1 + o + 16 * v)); d1.acc1 = d1.acc1.addingProduct(wb, loadF(x1 + o + 16 * v + 16))
                    d2.acc0 = d2.acc0.addingProduct(wa, loadF(x2 + o + 16 * v)); d2.acc1 = d2.acc1.addingProduct(wb, loadF(x2 + o + 16 * v + 16))
                    d3.acc0 = d3.acc0.addingProduct(wa, loadF(x3 + o + 16 * v)); d3.acc1 = d3.acc1.addingProduct(wb, loadF(x3 + o + 16 * v + 16))
                    v += 2
                }
                if v < vecsPerBlock {
                    let wa = loadF(scratch + o + 16 * v)
                    d0.acc0 = d0.acc0.addingProduct(wa, loadF(x0 + o + 16 * v))
                    d1.acc0 = d1.acc0.addingProduct(wa, loadF(x1 + o + 16 * v))
                    d2.acc0 = d2.acc0.addingProduct(wa, loadF(x2 + o + 16 * v))
                    d3.acc0 = d3.acc0.addingProduct(wa, loadF(x3 + o + 16 * v))
                }
            }
            y[i * ldy + r] = d0.sum(tail: tail, scratch + body, x0 + body)
            y[(i + 1) * ldy + r] = d1.sum(tail: tail, scratch + body, x1 + body)
            y[(i + 2) * ldy + r] = d2.sum(tail: tail, scratch + body, x2 + body)
            y[(i + 3) * ldy + r] = d3.sum(tail: tail, scratch + body, x3 + body)
            i += 4
        }
        while i < n {
            let xi = x + i * k
            var dot = BlockOrderedDot()
            for b in 0..<blocks { dot.add(K.self, scratch + b * K.elements, xi + b * K.elements) }
            y[i * ldy + r] = dot.sum(tail: tail, scratch + body, xi + body)
            i += 1
        }
    }
}

/// The FMA order of the decode dot: within each block, vector pairs go to two accumulators.
struct BlockOrderedDot {
    var acc0 = F16x(), acc1 = F16x()

    @inline(__always) mutating func add<K: BlockKernel>(_: K.Type, _ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>) {
        let vecsPerBlock = K.elements / 16
        var v = 0
        while v + 1 < vecsPerBlock {
            acc0 = acc0.addingProduct(loadF(w + 16 * v), loadF(x + 16 * v))
            acc1 = acc1.addingProduct(loadF(w + 16 * v + 16), loadF(x + 16 * v + 16))
            v += 2
        }
        if v < vecsPerBlock { acc0 = acc0.addingProduct(loadF(w + 16 * v), loadF(x + 16 * v)) }
    }

    /// The total, with the last `tail` elements (a partial block) added one by one.
    @inline(__always) func sum(tail: Int, _ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>) -> Float {
        var sum = (acc0 + acc1).sum()
        for i in 0..<tail { sum += w[i] * x[i] }
        return sum
    }
}
