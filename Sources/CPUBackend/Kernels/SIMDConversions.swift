// Lane-loop conversions. The standard library's generic SIMD conversion initialisers are not
// inlined and split vectors across calls (3-4x slower in hot loops); these loops vectorise to
// single widen/convert instructions (see shared/cpu-kernel-notes.md).

typealias F16x = SIMD16<Float>

@inline(__always) func floats(_ v: SIMD16<UInt8>) -> F16x {
    var r = F16x()
    for i in 0..<16 { r[i] = Float(Int32(v[i])) }
    return r
}

@inline(__always) func floats(_ v: SIMD16<Int8>) -> F16x {
    var r = F16x()
    for i in 0..<16 { r[i] = Float(Int32(v[i])) }
    return r
}

@inline(__always) func floats(_ v: SIMD16<UInt32>) -> F16x {
    var r = F16x()
    for i in 0..<16 { r[i] = Float(Int32(bitPattern: v[i])) }
    return r
}

@inline(__always) func widen(_ v: SIMD16<UInt8>) -> SIMD16<UInt32> {
    var r = SIMD16<UInt32>()
    for i in 0..<16 { r[i] = UInt32(v[i]) }
    return r
}

@inline(__always) func halfToFloat(_ p: UnsafeRawPointer, _ byteOffset: Int = 0) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: byteOffset, as: UInt16.self)))
}

@inline(__always) func load16(_ p: UnsafeRawPointer, _ byteOffset: Int) -> SIMD16<UInt8> {
    p.loadUnaligned(fromByteOffset: byteOffset, as: SIMD16<UInt8>.self)
}

@inline(__always) func loadF(_ p: UnsafePointer<Float>) -> F16x {
    UnsafeRawPointer(p).loadUnaligned(as: F16x.self)
}

@inline(__always) func storeF(_ v: F16x, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16x.self)
}

/// Lane indices 0...15, for per-lane bit extraction.
let laneIndex = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
