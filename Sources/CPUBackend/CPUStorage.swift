#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes of a CPU tensor: owned (activations) or borrowed in place (memory-mapped weights).
final class CPUStorage: @unchecked Sendable {
    // The pointer is fixed for the object's life; contents are written only by the owning
    // backend's ops, which run one at a time.
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    private let owned: Bool

    /// Zeroed memory from calloc: large blocks come as untouched zero pages, so a KV cache
    /// becomes resident only as far as it is written. Kernels load unaligned, so calloc's
    /// alignment is enough.
    /// Nil when the memory cannot be had.
    init?(zeroedBytes count: Int) {
        byteCount = count
        guard let p = calloc(max(count, 64), 1) else { return nil }
        base = p
        owned = true
    }

    init(borrowing bytes: UnsafeRawBufferPointer) {
        byteCount = bytes.count
        base = UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!)
        owned = false
    }

    deinit { if owned { free(base) } }
}
