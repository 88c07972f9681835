import CByteDots
import ThemisBackend
#if canImport(Glibc)
import Glibc
#endif

/// The CPU implementation of `Backend`: SIMD kernels over a spinning thread pool.
///
/// Ops run eagerly on the calling thread plus the pool's workers, so `synchronize()` is a no-op.
/// Weights are used in place from the caller's (memory-mapped) bytes.
public final class CPUBackend: Backend, @unchecked Sendable {
    // Used from one task at a time (the Backend contract); the pool and scratch are owned here.
    public let device: DeviceInfo
    let pool: ThreadPool
    private(set) var scratch: [UnsafeMutablePointer<Float>]
    private var scratchCount = 0
    /// Keys transposed into blocks of 16 positions for batched attention (`[kvHead][block][dim][16]`).
    private var keyBlocks = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    private var keyBlocksCount = 0
    /// The attention backward pass's transposed keys and values and its stored P and dS, kept
    /// between calls (a fresh allocation per call costs page faults on every layer).
    private var attentionWork = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    private var attentionWorkCount = 0
    /// Prompt rows rounded to bytes for the byte GEMM, kept between calls.
    private var quantizedRows = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    private var quantizedRowsCount = 0

    /// A backend using `threads` threads (default: every core).
    /// Matmuls of up to this many rows are decode steps: on quantised weights the one-token 8-bit
    /// path per row, or with f32 decode activations one weight pass for all rows.
    static let decodeRows = 8
    public var decodeKernelRows: Int { Self.decodeRows }

    /// Whether matmuls on quantised weights round the activations to 8-bit blocks (the fast path,
    /// as llama.cpp's CPU backend does) rather than use them in f32: one-token rows always, prompt
    /// rows where this build has the byte GEMM (`roundsPromptRows(of:)`: x86 with AVX2, Q8_0 only
    /// with VNNI). Training wants it off: its backward pass is in f32.
    public let roundsDecodeActivations: Bool

    /// Whether the 8-bit dots (one-token rows, and the prompt GEMM) use the C byte multiply-adds
    /// (`CByteDots`) where this build has them, rather than the portable Swift kernels.
    public let usesByteDots: Bool

    /// `byteDots: false` keeps the Swift kernels everywhere (the tests run both).
    public init(threads: Int? = nil, roundDecodeActivations: Bool = true, byteDots: Bool = true) {
        roundsDecodeActivations = roundDecodeActivations
        usesByteDots = byteDots && themis_byte_rows(Int32(THEMIS_BYTE_Q4_0.rawValue)) != nil
        let n = threads ?? CPUProvider.defaultThreadCount
        pool = ThreadPool(threads: n)
        device = CPUProvider.deviceInfo(threads: n)
        scratch = []
        ensureScratch(1 << 16)
    }

    deinit {
        for p in scratch { p.deallocate() }
        keyBlocks.deallocate()
        attentionWork.deallocate()
        quantizedRows.deallocate()
    }

    /// At least `count` floats of the attention backward pass's work space.
    func attentionWorkspace(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > attentionWorkCount {
            attentionWork.deallocate()
            attentionWorkCount = max(count, attentionWorkCount * 2)
            attentionWork = .allocate(capacity: attentionWorkCount)
        }
        return attentionWork
    }

