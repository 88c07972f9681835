import ThemisBackend

/// Dequantises `count` elements of one row (a whole number of storage blocks).
@inline(__always)
func dequantizeRow<K: BlockKernel>(_: K.Type, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    let blocks = count / K.elements
    for b in 0..<blocks {
        K.dequantize(src + b * K.bytes, dst + b * K.elements)
    }
    let tail = count - blocks * K.elements
    if tail > 0 { K.dequantizeTail(src + blocks * K.bytes, dst + blocks * K.elements, count: tail) }
}

/// Calls `body` with the block kernel of `type`, so generic kernels are specialised per format.
@inline(__always)
func withKernel<R>(_ type: StorageType, _ body: (any BlockKernel.Type) -> R) -> R {
    switch type {
    case .f32: return body(KernelF32.self)
    case .f16: return body(KernelF16.self)
    case .bf16: return body(KernelBF16.self)
    case .q4_0: return body(KernelQ4_0.self)
    case .q4_1: return body(KernelQ4_1.self)
    case .q5_0: return body(KernelQ5_0.self)
    case .q5_1: return body(KernelQ5_1.self)
    case .q8_0: return body(KernelQ8_0.self)
    case .q4K: return body(KernelQ4K.self)
    case .q5K: return body(KernelQ5K.self)
    case .q6K: return body(KernelQ6K.self)
    }
}
