import CVulkan
import Foundation
import ThemisBackend

/// The Vulkan compute implementation of `Backend`: GLSL kernels compiled to SPIR-V at build time.
///
/// Ops are recorded into one command buffer (`CommandStream`) and run when a result is read or
/// `synchronize()` is called, so a forward pass is one submission. Weights keep their GGUF
/// storage type in device memory and are dequantised in registers by the kernels.
public final class VulkanBackend: Backend, @unchecked Sendable {
    // The Backend contract: used from one task at a time. The memory pool alone is thread-safe
    // (tensors may be released anywhere).
    public let device: DeviceInfo
    let vk: VulkanDevice
    private let pool: MemoryPool
    let pipelines: PipelineCache
    let stream: CommandStream
    /// Whether the decode matrix-vector kernel reduces with subgroup arithmetic.
    public let usesSubgroups: Bool
    let reduceWorkgroup: Int
    private let matvecWorkgroup: Int
    private let matvecRowsPerGroup: Int
    let matmulTile: [UInt32]
    private var ropeTable: (key: [Double], scaling: RoPEScaling, generation: Int, offset: Int)?
    private var roundingScratch: Tensor?
    /// The attention backward pass's P and dS, kept between calls.
    var attentionScratch: (p: Tensor, ds: Tensor)?
    /// The first device failure while recording or running ops; set once, thrown by `read` and
    /// `synchronize` from then on.
    private var failure: String?
    /// Whether one-token matmuls on quantised weights round the activations to 8-bit blocks
    /// first, as the CPU backend's fast path and llama.cpp's CPU backend do. Off by default: the
    /// kernels dequantise weights in registers either way, so f32 activations cost nothing here.
    public let roundsDecodeActivations: Bool

    /// Token counts up to this use the matrix-vector kernel; larger ones the tiled one.
    static let matvecMaxTokens = 8
    public var decodeKernelRows: Int { Self.matvecMaxTokens }

    /// Largest piece of a weight in bytes: the device's binding range, or less for tests.
    public let pieceLimit: Int

    init(device: VulkanDevice, subgroups: Bool?, pieceLimit: Int? = nil, roundDecodeActivations: Bool = false) throws {
        roundsDecodeActivations = roundDecodeActivations
        vk = device
        pool = MemoryPool(device: device)
        pipelines = PipelineCache(device: device)
        stream = try CommandStream(device: device, arenaBytes: 32 << 20)
        stream.pipelines = pipelines
        usesSubgroups = (subgroups ?? true) && device.subgroupArithmetic
        self.pieceLimit = min(pieceLimit ?? .max, device.maxBindingRange - device.bindingAlignment)
        reduceWorkgroup = Self.powerOfTwo(atMost: min(256, device.maxInvocations))
        // decode: one subgroup per weight row, four or more rows per workgroup
        let subgroupSize = max(1, device.info.features.subgroupSize)
        matvecWorkgroup = usesSubgroups ? Self.powerOfTwo(atMost: min(device.maxInvocations, max(64, 4 * subgroupSize))) : 64
        matvecRowsPerGroup = usesSubgroups ? max(1, matvecWorkgroup / subgroupSize) : 1
        // BM, BN, TM, TN: 256 invocations where allowed, else 128 (the least any device has)
        matmulTile = device.maxInvocations >= 256 ? [64, 32, 4, 2] : [64, 32, 4, 4]
        var info = device.info
        info.details = info.details.filter { !$0.hasPrefix("compute backend") } + [
            "compute backend: SPIR-V kernels, decode reduction by \(usesSubgroups ? "subgroup arithmetic" : "shared memory")",
        ]
        self.device = info
    }

    private static func powerOfTwo(atMost n: Int) -> Int {
        var p = 1
        while p * 2 <= n { p *= 2 }
        return p
    }

    /// What the backend has done so far, to check that work is batched and objects are reused.
    public struct Statistics: Sendable, Equatable {
        /// Command buffers submitted (each waited for by one fence).
        public var submissions: Int
        /// Pipelines and descriptor sets created.
        public var pipelines: Int
        public var descriptorSets: Int
    }

    public var statistics: Statistics {
        let counts = pipelines.counts
        return Statistics(submissions: stream.generation, pipelines: counts.pipelines, descriptorSets: counts.descriptorSets)
    }

    /// Every GGUF storage type has kernels.
    public func supports(_ type: StorageType) -> Bool { true }

    // MARK: - Tensors