    /// Makes sure every thread has `count` floats of scratch.
    func ensureScratch(_ count: Int) {
        if count <= scratchCount { return }
        for p in scratch { p.deallocate() }
        let c = max(count, scratchCount * 2)
        scratch = (0..<pool.threadCount).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: c * 4, alignment: 64).bindMemory(to: Float.self, capacity: c)
        }
        scratchCount = c
    }

    public func supports(_ type: StorageType) -> Bool { true }

    public func makeWeight(type: StorageType, shape: [Int], bytes: UnsafeRawBufferPointer) throws -> Tensor {
        let t = Tensor(shape: shape, type: type, storage: CPUStorage(borrowing: bytes))
        guard bytes.count >= t.rowBytes * t.rowCount else {
            throw BackendError.shapeMismatch("weight \(shape) of \(type) needs \(t.rowBytes * t.rowCount) bytes, got \(bytes.count)")
        }
        return t
    }

    public func makeTensor(shape: [Int]) throws -> Tensor {
        let bytes = try Tensor.f32ByteCount(shape: shape)
        guard let storage = CPUStorage(zeroedBytes: bytes) else {
            throw BackendError.outOfMemory(requested: bytes, detail: "tensor \(shape)")
        }
        return Tensor(shape: shape, type: .f32, storage: storage)
    }

    @inline(__always) func pointer(_ t: Tensor) -> UnsafeMutablePointer<Float> {
        precondition(t.type == .f32, "activation tensors are f32")
        let s = t.storage as! CPUStorage
        return (s.base + t.rowOffset * t.rowBytes).assumingMemoryBound(to: Float.self)
    }

    @inline(__always) func rawPointer(_ t: Tensor) -> UnsafeRawPointer {
        let s = t.storage as! CPUStorage
        return UnsafeRawPointer(s.base + t.rowOffset * t.rowBytes)
    }

    public func write(_ values: [Float], to tensor: Tensor) {
        precondition(values.count == tensor.count, "write of \(values.count) values into \(tensor.shape)")
        let p = pointer(tensor)
        values.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: values.count) }
    }

    public func read(_ tensor: Tensor) throws -> [Float] {
        let p = pointer(tensor)
        return Array(UnsafeBufferPointer(start: p, count: tensor.count))
    }

    public func synchronize() throws {}

    // MARK: ops

    public func getRows(_ table: Tensor, ids: [Int32], into out: Tensor) {
        let k = table.rowLength
        precondition(out.rowLength == k && out.rowCount >= ids.count, "getRows shape")
        for id in ids { precondition(id >= 0 && Int(id) < table.rowCount, "token id \(id) out of range") }
        dispatch(table.type, GetRowsJob(src: rawPointer(table), rowBytes: table.rowBytes, k: k, ids: ids, dst: pointer(out)))
    }

    public func matmul(_ x: Tensor, weight w: Tensor, into y: Tensor) {
        let n = x.rowCount, k = x.rowLength, m = w.rowCount
        precondition(w.rowLength == k && y.rowLength == m && y.rowCount == n,
                     "matmul shapes x\(x.shape) w\(w.shape) y\(y.shape)")
        // one token on a quantised weight: the 8-bit path, shared with several weights
        if n <= Self.decodeRows && w.type.blockSize > 1 && roundsDecodeActivations { return matmul(x, weights: [w], into: [y]) }
        // a prompt on a quantised weight: the byte GEMM where this build has one
        if let gemm = byteGEMM(for: w.type) { return byteGEMM(gemm, x, w, y) }
        ensureScratch(n == 1 ? 256 : n <= Self.decodeRows ? k + 256 : 64 * k + 256)
        dispatch(w.type, MatMulJob(pool: pool, scratch: scratch, w: rawPointer(w), rowBytes: w.rowBytes,
                                   x: pointer(x), y: pointer(y), n: n, k: k, m: m))
    }

    /// Whether prompt rows (more than `decodeKernelRows`) through weights of `type` are rounded to
    /// 8 bits and multiplied by the byte GEMM, rather than in f32: with rounding on, where this
    /// build has byte multiply-adds (Q8_0: VNNI only).
    public func roundsPromptRows(of type: StorageType) -> Bool { byteGEMM(for: type) != nil }

    private func byteGEMM(for type: StorageType) -> themis_byte_gemm_fn? {
        guard roundsDecodeActivations, usesByteDots, let format = ByteFormatOf.format(of: type) else { return nil }
        return themis_byte_gemm(Int32(format.rawValue))
    }

    /// `y = x · wᵀ` by the C byte GEMM: the rows of `x` rounded to bytes (one scale per 32
    /// elements, each row on its own, so a row's numbers do not depend on the others), then
    /// panels of 16 weight rows, one per task, each unpacked once and multiplied with every row.
    private func byteGEMM(_ gemm: themis_byte_gemm_fn, _ x: Tensor, _ w: Tensor, _ y: Tensor) {
        let n = x.rowCount, k = x.rowLength, m = w.rowCount
        let rowFloats = QuantizedRow.floatsNeeded(k: k)
        let rows = quantizedRowsBuffer(n * rowFloats)
        let xp = pointer(x)
        parallelRows(n, width: k) { i in _ = QuantizedRow(xp + i * k, k: k, buffer: rows + i * rowFloats) }
        let first = QuantizedRow(layoutIn: rows, k: k)
        let input = themis_byte_rows_in(q: first.bytes, d: first.d, sums16: first.sums16,
                                        stride: rowFloats * MemoryLayout<Float>.stride)
        let panelFloats = (themis_byte_gemm_panel_bytes(Int32(k)) + 3) / 4
        ensureScratch(panelFloats + 16)
        let wp = rawPointer(w), rowBytes = w.rowBytes, yp = pointer(y), scratch = scratch
        pool.run(tasks: (m + 15) / 16) { t, thread in
            // the panel's vectors are read aligned: 64 bytes
            let raw = UnsafeMutableRawPointer(scratch[thread])
            let panel = raw + (64 - Int(bitPattern: raw) % 64) % 64
            gemm(wp, rowBytes, Int32(k), Int32(m), Int32(16 * t), input, Int32(n), yp, m, panel)
        }
    }

    /// At least `count` floats for activation rows rounded to bytes, kept between calls.
    private func quantizedRowsBuffer(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > quantizedRowsCount {
            quantizedRows.deallocate()
            quantizedRowsCount = max(count, quantizedRowsCount * 2)
            quantizedRows = .allocate(capacity: quantizedRowsCount)
        }
        return quantizedRows
    }

    /// One token through quantised weights: the activation row is quantised once (by the caller,
    /// into its scratch, read by all) and each thread takes its contiguous share of every
    /// weight's rows in one dispatch.
    public func matmul(_ x: Tensor, weights: [Tensor], into outputs: [Tensor]) {
        precondition(weights.count == outputs.count, "matmul: \(weights.count) weights, \(outputs.count) outputs")
        let k = x.rowLength
        guard x.rowCount <= Self.decodeRows, roundsDecodeActivations, weights.allSatisfy({ $0.type.blockSize > 1 }) else {
            for (w, y) in zip(weights, outputs) { matmul(x, weight: w, into: y) }
            return
        }
        if x.rowCount > 1 {
            // a few tokens (several sequences decoding together): the one-token path per row,
            // which beats dequantising whole panels for so few rows
            for r in 0..<x.rowCount {
                matmul(x.rows(r..<r + 1), weights: weights, into: outputs.map { $0.rows(r..<r + 1) })
            }
            return
        }
        for (w, y) in zip(weights, outputs) {
            precondition(w.rowLength == k && y.rowLength == w.rowCount && y.rowCount == 1, "matmul shapes x\(x.shape) w\(w.shape) y\(y.shape)")
        }
        // the row quantised with one scale per block of each format present: 32 elements, and
        // 256 for the K-quants (whose dots then sum whole blocks in integers)
        let size = QuantizedRow.floatsNeeded(k: k)
        ensureScratch(256 + 2 * size)
        let x32 = weights.contains { $0.type.blockSize == 32 } ? QuantizedRow(pointer(x), k: k, buffer: scratch[0] + 256) : nil
        let x256 = weights.contains { $0.type.blockSize == 256 }
            ? QuantizedRow(pointer(x), k: k, group: 256, buffer: scratch[0] + 256 + size) : nil
        let kernels = zip(weights, outputs).map { w, y in
            let xq = w.type.blockSize == 256 ? x256! : x32!
            let job = RowKernelJob(w: rawPointer(w), rowBytes: w.rowBytes, k: k, x: xq, y: pointer(y), byteDots: usesByteDots)
            dispatch(w.type, job)
            return (rows: w.rowCount, run: job.kernel.run!)
        }
        // one row space over all weights; a claimed piece never spans two of them
        var starts = [0]
        for kernel in kernels { starts.append(starts.last! + kernel.rows) }
        let unit = weights.map { decodeUnit(rowBytes: $0.rowBytes) }.min()!
        pool.run(count: starts.last!, unit: unit) { piece in
            for (i, kernel) in kernels.enumerated() {
                let lo = max(piece.lowerBound, starts[i]), hi = min(piece.upperBound, starts[i + 1])
                if lo < hi { kernel.run((lo - starts[i])..<(hi - starts[i])) }
            }
        }
    }

    public func add(_ a: Tensor, _ b: Tensor, into out: Tensor) {
        let width = a.rowLength, rows = a.rowCount
        precondition(b.rowLength == width && (b.rowCount == rows || b.rowCount == 1) && out.count == a.count, "add shapes")
        let ap = pointer(a), bp = pointer(b), op = pointer(out)
        let broadcast = b.rowCount == 1 && rows > 1
        parallelRows(rows, width: width) { r in
            let x = ap + r * width, y = broadcast ? bp : bp + r * width, o = op + r * width
            var i = 0
            while i + 16 <= width { storeF(loadF(x + i) + loadF(y + i), o + i); i += 16 }
            while i < width { o[i] = x[i] + y[i]; i += 1 }
        }
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float, into out: Tensor) {
        let width = x.rowLength
        precondition(weight.count == width && out.count == x.count, "rmsNorm shapes")
        let xp = pointer(x), wp = pointer(weight), op = pointer(out)
        parallelRows(x.rowCount, width: width) { r in
            let v = xp + r * width, o = op + r * width
            let scale = 1 / (dot(v, v, width) / Float(width) + epsilon).squareRoot()
            let s = F16x(repeating: scale)
            var i = 0
            while i + 16 <= width { storeF(loadF(v + i) * s * loadF(wp + i), o + i); i += 16 }
            while i < width { o[i] = v[i] * scale * wp[i]; i += 1 }
        }
    }

    public func rope(_ x: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float, layout: RoPELayout,
                     scaling: RoPEScaling) {
        rotate(x, headDim: headDim, ropeDim: ropeDim, startPosition: startPosition, freqBase: freqBase, layout: layout,
               scaling: scaling, inverse: false)
    }

    /// RoPE's rotation, or its transpose (every angle negated) when `inverse`.
    func rotate(_ x: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float, layout: RoPELayout,
                scaling: RoPEScaling, inverse: Bool) {
        let width = x.rowLength
        let sign: Float = inverse ? -1 : 1
        precondition(width % headDim == 0 && ropeDim <= headDim && ropeDim % 2 == 0, "rope shapes")
        precondition(scaling.frequencyFactors.map { $0.count == ropeDim / 2 } ?? true, "rope: frequency factors")
        let heads = width / headDim
        let half = ropeDim / 2
        let table = ropeTable(start: startPosition, rows: x.rowCount, ropeDim: ropeDim, freqBase: freqBase, scaling: scaling)
        let xp = pointer(x)
        table.withUnsafeBufferPointer { table in
            parallelRows(x.rowCount, width: width * 4) { r in
                let cs = table.baseAddress! + 2 * r * half, sn = cs + half
                for h in 0..<heads {
                    let v = xp + r * width + h * headDim
                    for j in 0..<half {
                        let (i0, i1) = layout == .adjacentPairs ? (2 * j, 2 * j + 1) : (j, j + half)
                        let a = v[i0], b = v[i1], sine = sn[j] * sign
                        v[i0] = a * cs[j] - b * sine
                        v[i1] = a * sine + b * cs[j]
                    }
                }
            }
        }
    }

    /// Cosines then sines (times the magnitude) of every row's pairs, `[rows][2][ropeDim / 2]`,
    /// computed in double; the last two are kept, since Q and K of a layer (and the layers of one
    /// kind: Gemma alternates two RoPE bases) ask for the same one.
    private func ropeTable(start: Int, rows: Int, ropeDim: Int, freqBase: Float, scaling: RoPEScaling) -> [Float] {
        let key = RopeKey(start: start, rows: rows, ropeDim: ropeDim, freqBase: freqBase, scaling: scaling)
        if let hit = ropeTables.first(where: { $0.key == key }) { return hit.table }
        let half = ropeDim / 2
        let frequencies = scaling.frequencies(ropeDim: ropeDim, freqBase: freqBase)
        let magnitude = Double(scaling.magnitude)
        var table = [Float](repeating: 0, count: 2 * rows * half)
        for r in 0..<rows {
            let position = Double(start + r)
            for j in 0..<half {
                let a = position * frequencies[j]
                table[2 * r * half + j] = Float(cos(a) * magnitude)
                table[2 * r * half + half + j] = Float(sin(a) * magnitude)
            }
        }
        ropeTables.insert((key, table), at: 0)
        if ropeTables.count > 2 { ropeTables.removeLast() }
        return table
    }

    private struct RopeKey: Equatable {
        let start: Int, rows: Int, ropeDim: Int, freqBase: Float, scaling: RoPEScaling
    }
    private var ropeTables: [(key: RopeKey, table: [Float])] = []

    public func swiglu(gate: Tensor, up: Tensor, into out: Tensor) {
        let one = F16x(repeating: 1)
        gated(gate, up, into: out) { g in g / (one + vexp(-g)) }
    }

    public func geglu(gate: Tensor, up: Tensor, into out: Tensor) {
        gated(gate, up, into: out, vgelu)
    }

    public func scale(_ x: Tensor, by factor: Float, into out: Tensor) {
        precondition(out.count == x.count, "scale shapes")
        map(x, into: out) { $0 * factor }
    }

    public func softcap(_ x: Tensor, cap: Float, into out: Tensor) {
        precondition(out.count == x.count && cap > 0, "softcap shapes")
        map(x, into: out) { vtanh($0 * (1 / cap)) * cap }
    }

    /// `out = f(x)` over 16-lane groups (the tail padded with zeros).
    private func map(_ x: Tensor, into out: Tensor, _ f: (F16x) -> F16x) {
        let width = x.rowLength
        let xp = pointer(x), op = pointer(out)
        parallelRows(x.rowCount, width: width) { r in
            let v = xp + r * width, o = op + r * width
            var i = 0
            while i + 16 <= width { storeF(f(loadF(v + i)), o + i); i += 16 }
            if i < width {
                var t = F16x()
                for j in 0..<(width - i) { t[j] = v[i + j] }
                let res = f(t)
                for j in 0..<(width - i) { o[i + j] = res[j] }
            }
        }
    }

    /// `out = act(gate) · up` over 16-lane groups (the tail padded with zeros), for the gated FFNs.
    private func gated(_ gate: Tensor, _ up: Tensor, into out: Tensor, _ act: (F16x) -> F16x) {
        let width = gate.rowLength
        precondition(up.count == gate.count && out.count == gate.count, "gated activation shapes")
        let gp = pointer(gate), up_ = pointer(up), op = pointer(out)
        parallelRows(gate.rowCount, width: width) { r in
            let g = gp + r * width, u = up_ + r * width, o = op + r * width
            var i = 0
            while i + 16 <= width { storeF(act(loadF(g + i)) * loadF(u + i), o + i); i += 16 }
            if i < width {
                var gv = F16x(), uv = F16x()
                for j in 0..<(width - i) { gv[j] = g[i + j]; uv[j] = u[i + j] }
                let res = act(gv) * uv
                for j in 0..<(width - i) { o[i + j] = res[j] }
            }
        }
    }

    public func copyRows(_ source: Tensor, into destination: Tensor, atRow row: Int) {
        precondition(source.rowLength == destination.rowLength && row + source.rowCount <= destination.rowCount,
                     "copyRows shapes")
        (pointer(destination) + row * destination.rowLength).update(from: pointer(source), count: source.count)
    }

    public func attention(q: Tensor, keys: Tensor, values: Tensor, headCount: Int, headCountKV: Int,
                          startPosition: Int, scale: Float, mask: AttentionMask, into out: Tensor) {
        let n = q.rowCount
        let headDim = q.rowLength / headCount
        let kvWidth = headCountKV * headDim
        precondition(keys.rowLength == kvWidth && values.rowLength == kvWidth && headCount % headCountKV == 0
                     && startPosition + n <= keys.rowCount && out.count == q.count, "attention shapes")
        let group = headCount / headCountKV
        let qp = pointer(q), kp = pointer(keys), vp = pointer(values), op = pointer(out)
        let width = q.rowLength
        ensureScratch(startPosition + n + 16)
        let scratch = self.scratch
        // For a batch, transpose the keys once into blocks of 16 positions: each query then gets
        // 16 scores per 16-lane FMA chain instead of one horizontal sum per position. A single
        // token reads every key once anyway, so it keeps the direct dots.
        let length = startPosition + n
        let blocks = (length + 15) / 16
        let transposed = n > 1
        if transposed {
            let needed = headCountKV * blocks * headDim * 16
            if needed > keyBlocksCount {
                keyBlocks.deallocate()
                keyBlocks = .allocate(capacity: needed)
                keyBlocksCount = needed
            }
            let kt = keyBlocks
            pool.run(tasks: headCountKV * blocks) { task, _ in
                let g = task / blocks, b = task % blocks
                transposeBlock(kp, stride: kvWidth, offset: g * headDim, headDim: headDim, length: length, block: b,
                               into: kt + (g * blocks + b) * headDim * 16)
            }
        }
        let kt = keyBlocks
        if transposed && group >= 2 && headDim % 16 == 0 {
            // grouped-query heads share their keys and values: each task takes one query row and
            // one KV head and runs all the query heads of its group together, so every key and
            // value vector loaded serves the whole group
            ensureScratch(group * (length + 16))
            let scratch = self.scratch
            pool.run(tasks: n * headCountKV) { task, thread in
                groupAttention(row: task / headCountKV, kvHead: task % headCountKV, group: group, headDim: headDim,
                               kvWidth: kvWidth, width: width, start: startPosition, blocks: blocks, scale: scale,
                               mask: mask, q: qp, keyBlocks: kt, values: vp, out: op, scores: scratch[thread])
            }
            return
        }
        pool.run(tasks: n * headCount) { task, thread in
            let i = task / headCount, h = task % headCount
            let kvh = h / group
            let length = startPosition + i + 1
            // the window's first position; scores are indexed by absolute position
            let first = mask.firstVisible(from: length - 1)
            let scores = scratch[thread]
            let qv = qp + i * width + h * headDim
            if transposed {
                let base = kt + kvh * blocks * headDim * 16
                let scaleV = F16x(repeating: scale)
                for b in (first / 16)..<((length + 15) / 16) {
                    storeF(blockDot(qv, base + b * headDim * 16, headDim) * scaleV, scores + b * 16)
                }
            } else {
                for p in first..<length {
                    scores[p] = dot(qv, kp + p * kvWidth + kvh * headDim, headDim) * scale
                }
            }
            let visible = scores + first, count = length - first
            if mask.softcap > 0 {
                let cap = mask.softcap, inverse = 1 / cap
                var p = 0
                while p + 16 <= count { storeF(vtanh(loadF(visible + p) * inverse) * cap, visible + p); p += 16 }
                while p < count { visible[p] = tanhf(visible[p] * inverse) * cap; p += 1 }
            }
            let mx = maxOf(visible, count)
            let total = expShiftSum(visible, count, shift: mx)
            let o = op + i * width + h * headDim
            let v = vp + kvh * headDim + first * kvWidth
            if headDim % 64 == 0 {
                // 64 dimensions at a time, summed in registers (Gemma's heads are 256 wide)
                for d in stride(from: 0, to: headDim, by: 64) {
                    weightedSum64(visible, v + d, stride: kvWidth, count: count, scale: 1 / total, into: o + d)
                }
                return
            }
            o.update(repeating: 0, count: headDim)
            for p in 0..<count {
                axpy(visible[p], v + p * kvWidth, o, headDim)
            }
            let inv = 1 / total
            for d in 0..<headDim { o[d] *= inv }
        }
    }

    /// One query row's attention for the `group` query heads of KV head `kvHead`: scores from the
    /// keys transposed into blocks of 16 positions (two heads at a time), the softmax per head,
    /// then the weighted values 16 dimensions at a time for up to four heads, summed in registers
    /// in the order of the one-head path, so the numbers are those of that path.
    private func groupAttention(row i: Int, kvHead: Int, group: Int, headDim: Int, kvWidth: Int, width: Int,
                                start: Int, blocks: Int, scale: Float, mask: AttentionMask,
                                q: UnsafeMutablePointer<Float>, keyBlocks: UnsafeMutablePointer<Float>,
                                values: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                                scores: UnsafeMutablePointer<Float>) {
        let length = start + i + 1
        let first = mask.firstVisible(from: length - 1)
        let count = length - first
        let stride = blocks * 16
        let base = keyBlocks + kvHead * blocks * headDim * 16
        let scaleV = F16x(repeating: scale)
        // scores two heads at a time, each summed as the one-head path sums it (four partial sums
        // over the dimensions, joined pairwise), so grouping changes no number
        var g0 = 0
        while g0 < group {
            let pair = group - g0 > 1
            let qa = q + i * width + (kvHead * group + g0) * headDim
            let qb = pair ? qa + headDim : qa
            let sa = scores + g0 * stride, sb = sa + stride
            for b in (first / 16)..<((length + 15) / 16) {
                let (a, c) = blockDot2(qa, qb, base + b * headDim * 16, headDim)
                storeF(a * scaleV, sa + b * 16)
                if pair { storeF(c * scaleV, sb + b * 16) }
            }
            g0 += 2
        }
        // softmax per head over its visible positions; the sums' inverses scale the outputs
        var inverses = (Float(0), Float(0), Float(0), Float(0))
        g0 = 0
        while g0 < group {
            let m = min(4, group - g0)
            for g in 0..<m {
                let visible = scores + (g0 + g) * stride + first
                if mask.softcap > 0 {
                    let cap = mask.softcap, inverse = 1 / cap
                    var p = 0
                    while p + 16 <= count { storeF(vtanh(loadF(visible + p) * inverse) * cap, visible + p); p += 16 }
                    while p < count { visible[p] = tanhf(visible[p] * inverse) * cap; p += 1 }
                }
                let total = expShiftSum(visible, count, shift: maxOf(visible, count))
                switch g {
                case 0: inverses.0 = 1 / total
                case 1: inverses.1 = 1 / total
                case 2: inverses.2 = 1 / total
                default: inverses.3 = 1 / total
                }
            }
            let w0 = scores + g0 * stride + first
            let w1 = m > 1 ? w0 + stride : w0, w2 = m > 2 ? w0 + 2 * stride : w0, w3 = m > 3 ? w0 + 3 * stride : w0
            let o0 = out + i * width + (kvHead * group + g0) * headDim
            let v = values + kvHead * headDim + first * kvWidth
            for d in Swift.stride(from: 0, to: headDim, by: 16) {
                var a0 = F16x(), a1 = F16x(), a2 = F16x(), a3 = F16x()
                for p in 0..<count {
                    let x = loadF(v + p * kvWidth + d)
                    a0 = a0.addingProduct(F16x(repeating: w0[p]), x)
                    a1 = a1.addingProduct(F16x(repeating: w1[p]), x)
                    a2 = a2.addingProduct(F16x(repeating: w2[p]), x)
                    a3 = a3.addingProduct(F16x(repeating: w3[p]), x)
                }
                storeF(a0 * inverses.0, o0 + d)
                if m > 1 { storeF(a1 * inverses.1, o0 + headDim + d) }
                if m > 2 { storeF(a2 * inverses.2, o0 + 2 * headDim + d) }
                if m > 3 { storeF(a3 * inverses.3, o0 + 3 * headDim + d) }
            }
            g0 += 4
        }
    }

    public func softmax(_ x: Tensor, into out: Tensor) {
        let width = x.rowLength
        let xp = pointer(x), op = pointer(out)
        parallelRows(x.rowCount, width: width) { r in
            let v = xp + r * width, o = op + r * width
            if v != o { o.update(from: v, count: width) }
            let mx = maxOf(o, width)
            let inv = 1 / expShiftSum(o, width, shift: mx)
            for i in 0..<width { o[i] *= inv }
        }
    }

    public func logSoftmax(_ x: Tensor, into out: Tensor) {
        let width = x.rowLength
        let xp = pointer(x), op = pointer(out)
        ensureScratch(width)
        let scratch = self.scratch
        pool.run(tasks: x.rowCount) { r, thread in
            let v = xp + r * width, o = op + r * width
            let mx = maxOf(v, width)
            let tmp = scratch[thread]
            tmp.update(from: v, count: width)
            let lse = mx + logf(expShiftSum(tmp, width, shift: mx))
            for i in 0..<width { o[i] = v[i] - lse }
        }
    }

    /// Runs `body(row)` for every row, in parallel when the work is large enough to pay for it.
    func parallelRows(_ rows: Int, width: Int, _ body: (Int) -> Void) {
        if rows * width < 16_384 || rows == 1 {
            for r in 0..<rows { body(r) }
            return
        }
        let chunk = max(1, rows / (pool.threadCount * 4))
        let tasks = (rows + chunk - 1) / chunk
        pool.run(tasks: tasks) { t, _ in
            for r in t * chunk..<min(rows, (t + 1) * chunk) { body(r) }
        }
    }
}

infix operator **: MultiplicationPrecedence
private func ** (a: Double, b: Double) -> Double { pow(a, b) }
