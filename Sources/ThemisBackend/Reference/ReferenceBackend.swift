#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The scalar reference implementation of `Backend`: the ground truth other backends are tested
/// against.
///
/// Every op runs at once (eagerly) with plain loops over `[Float]`, accumulating dot products,
/// norms and softmax sums in `Double`. Weights are copied into the tensor and dequantised one row at
/// a time with `Dequantize`. Slow by design; use it for tests and small cases.
public final class ReferenceBackend: Backend {
    /// `id` "reference", kind `.cpu`, one compute unit.
    public let device: DeviceInfo

    /// A reference backend on the host CPU.
    public init() {
        device = DeviceInfo(
            id: "reference", name: "Scalar reference (Swift)", kind: .cpu,
            memoryBytes: Self.physicalMemory(), computeUnits: 1,
            details: ["single-threaded scalar ops, f64 accumulation"])
    }

    private static func physicalMemory() -> UInt64 {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && pageSize > 0 ? UInt64(pages) * UInt64(pageSize) : 0
    }

    /// Every storage type: `Dequantize` covers them all.
    public func supports(_ type: StorageType) -> Bool { true }

    /// Copies `bytes` into the tensor (f32 weights are stored as floats, others as raw bytes).
    public func makeWeight(type: StorageType, shape: [Int], bytes: UnsafeRawBufferPointer) throws -> Tensor {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }), shape.last! % type.blockSize == 0 else {
            throw BackendError.shapeMismatch("weight shape \(shape) for \(type)")
        }
        let count = shape.reduce(1, *)
        let needed = type.byteCount(elements: count)
        guard bytes.count >= needed else {
            throw BackendError.shapeMismatch("\(type) weight \(shape) needs \(needed) bytes, got \(bytes.count)")
        }
        let storage: ReferenceStorage
        if type == .f32 {
            storage = ReferenceStorage(floats: Dequantize.row(.f32, bytes, count: count))
        } else {
            storage = ReferenceStorage(bytes: Array(UnsafeRawBufferPointer(rebasing: bytes[..<needed])))
        }
        return Tensor(shape: shape, type: type, storage: storage)
    }

    /// A zero-filled f32 tensor.
    public func makeTensor(shape: [Int]) throws -> Tensor {
        let count = try Tensor.f32ByteCount(shape: shape) / 4
        return Tensor(shape: shape, type: .f32, storage: ReferenceStorage(floats: [Float](repeating: 0, count: count)))
    }

    /// Copies `values` into the f32 tensor (or row view) `tensor`.
    public func write(_ values: [Float], to tensor: Tensor) {
        precondition(values.count == tensor.count, "writing \(values.count) values to a \(tensor.shape) tensor")
        store(values, into: tensor)
    }

    /// The tensor's values; weights of other storage types are dequantised.
    public func read(_ tensor: Tensor) throws -> [Float] {
        load(tensor)
    }

    /// Does nothing: every op has already run.
    public func synchronize() throws {}

    // MARK: - Storage access

    /// The backing store of `tensor`, which must come from a `ReferenceBackend`.
    func storage(of tensor: Tensor) -> ReferenceStorage {
        guard let storage = tensor.storage as? ReferenceStorage else {
            preconditionFailure("tensor \(tensor.shape) was not made by a ReferenceBackend")
        }
        return storage
    }

    /// Row `row` of `tensor` (relative to the view), dequantised into `out` (`rowLength` floats).
    func loadRow(_ tensor: Tensor, _ row: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(row >= 0 && row < tensor.rowCount, "row \(row) out of \(tensor.shape)")
        let storage = storage(of: tensor)
        let absolute = tensor.rowOffset + row
        if tensor.type == .f32 {
            let start = absolute * tensor.rowLength
            precondition(
                start + tensor.rowLength <= storage.floats.count, "row \(absolute) past the end of its storage")
            storage.floats.withUnsafeBufferPointer { floats in
                for j in 0..<tensor.rowLength { out[j] = floats[start + j] }
            }
        } else {
            let start = absolute * tensor.rowBytes
            precondition(start + tensor.rowBytes <= storage.bytes.count, "row \(absolute) past the end of its storage")
            storage.bytes.withUnsafeBytes { bytes in
                Dequantize.row(tensor.type, bytes.baseAddress! + start, count: tensor.rowLength, into: out)
            }
        }
    }

    /// Values of rows `rows` (all rows by default) of `tensor` (relative to the view), row-major,
    /// dequantised.
    func load(_ tensor: Tensor, rows: Range<Int>? = nil) -> [Float] {
        let rows = rows ?? 0..<tensor.rowCount
        let width = tensor.rowLength
        let count = rows.count * width
        guard count > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            for (i, row) in rows.enumerated() {
                loadRow(tensor, row, into: out.baseAddress! + i * width)
            }
            initialized = count
        }
    }

    /// Overwrites rows `firstRow ..< firstRow + values.count / rowLength` of the f32 tensor (or row
    /// view) `tensor` with `values`.
    func store(_ values: [Float], into tensor: Tensor, atRow firstRow: Int = 0) {
        precondition(tensor.type == .f32, "cannot write to a \(tensor.type) tensor")
        let width = tensor.rowLength
        precondition(
            width == 0 ? values.isEmpty : values.count % width == 0,
            "\(values.count) values is not a whole number of \(width)-wide rows")
        let rowCount = width == 0 ? 0 : values.count / width
        precondition(
            firstRow >= 0 && firstRow + rowCount <= tensor.rowCount,
            "rows \(firstRow)..<\(firstRow + rowCount) out of \(tensor.shape)")
        let storage = storage(of: tensor)
        let start = (tensor.rowOffset + firstRow) * width
        precondition(start + values.count <= storage.floats.count, "view \(tensor.shape) past the end of its storage")
        storage.floats.replaceSubrange(start..<start + values.count, with: values)
    }
}
