import ThemisBackend

/// One op run with fixed inputs on a backend, compared with `ReferenceBackend` by normalised
/// mean squared error: `sum((out - ref)²) / sum(ref²)`.
public struct ConformanceCase: Sendable, CustomStringConvertible {
    public let name: String
    /// Largest NMSE accepted.
    public let tolerance: Double
    /// Builds the inputs on `backend` (the same values on every backend: seeded), runs the op
    /// and returns its output.
    public let run: @Sendable (any Backend) throws -> [Float]

    public var description: String { name }

    /// The case's NMSE on `backend` against the reference backend.
    public func nmse(on backend: any Backend) throws -> Double {
        let expected = try run(ReferenceBackend())
        let actual = try run(backend)
        precondition(expected.count == actual.count, "\(name): output sizes differ")
        var num = 0.0, den = 0.0
        for (a, e) in zip(actual, expected) {
            let d = Double(a) - Double(e)
            num += d * d
            den += Double(e) * Double(e)
        }
        if !num.isFinite { return .infinity }
        return den == 0 ? num : num / den
    }
}

/// Deterministic inputs: xorshift values, and random quantised blocks with sane scales.
public struct Inputs: Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }

    /// Uniform in [-1, 1).
    public mutating func float() -> Float { Float(Double(next() >> 11) / Double(1 << 52) - 1) }

    public mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in float() * scale } }

    /// Bytes of `rows` rows of `k` elements in `type`, with finite scales of about `scale`.
    public mutating func weightBytes(_ type: StorageType, rows: Int, k: Int, scale: Float = 0.05) -> [UInt8] {
        let rowBytes = type.byteCount(elements: k)
        var bytes = (0..<rows * rowBytes).map { _ in UInt8(truncatingIfNeeded: next()) }
        func putHalf(_ offset: Int, _ v: Float) {
            let bits = Float16(v).bitPattern
            bytes[offset] = UInt8(bits & 0xFF)
            bytes[offset + 1] = UInt8(bits >> 8)
        }
        let blocks = rows * k / type.blockSize
        for b in 0..<blocks {
            let o = b * type.blockBytes
            switch type {
            case .f32:
                let v = float().bitPattern
                for i in 0..<4 { bytes[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
            case .f16: putHalf(o, float())
            case .bf16:
                let v = float().bitPattern >> 16
                bytes[o] = UInt8(v & 0xFF); bytes[o + 1] = UInt8(v >> 8)
            case .q4_0, .q5_0, .q8_0: putHalf(o, float() * scale)
            case .q4_1, .q5_1: putHalf(o, float() * scale); putHalf(o + 2, float() * scale)
            case .q4K, .q5K: putHalf(o, float() * scale * 0.1); putHalf(o + 2, float() * scale * 0.1)
            case .q6K: putHalf(o + 208, float() * scale * 0.1)
            }
        }
        return bytes
    }
}

/// Keeps weight bytes alive for as long as a case's tensors may use them in place.
public final class ByteBox: @unchecked Sendable {
    // Written once at init, only read afterwards.
    public let bytes: UnsafeMutableRawBufferPointer
    public init(_ values: [UInt8]) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, values.count), alignment: 64)
        bytes.copyBytes(from: values)
    }
    deinit { bytes.deallocate() }
}
