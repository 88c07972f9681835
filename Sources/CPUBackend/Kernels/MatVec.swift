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
    let vecsPerBlock = K.elements / 16
    for r in rows {
        let row = w + r * rowBytes
        var acc0 = F16x(), acc1 = F16x()
        for b in 0..<blocks {
            K.dequantize(row + b * K.bytes, scratch)
            let xb = x + b * K.elements
            var v = 0
            while v + 1 < vecsPerBlock {
                acc0 = acc0.addingProduct(loadF(scratch + 16 * v), loadF(xb + 16 * v))
                acc1 = acc1.addingProduct(loadF(scratch + 16 * v + 16), loadF(xb + 16 * v + 16))
                v += 2
            }
            if v < vecsPerBlock {
                acc0 = acc0.addingProduct(loadF(scratch + 16 * v), loadF(xb + 16 * v))
            }
        }
        var sum = (acc0 + acc1).sum()
        if tail > 0 {
            K.dequantizeTail(row + blocks * K.bytes, scratch, count: tail)
            let xb = x + blocks * K.elements
            for i in 0..<tail { sum += scratch[i] * xb[i] }
        }
        y[r] = sum
    }
}
