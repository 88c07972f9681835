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

/// Work generic over the block format, run by `dispatch` with the concrete kernel type so the
/// compiler specialises it (an existential metatype would make every block a dynamic call).
protocol KernelVisitor {
    func visit<K: BlockKernel>(_ kernel: K.Type)
    /// Quantised formats, which also have an 8-bit-activation dot; by default the same as `visit`.
    func visitQuantized<K: BlockDotQ8>(_ kernel: K.Type)
}

extension KernelVisitor {
    func visitQuantized<K: BlockDotQ8>(_ kernel: K.Type) { visit(kernel) }
}

/// Runs `visitor` with the block kernel of `type`.
@inline(__always)
func dispatch<V: KernelVisitor>(_ type: StorageType, _ visitor: V) {
    switch type {
    case .f32: visitor.visit(KernelF32.self)
    case .f16: visitor.visit(KernelF16.self)
    case .bf16: visitor.visit(KernelBF16.self)
    case .q4_0: visitor.visitQuantized(KernelQ4_0.self)
    case .q4_1: visitor.visitQuantized(KernelQ4_1.self)
    case .q5_0: visitor.visitQuantized(KernelQ5_0.self)
    case .q5_1: visitor.visitQuantized(KernelQ5_1.self)
    case .q8_0: visitor.visitQuantized(KernelQ8_0.self)
    case .q4K: visitor.visitQuantized(KernelQ4K.self)
    case .q5K: visitor.visitQuantized(KernelQ5K.self)
    case .q6K: visitor.visitQuantized(KernelQ6K.self)
    }
}
