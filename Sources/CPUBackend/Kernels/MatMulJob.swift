import CByteDots
import ThemisBackend
/// `y[n, m] = x[n, k] · wᵀ`: matrix-vector rows for up to `CPUBackend.decodeRows` tokens (float
/// weights, or any weights with f32 decode; quantised ones otherwise take
/// `CPUBackend.matmul(_:weights:into:)`), 32-row GEMM panels for more tokens.
struct MatMulJob: KernelVisitor {
    let pool: ThreadPool
    let scratch: [UnsafeMutablePointer<Float>]
    let w: UnsafeRawPointer
    let rowBytes: Int
    let x: UnsafeMutablePointer<Float>
    let y: UnsafeMutablePointer<Float>
    let n: Int, k: Int, m: Int

    /// Rows per decode task for float weights: one contiguous range per thread.
    /// Decode streams weights from memory, and the hardware prefetcher keeps up only with long
    /// sequential runs: measured on SmolLM2, 1 task per thread gave 155 tokens/s, 2 gave 117.
    private var decodeChunk: Int { max(8, (m + pool.threadCount - 1) / pool.threadCount) }

    func visit<K: BlockKernel>(_ kernel: K.Type) {
        let (w, rowBytes, x, y, n, k, m, scratch) = (w, rowBytes, x, y, n, k, m, scratch)
        if n <= CPUBackend.decodeRows {
            // a token of each of a few sequences: weights read once for all of them
            let chunk = decodeChunk
            let tasks = (m + chunk - 1) / chunk
            pool.run(tasks: tasks) { t, thread in
                let rows = t * chunk..<min(m, (t + 1) * chunk)
                if n == 1 {
                    matVecRows(K.self, w: w, rowBytes: rowBytes, k: k, x: x, y: y, rows: rows, scratch: scratch[thread])
                } else {
                    matVecRowsMulti(K.self, w: w, rowBytes: rowBytes, k: k, x: x, n: n, y: y, ldy: m, rows: rows,
                                    scratch: scratch[thread])
                }
            }
            return
        }
        pool.run(tasks: (m + 31) / 32) { t, thread in
            let s = scratch[thread]
            gemmPanel(K.self, w: w, rowBytes: rowBytes, m: m, k: k, j0: t * 32, x: x, n: n, y: y, ldy: m,
                      tmp: s, panel: s + 32 * k)
        }
    }
}

/// `out[i] = dequantise(table[ids[i]])`.
struct GetRowsJob: KernelVisitor {
    let src: UnsafeRawPointer
    let rowBytes: Int
    let k: Int
    let ids: [Int32]
    let dst: UnsafeMutablePointer<Float>

    func visit<K: BlockKernel>(_ kernel: K.Type) {
        for (i, id) in ids.enumerated() {
            dequantizeRow(K.self, src + Int(id) * rowBytes, dst + i * k, count: k)
        }
    }
}

/// Rows claimed at a time in decode: about 32 KB of weights, long enough to keep a stream going.
func decodeUnit(rowBytes: Int) -> Int { max(4, 32_768 / rowBytes) }

/// Builds the one-token row kernel of a quantised weight, specialised for its format.
struct RowKernelJob: KernelVisitor {
    final class Kernel {
        // Set once by `visitQuantized`, then only read.
        var run: ((Range<Int>) -> Void)?
    }
    let w: UnsafeRawPointer
    let rowBytes: Int
    let k: Int
    let x: QuantizedRow
    let y: UnsafeMutablePointer<Float>
    /// Whether to use the C byte dots where the format and this build have them.
    let byteDots: Bool
    let kernel = Kernel()

    func visit<K: BlockKernel>(_ kernel: K.Type) {
        preconditionFailure("RowKernelJob is for quantised weights")
    }

    func visitQuantized<K: BlockDotQ8>(_: K.Type) {
        let (w, rowBytes, k, x, y) = (w, rowBytes, k, x, y)
        if byteDots, let format = K.byteFormat, let rowsC = themis_byte_rows(Int32(format.rawValue)) {
            kernel.run = { rows in
                rowsC(w, rowBytes, Int32(k), x.bytes, x.d, x.s, x.sums16, y, Int32(rows.lowerBound), Int32(rows.upperBound))
            }
            return
        }
        kernel.run = { rows in matVecRowsQ8(K.self, w: w, rowBytes: rowBytes, k: k, x: x, y: y, rows: rows) }
    }
}

/// The C byte-dot format of a storage type (nil for the float types).
struct ByteFormatOf: KernelVisitor {
    final class Box {
        // Set once by `visitQuantized`, then only read.
        var format: themis_byte_format?
    }
    let box = Box()

    func visit<K: BlockKernel>(_: K.Type) {}
    func visitQuantized<K: BlockDotQ8>(_: K.Type) { box.format = K.byteFormat }

    static func format(of type: StorageType) -> themis_byte_format? {
        let query = ByteFormatOf()
        dispatch(type, query)
        return query.box.format
    }
}
