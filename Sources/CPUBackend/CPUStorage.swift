/// Bytes of a CPU tensor: owned (activations) or borrowed in place (memory-mapped weights).
final class CPUStorage: @unchecked Sendable {
    // The pointer is fixed for the object's life; contents are written only by the owning
    // backend's ops, which run one at a time.
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    private let owned: Bool

    init(zeroedBytes count: Int) {
        byteCount = count
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 64), alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 64))
        owned = true
    }

    init(borrowing bytes: UnsafeRawBufferPointer) {
        byteCount = bytes.count
        base = UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!)
        owned = false
    }

    deinit { if owned { base.deallocate() } }
}