    func storage(_ t: Tensor) -> VulkanStorage {
        guard let s = t.storage as? VulkanStorage else {
            preconditionFailure("tensor \(t.shape) was not made by a VulkanBackend")
        }
        return s
    }

    /// Runs a recording step. A failure here is a lost device or exhausted driver memory: it is
    /// kept, later steps are skipped, and the next `read` or `synchronize` throws it.
    func perform(_ what: String, _ body: () throws -> Void) {
        guard failure == nil else { return }
        do { try body() } catch { failure = "Vulkan \(what) failed on \(device.id): \(error)" }
    }

    /// Throws the kept failure, if any.
    private func throwFailure() throws {
        if let failure { throw BackendError.deviceFailed(failure) }
    }

    public func makeWeight(type: StorageType, shape: [Int], bytes: UnsafeRawBufferPointer) throws -> Tensor {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }), shape.last! % type.blockSize == 0 else {
            throw BackendError.shapeMismatch("weight shape \(shape) for \(type)")
        }
        let k = shape.last!
        let rows = shape.dropLast().reduce(1, *)
        let rowBytes = type.byteCount(elements: k)
        guard bytes.count >= rows * rowBytes else {
            throw BackendError.shapeMismatch("\(type) weight \(shape) needs \(rows * rowBytes) bytes, got \(bytes.count)")
        }
        // Whole rows per piece, each piece within one binding's range (16 spare bytes: kernels
        // read whole words past a row's last byte).
        let limit = pieceLimit
        guard rowBytes + 16 <= limit else {
            throw VulkanError.tooLarge("a row of \(rowBytes) bytes exceeds \(device.id)'s largest binding")
        }
        let rowsPerPiece = max(1, (limit - 16) / max(rowBytes, 1))
        var pieces: [VulkanStorage.Piece] = []
        for start in stride(from: 0, to: max(rows, 1), by: rowsPerPiece) {
            let end = min(rows, start + rowsPerPiece)
            let range = try pool.allocate((end - start) * rowBytes + 16)
            pieces.append(VulkanStorage.Piece(range: range, rows: start..<end))
        }
        let s = VulkanStorage(pool: pool, pieces: pieces)
        try stream.zero(s.whole, retain: s)
        for piece in pieces where !piece.rows.isEmpty {
            let part = UnsafeRawBufferPointer(rebasing: bytes[piece.rows.lowerBound * rowBytes..<piece.rows.upperBound * rowBytes])
            try stream.upload(part, to: piece.range, offset: 0, retain: s)
        }
        return Tensor(shape: shape, type: type, storage: s)
    }

    public func makeTensor(shape: [Int]) throws -> Tensor {
        let bytes = try Tensor.f32ByteCount(shape: shape)
        guard bytes <= vk.maxBindingRange - 16 else {
            throw VulkanError.tooLarge(
                "an f32 tensor \(shape) of \(bytes >> 20) MiB exceeds \(device.id)'s largest binding (\(vk.maxBindingRange >> 20) MiB)")
        }
        let range: BufferRange
        do {
            range = try pool.allocate(bytes + 16)
        } catch VulkanError.outOfMemory(let n, let device) {
            // in the backend's terms: the model layer and the server answer it (503), not the driver's
            throw BackendError.outOfMemory(requested: n, detail: "the Vulkan device \(device)")
        }
        let s = VulkanStorage(pool: pool, pieces: [.init(range: range, rows: 0..<(shape.dropLast().reduce(1, *)))])
        try stream.zero(s.whole, retain: s)
        return Tensor(shape: shape, type: .f32, storage: s)
    }

    public func write(_ values: [Float], to tensor: Tensor) {
        precondition(tensor.type == .f32, "cannot write to a \(tensor.type) tensor")
        precondition(values.count == tensor.count, "writing \(values.count) values to a \(tensor.shape) tensor")
        let s = storage(tensor)
        perform("upload") {
            try values.withUnsafeBytes { bytes in
                try stream.upload(bytes, to: s.whole, offset: tensor.rowOffset * tensor.rowLength * 4, retain: s)
            }
        }
    }

    public func read(_ tensor: Tensor) throws -> [Float] {
        precondition(tensor.type == .f32, "read: only f32 tensors can be read, not \(tensor.type)")
        let s = storage(tensor)
        var result: [Float] = []
        perform("read-back") {
            result = try stream.download(s.whole, offset: tensor.rowOffset * tensor.rowLength * 4,
                                         bytes: tensor.count * 4, retain: s) { bytes in
                Array(bytes.bindMemory(to: Float.self))
            }
        }
        try throwFailure()
        return result
    }

    public func synchronize() throws {
        perform("submission") { try stream.submit() }
        try throwFailure()
    }

    /// First float of a view within its storage.
    func offset(_ t: Tensor) -> UInt32 { UInt32(t.rowOffset * t.rowLength) }

    /// Workgroup counts for `count` invocations in groups of `size`, wrapped into y past the
    /// x limit: (x, y, groups along x).
    func grid(_ count: Int, _ size: Int) -> (Int, Int, UInt32) {
        let groups = (count + size - 1) / size
        let x = max(1, min(groups, vk.maxGroupCount.x))
        return (x, (groups + x - 1) / x, UInt32(x))
    }

    func typeName(_ type: StorageType) -> String { type.description.lowercased() }

    // MARK: - Ops

    public func getRows(_ table: Tensor, ids: [Int32], into out: Tensor) {
        let width = table.rowLength
        precondition(out.rowCount == ids.count && out.rowLength == width, "getRows: \(ids.count) rows of \(table.shape) into \(out.shape)")
        for id in ids { precondition(id >= 0 && Int(id) < table.rowCount, "getRows: id \(id) out of \(table.shape)") }
        guard !ids.isEmpty else { return }
        let t = storage(table), o = storage(out)
        perform("getRows") {
            let kernel = try pipelines.kernel("get_rows_\(typeName(table.type))", bindings: 3, constants: [64])
            let words = ids.map { UInt32(Int(table.rowOffset) + Int($0)) }
            for batchStart in stride(from: 0, to: ids.count, by: vk.maxGroupCount.y) {
                let batch = Array(words[batchStart..<min(words.count, batchStart + vk.maxGroupCount.y)])
                let at = try batch.withUnsafeBytes { try stream.stage($0) }
                for piece in t.pieces {
                    let push: [UInt32] = [
                        UInt32(batch.count), UInt32(width), UInt32(table.rowBytes), UInt32(at / 4),
                        offset(out) + UInt32(batchStart * width), UInt32(piece.rows.lowerBound), UInt32(piece.rows.count),
                    ]
                    try stream.dispatch(
                        kernel, bindings: [piece.range, stream.arenaRange, o.whole], reads: [piece.range],
                        writes: [o.whole], push: push, groups: ((width + 8 * 64 - 1) / (8 * 64), batch.count, 1),
                        retain: [t, o])
                }
            }
        }
    }

    public func matmul(_ x: Tensor, weight w: Tensor, into y: Tensor) {
        matmul(x, weights: [w], into: [y])
    }

    /// Several weights on one input; with `roundsDecodeActivations`, one token's activations are
    /// rounded to 8-bit blocks once (`quantize_q8.comp`) before the weights' matvecs.
    public func matmul(_ x: Tensor, weights: [Tensor], into outputs: [Tensor]) {
        precondition(weights.count == outputs.count, "matmul: \(weights.count) weights, \(outputs.count) outputs")
        var input = x
        if roundsDecodeActivations, x.rowCount == 1, x.rowLength % 32 == 0,
           !weights.isEmpty, weights.allSatisfy({ $0.type.blockSize > 1 }) {
            input = rounded(x)
        }
        for (w, y) in zip(weights, outputs) { matmulOne(input, weight: w, into: y) }
    }

    /// `x` (one row) rounded to 8-bit blocks, in a scratch tensor.
    private func rounded(_ x: Tensor) -> Tensor {
        let k = x.rowLength
        if roundingScratch.map({ $0.count < k }) ?? true {
            perform("allocation") { roundingScratch = try makeTensor(shape: [1, max(k, 4096)]) }
        }
        // after a failed allocation the op is skipped (the failure is thrown at the next read)
        guard let scratch = roundingScratch, scratch.count >= k else { return x }
        let out = Tensor(shape: [1, k], type: .f32, storage: scratch.storage)
        let xs = storage(x), os = storage(out)
        perform("quantize_q8") {
            let kernel = try pipelines.kernel("quantize_q8", bindings: 2, constants: [64])
            try stream.dispatch(
                kernel, bindings: [xs.whole, os.whole], reads: [xs.whole], writes: [os.whole],
                push: [UInt32(k / 32), offset(x), 0], groups: ((k / 32 + 63) / 64, 1, 1), retain: [xs, os])
        }
        return out
    }

    private func matmulOne(_ x: Tensor, weight w: Tensor, into y: Tensor) {
        let n = x.rowCount, k = x.rowLength, m = w.rowCount
        precondition(w.rowLength == k && y.rowCount == n && y.rowLength == m, "matmul: x \(x.shape) · w \(w.shape)ᵀ into y \(y.shape)")
        guard n > 0, m > 0 else { return }
        let ws = storage(w), xs = storage(x), ys = storage(y)
        perform("matmul") {
            let decode = n <= Self.matvecMaxTokens
            let kernel = decode
                ? try pipelines.kernel("matvec_\(typeName(w.type))_subgroup\(usesSubgroups ? 1 : 0)", bindings: 3,
                                       constants: [UInt32(matvecWorkgroup)])
                : try pipelines.kernel("matmul_\(typeName(w.type))", bindings: 3,
                                       constants: [(matmulTile[0] / matmulTile[2]) * (matmulTile[1] / matmulTile[3])] + matmulTile)
            for piece in ws.pieces {
                // a row view of the weight starts `rowOffset` rows in
                let first = max(piece.rows.lowerBound, w.rowOffset)
                let last = min(piece.rows.upperBound, w.rowOffset + m)
                guard first < last else { continue }
                let rows = last - first
                let groups = decode ? grid(rows, matvecRowsPerGroup) : ((rows + Int(matmulTile[0]) - 1) / Int(matmulTile[0]),
                                                      (n + Int(matmulTile[1]) - 1) / Int(matmulTile[1]), 0)
                let push: [UInt32] = [
                    UInt32(n), UInt32(k), UInt32(rows), UInt32(w.rowBytes),
                    offset(x), offset(y), UInt32(m), UInt32(first - w.rowOffset), groups.2,
                    UInt32((first - piece.rows.lowerBound) * w.rowBytes), UInt32(matvecRowsPerGroup),
                ]
                try stream.dispatch(
                    kernel, bindings: [piece.range, xs.whole, ys.whole], reads: [piece.range, xs.whole],
                    writes: [ys.whole], push: push, groups: (groups.0, groups.1, 1), retain: [ws, xs, ys])
            }
        }
    }

    /// Element-wise kernel over `count` floats.
    func elementwise(_ name: String, _ inputs: [Tensor], _ out: Tensor, push: [UInt32]) {
        let ins = inputs.map(storage), o = storage(out)
        perform(name) {
            let kernel = try pipelines.kernel(name, bindings: inputs.count + 1, constants: [UInt32(reduceWorkgroup)])
            let g = grid(out.count, reduceWorkgroup)
            try stream.dispatch(
                kernel, bindings: ins.map(\.whole) + [o.whole], reads: ins.map(\.whole), writes: [o.whole],
                push: push + [g.2], groups: (g.0, g.1, 1), retain: ins + [o])
        }
    }

    public func add(_ a: Tensor, _ b: Tensor, into out: Tensor) {
        let width = a.rowLength
        let broadcast = b.rowCount == 1 && a.rowCount != 1
        precondition(b.rowLength == width && (broadcast || b.rowCount == a.rowCount), "add: \(a.shape) + \(b.shape)")
        precondition(out.rowCount == a.rowCount && out.rowLength == width, "add: \(a.shape) into \(out.shape)")
        guard a.count > 0 else { return }
        elementwise("add", [a, b], out, push: [UInt32(a.count), UInt32(width), broadcast ? 1 : 0, offset(a), offset(b), offset(out)])
    }

    public func swiglu(gate: Tensor, up: Tensor, into out: Tensor) {
        precondition(up.rowCount == gate.rowCount && up.rowLength == gate.rowLength, "swiglu: gate \(gate.shape), up \(up.shape)")
        precondition(out.rowCount == gate.rowCount && out.rowLength == gate.rowLength, "swiglu: \(gate.shape) into \(out.shape)")
        guard gate.count > 0 else { return }
        elementwise("glu_silu", [gate, up], out, push: [UInt32(gate.count), offset(gate), offset(up), offset(out)])
    }

    public func geglu(gate: Tensor, up: Tensor, into out: Tensor) {
        precondition(up.rowCount == gate.rowCount && up.rowLength == gate.rowLength, "geglu: gate \(gate.shape), up \(up.shape)")
        precondition(out.rowCount == gate.rowCount && out.rowLength == gate.rowLength, "geglu: \(gate.shape) into \(out.shape)")
        guard gate.count > 0 else { return }
        elementwise("glu_gelu", [gate, up], out, push: [UInt32(gate.count), offset(gate), offset(up), offset(out)])
    }

    public func scale(_ x: Tensor, by factor: Float, into out: Tensor) {
        precondition(out.rowCount == x.rowCount && out.rowLength == x.rowLength, "scale: \(x.shape) into \(out.shape)")
        guard x.count > 0 else { return }
        elementwise("unary_scale", [x], out, push: [UInt32(x.count), offset(x), offset(out), factor.bitPattern])
    }

    public func softcap(_ x: Tensor, cap: Float, into out: Tensor) {
        precondition(cap > 0, "softcap: cap \(cap)")
        precondition(out.rowCount == x.rowCount && out.rowLength == x.rowLength, "softcap: \(x.shape) into \(out.shape)")
        guard x.count > 0 else { return }
        elementwise("unary_softcap", [x], out, push: [UInt32(x.count), offset(x), offset(out), cap.bitPattern])
    }

    /// One workgroup per row; `rowOffsets` are the indices in `push` of the offsets that move with
    /// the rows.
    func rowwise(_ name: String, _ inputs: [Tensor], _ out: Tensor, push: [UInt32], rowOffsets: [Int]) {
        let ins = inputs.map(storage), o = storage(out)
        perform(name) {
            let kernel = try pipelines.kernel(name, bindings: inputs.count + 1, constants: [UInt32(reduceWorkgroup)])
            for start in stride(from: 0, to: out.rowCount, by: vk.maxGroupCount.x) {
                let rows = min(out.rowCount - start, vk.maxGroupCount.x)
                // later batches of rows shift the offsets of the row-indexed tensors
                var p = push
                for i in rowOffsets { p[i] += UInt32(start * out.rowLength) }
                try stream.dispatch(
                    kernel, bindings: ins.map(\.whole) + [o.whole], reads: ins.map(\.whole), writes: [o.whole],
                    push: p, groups: (rows, 1, 1), retain: ins + [o])
            }
        }
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float, into out: Tensor) {
        let width = x.rowLength
        precondition(weight.count == width, "rmsNorm: weight \(weight.shape) for rows of \(width)")
        precondition(weight.type == .f32, "rmsNorm: the weight must be f32, not \(weight.type)")
        precondition(out.rowCount == x.rowCount && out.rowLength == width, "rmsNorm: \(x.shape) into \(out.shape)")
        guard x.count > 0 else { return }
        // x and out are indexed by row, the weight is not
        rowwise("rms_norm", [x, weight], out,
                push: [UInt32(width), offset(x), offset(weight), offset(out), epsilon.bitPattern], rowOffsets: [1, 3])
    }

    public func softmax(_ x: Tensor, into out: Tensor) {
        precondition(out.rowCount == x.rowCount && out.rowLength == x.rowLength, "softmax: \(x.shape) into \(out.shape)")
        guard x.count > 0 else { return }
        rowwise("softmax_log0", [x], out, push: [UInt32(x.rowLength), offset(x), offset(out)], rowOffsets: [1, 2])
    }

    public func logSoftmax(_ x: Tensor, into out: Tensor) {
        precondition(out.rowCount == x.rowCount && out.rowLength == x.rowLength, "logSoftmax: \(x.shape) into \(out.shape)")
        guard x.count > 0 else { return }
        rowwise("softmax_log1", [x], out, push: [UInt32(x.rowLength), offset(x), offset(out)], rowOffsets: [1, 2])
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
        precondition(headDim > 0 && width % headDim == 0, "rope: rows of \(width) are not whole heads of \(headDim)")
        precondition(ropeDim >= 0 && ropeDim % 2 == 0 && ropeDim <= headDim, "rope: ropeDim \(ropeDim) for heads of \(headDim)")
        precondition(scaling.frequencyFactors.map { $0.count == ropeDim / 2 } ?? true,
                     "rope: \(scaling.frequencyFactors?.count ?? 0) frequency factors for \(ropeDim / 2) pairs")
        let half = ropeDim / 2, n = x.rowCount
        guard n > 0, half > 0 else { return }
        let s = storage(x)
        perform("rope") {
            // cos and sin per (row, pair), in double on the host; Q and K of every layer share them
            let key = [Double(startPosition), Double(n), Double(ropeDim), Double(freqBase)]
            let at: Int
            if let cached = ropeTable, cached.key == key, cached.scaling == scaling, cached.generation == stream.generation {
                at = cached.offset
            } else {
                var table = [Float](repeating: 0, count: 2 * n * half)
                let magnitude = Double(scaling.magnitude)
                let frequencies = scaling.frequencies(ropeDim: ropeDim, freqBase: freqBase)
                for row in 0..<n {
                    for j in 0..<half {
                        let theta = Double(startPosition + row) * frequencies[j]
                        table[2 * (row * half + j)] = Float(cos(theta) * magnitude)
                        table[2 * (row * half + j) + 1] = Float(sin(theta) * magnitude)
                    }
                }
                at = try table.withUnsafeBytes { try stream.stage($0) }
                ropeTable = (key, scaling, stream.generation, at)
            }
            let kernel = try pipelines.kernel("rope", bindings: 2, constants: [UInt32(reduceWorkgroup)])
            let count = n * (width / headDim) * half
            let push: [UInt32] = [
                UInt32(n), UInt32(width), UInt32(headDim), UInt32(ropeDim), offset(x), UInt32(at / 8),
                layout == .halfSplit ? 1 : 0, inverse ? 1 : 0,
            ]
            precondition((count + reduceWorkgroup - 1) / reduceWorkgroup <= vk.maxGroupCount.x, "rope: \(x.shape) too large")
            try stream.dispatch(
                kernel, bindings: [s.whole, stream.arenaRange], reads: [s.whole], writes: [s.whole], push: push,
                groups: ((count + reduceWorkgroup - 1) / reduceWorkgroup, 1, 1), retain: [s])
        }
    }

    public func copyRows(_ source: Tensor, into destination: Tensor, atRow row: Int) {
        precondition(source.rowLength == destination.rowLength, "copyRows: rows of \(source.shape) into \(destination.shape)")
        precondition(row >= 0 && row + source.rowCount <= destination.rowCount,
                     "copyRows: rows \(row)..<\(row + source.rowCount) out of \(destination.shape)")
        let src = storage(source), dst = storage(destination)
        perform("copyRows") {
            try stream.copy(
                from: src.whole, offset: source.rowOffset * source.rowLength * 4, to: dst.whole,
                offset: (destination.rowOffset + row) * destination.rowLength * 4, bytes: source.count * 4,
                retain: [src, dst])
        }
    }

    public func attention(q: Tensor, keys: Tensor, values: Tensor, headCount: Int, headCountKV: Int,
                          startPosition: Int, scale: Float, mask: AttentionMask, into out: Tensor) {
        let n = q.rowCount
        precondition(headCount > 0 && headCountKV > 0 && headCount % headCountKV == 0,
                     "attention: \(headCount) query heads over \(headCountKV) KV heads")
        precondition(q.rowLength % headCount == 0, "attention: q rows of \(q.rowLength) over \(headCount) heads")
        let headDim = q.rowLength / headCount
        precondition(headDim <= 256, "attention: heads of \(headDim) (the kernel takes up to 256)")
        let visible = startPosition + n
        precondition(keys.rowLength == headCountKV * headDim && values.rowLength == headCountKV * headDim,
                     "attention: keys \(keys.shape) / values \(values.shape) for \(headCountKV) KV heads of \(headDim)")
        precondition(startPosition >= 0 && visible <= keys.rowCount && visible <= values.rowCount,
                     "attention: positions 0..<\(visible) past the cache \(keys.shape)")
        precondition(out.rowCount == n && out.rowLength == q.rowLength, "attention: q \(q.shape) into \(out.shape)")
        guard n > 0 else { return }
        let qs = storage(q), ks = storage(keys), vs = storage(values), os = storage(out)
        perform("attention") {
            let kernel = try pipelines.kernel("attention", bindings: 4, constants: [64])
            for start in stride(from: 0, to: n, by: vk.maxGroupCount.y) {
                let rows = min(n - start, vk.maxGroupCount.y)
                let push: [UInt32] = [
                    UInt32(headDim), UInt32(headCount), UInt32(headCountKV), UInt32(startPosition + start),
                    offset(q) + UInt32(start * q.rowLength), offset(keys), offset(values),
                    offset(out) + UInt32(start * out.rowLength), scale.bitPattern,
                    UInt32(max(0, mask.window)), mask.softcap.bitPattern,
                ]
                try stream.dispatch(
                    kernel, bindings: [qs.whole, ks.whole, vs.whole, os.whole], reads: [qs.whole, ks.whole, vs.whole],
                    writes: [os.whole], push: push, groups: (headCount, rows, 1), retain: [qs, ks, vs, os])
            }
        }
    }
}
