/// A tensor that lives on one backend's device.
///
/// Shapes are listed outermost first, innermost (contiguous) last: a weight matrix of `m` output
/// rows and `k` inputs is `[m, k]`; activations of `n` tokens are `[n, width]`.
/// `storage` belongs to the backend that made the tensor; other backends must not touch it.
/// A row view (`rows(_:)`) shares the storage and starts `rowOffset` rows in.
public final class Tensor: @unchecked Sendable {
    // Immutable after init; the storage object is synchronised by its backend.
    public let shape: [Int]
    public let type: StorageType
    public let storage: AnyObject
    /// First row of this view within `storage` (0 for a whole tensor).
    public let rowOffset: Int

    public init(shape: [Int], type: StorageType, storage: AnyObject, rowOffset: Int = 0) {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 >= 0 }, "bad tensor shape \(shape)")
        precondition(shape.last! % type.blockSize == 0, "row length \(shape.last!) not a multiple of \(type) blocks")
        self.shape = shape
        self.type = type
        self.storage = storage
        self.rowOffset = rowOffset
    }

    /// Elements in one row (the innermost dimension).
    public var rowLength: Int { shape.last! }
    /// Number of rows (product of all outer dimensions).
    public var rowCount: Int { shape.dropLast().reduce(1, *) }
    /// Total elements.
    public var count: Int { rowLength * rowCount }
    /// Bytes of one row in storage.
    public var rowBytes: Int { type.byteCount(elements: rowLength) }

    /// A view of rows `range` of a 2-D tensor, sharing storage.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(shape.count == 2 && range.lowerBound >= 0 && range.upperBound <= shape[0], "row range \(range) out of \(shape)")
        return Tensor(shape: [range.count, shape[1]], type: type, storage: storage, rowOffset: rowOffset + range.lowerBound)
    }

    /// The first `rows * rowLength` elements of a whole f32 tensor seen as `[rows, rowLength]`:
    /// one scratch tensor serving several shapes.
    public func leading(rows: Int, rowLength newLength: Int) -> Tensor {
        precondition(type == .f32 && rowOffset == 0 && rows >= 0 && newLength > 0 && rows * newLength <= count,
                     "cannot view \(shape) as [\(rows), \(newLength)]")
        return Tensor(shape: [rows, newLength], type: type, storage: storage)
    }

    /// The same f32 elements seen as rows of `rowLength` (which divides this row length): the
    /// heads of a `[n, heads * headDim]` tensor as `[n * heads, headDim]`, for per-head ops.
    public func reshaped(rowLength newLength: Int) -> Tensor {
        precondition(type == .f32 && newLength > 0 && rowLength % newLength == 0,
                     "cannot view rows of \(rowLength) \(type) as rows of \(newLength)")
        let factor = rowLength / newLength
        return Tensor(shape: [rowCount * factor, newLength], type: type, storage: storage, rowOffset: rowOffset * factor)
    }
}

extension Tensor {
    /// Bytes of a new `f32` tensor of `shape`, checked: throws `shapeMismatch` for an empty or
    /// negative shape and `outOfMemory` when the size overflows (every backend's `makeTensor`
    /// sizes its allocation with this, so no product of untrusted sizes can wrap).
    public static func f32ByteCount(shape: [Int]) throws -> Int {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }) else {
            throw BackendError.shapeMismatch("tensor shape \(shape)")
        }
        var bytes = 4
        for d in shape {
            let (m, overflow) = bytes.multipliedReportingOverflow(by: d)
            guard !overflow else { throw BackendError.outOfMemory(requested: .max, detail: "tensor \(shape) is larger than the address space") }
            bytes = m
        }
        return bytes
    }
}
