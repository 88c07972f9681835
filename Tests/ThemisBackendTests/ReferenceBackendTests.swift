import Foundation
import Testing
import ThemisBackend

/// Hand-computed cases for each op of the scalar reference backend.
@Suite struct ReferenceBackendTests {
    let backend = ReferenceBackend()

    /// An f32 tensor holding `values`.
    func tensor(_ shape: [Int], _ values: [Float]) throws -> Tensor {
        let t = try backend.makeTensor(shape: shape)
        backend.write(values, to: t)
        return t
    }

    /// A weight tensor of `type` over `bytes`.
    func weight(_ type: StorageType, _ shape: [Int], _ bytes: [UInt8]) throws -> Tensor {
        try bytes.withUnsafeBytes { try backend.makeWeight(type: type, shape: shape, bytes: $0) }
    }

    /// Little-endian bytes of f32 values.
    func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    /// Three Q8_0 rows of 64: scale `0.5 * (row + 1)`, codes counting up from `-32 + 7 row`.
    func q8Table() -> [UInt8] {
        var bytes: [UInt8] = []
        for row in 0..<3 {
            for block in 0..<2 {
                let scale: UInt16 = [0x3800, 0x3C00, 0x3E00][row]  // f16 0.5, 1.0, 1.5
                bytes += [UInt8(scale & 0xFF), UInt8(scale >> 8)]
                bytes += (0..<32).map { UInt8(bitPattern: Int8(-32 + 7 * row + block + $0)) }
            }
        }
        return bytes
    }

    @Test func describesItself() {
        #expect(backend.device.id == "reference")
        #expect(backend.device.kind == .cpu)
        #expect(StorageType.allCases.allSatisfy(backend.supports))
    }

    @Test func makeTensorIsZeroAndRoundTrips() throws {
        let t = try backend.makeTensor(shape: [2, 3])
        #expect(try backend.read(t) == [0, 0, 0, 0, 0, 0])
        backend.write([1, 2, 3, 4, 5, 6], to: t)
        #expect(try backend.read(t) == [1, 2, 3, 4, 5, 6])
        #expect(try backend.read(t.rows(1..<2)) == [4, 5, 6])
        backend.write([7, 8, 9], to: t.rows(0..<1))
        #expect(try backend.read(t) == [7, 8, 9, 4, 5, 6])
    }

    @Test func makeWeightRejectsTooFewBytes() {
        #expect(throws: BackendError.self) {
            try weight(.q8_0, [2, 32], [UInt8](repeating: 0, count: 34))
        }
    }

    @Test func f32WeightsReadBack() throws {
        let w = try weight(.f32, [2, 2], f32Bytes([1, -2, 3.5, 0]))
        #expect(try backend.read(w) == [1, -2, 3.5, 0])
    }

    @Test func getRowsDequantises() throws {
        let bytes = q8Table()
        let table = try weight(.q8_0, [3, 64], bytes)
        let out = try backend.makeTensor(shape: [3, 64])
        backend.getRows(table, ids: [2, 0, 2], into: out)
        let row = { (r: Int) in
            bytes.withUnsafeBytes {
                Dequantize.row(.q8_0, UnsafeRawBufferPointer(rebasing: $0[(68 * r)...]), count: 64)
            }
        }
        #expect(try backend.read(out) == row(2) + row(0) + row(2))
        let row1 = row(1), row2 = row(2)
        try #require(row1.count > 63 && row2.count > 0)
        #expect(row1[0] == -25 && row1[63] == 7)  // scale 1, codes -25 ... 7
        #expect(row2[0] == 1.5 * -18)

        // A row view of the table indexes from its first row.
        let one = try backend.makeTensor(shape: [1, 64])
        backend.getRows(table.rows(1..<3), ids: [1], into: one)
        #expect(try backend.read(one) == row(2))
    }

    @Test func matmulF32() throws {
        let x = try tensor([2, 3], [1, 2, 3, -1, 0, 1])
        let w = try weight(.f32, [2, 3], f32Bytes([1, 0, 0, 1, 1, 1]))
        let y = try backend.makeTensor(shape: [2, 2])
        backend.matmul(x, weight: w, into: y)
        #expect(try backend.read(y) == [1, 6, -1, 0])
    }

    @Test func matmulQuantisedEqualsMatmulOnDequantisedWeights() throws {
        let bytes = q8Table()
        let quantised = try weight(.q8_0, [3, 64], bytes)
        let dequantised = try weight(.f32, [3, 64], f32Bytes(try backend.read(quantised)))
        let x = try tensor([2, 64], (0..<128).map { Float($0 % 7) - 3 })
        let y1 = try backend.makeTensor(shape: [2, 3])
        let y2 = try backend.makeTensor(shape: [2, 3])
        backend.matmul(x, weight: quantised, into: y1)
        backend.matmul(x, weight: dequantised, into: y2)
        #expect(try backend.read(y1) == backend.read(y2))

        // Hand check of y[0, 0]: Σ_t x[t] · 0.5 · (t - 32 or t - 31).
        var sum = 0.0
        for t in 0..<64 {
            let code: Int = -32 + t / 32 + t % 32
            sum += (Double(t % 7) - 3) * 0.5 * Double(code)
        }
        let y1Values = try backend.read(y1)
        try #require(y1Values.count > 5)
        #expect(y1Values[0] == Float(sum))

        // A row view of the weight gives the matching output columns.
        let y3 = try backend.makeTensor(shape: [2, 1])
        backend.matmul(x, weight: quantised.rows(2..<3), into: y3)
        #expect(try backend.read(y3) == [y1Values[2], y1Values[5]])
    }

    @Test func addSameShapeAndBroadcast() throws {
        let a = try tensor([2, 3], [1, 2, 3, 4, 5, 6])
        let b = try tensor([2, 3], [10, 20, 30, 40, 50, 60])
        let out = try backend.makeTensor(shape: [2, 3])
        backend.add(a, b, into: out)
        #expect(try backend.read(out) == [11, 22, 33, 44, 55, 66])

        // A one-row bias (1-D, as in GGUF) is added to every row, in place.
        let bias = try weight(.f32, [3], f32Bytes([0.5, -1, 2]))
        backend.add(a, bias, into: a)
        #expect(try backend.read(a) == [1.5, 1, 5, 4.5, 4, 8])
    }

    @Test func rmsNorm() throws {
        // mean(x²) = 4, so x / 2 · w.
        let x = try tensor([2, 4], [2, -2, 2, -2, 1, 1, 1, 1])
        let w = try weight(.f32, [4], f32Bytes([1, 2, 3, 4]))
        let out = try backend.makeTensor(shape: [2, 4])
        backend.rmsNorm(x, weight: w, epsilon: 0, into: out)
        expectClose(try backend.read(out), [1, -2, 3, -4, 1, 2, 3, 4])
        // epsilon 3: 1 / sqrt(1 + 3) = 0.5; in place.
        let ones = try tensor([1, 2], [1, -1])
        let unit = try tensor([2], [1, 1])
        backend.rmsNorm(ones, weight: unit, epsilon: 3, into: ones)
        expectClose(try backend.read(ones), [0.5, -0.5])
        // Scale-invariant: [3, 4] → [3, 4] / sqrt(12.5).
        let v = try tensor([1, 2], [3, 4])
        backend.rmsNorm(v, weight: unit, epsilon: 0, into: v)
        expectClose(try backend.read(v), [Float(3 / 12.5.squareRoot()), Float(4 / 12.5.squareRoot())])
    }

    @Test(arguments: RoPELayout.allCases)
    func ropeAtPositionZeroIsIdentity(_ layout: RoPELayout) throws {
        let values: [Float] = (0..<16).map { Float($0) - 7.5 }
        let x = try tensor([2, 8], values)
        backend.rope(x.rows(0..<1), headDim: 4, ropeDim: 4, startPosition: 0, freqBase: 10000, layout: layout)
        #expect(try backend.read(x) == values)
    }

    @Test func ropeAdjacentPairs() throws {
        // Two heads of 4, rows at positions 3 and 4; pair j is (2j, 2j+1), θ_j = p · 100^(-2j/4).
        let x = try tensor(
            [2, 8],
            [
                1, 0, 1, 0, 0, 2, 0, 2,
                1, 0, 1, 0, 0, 2, 0, 2,
            ])
        backend.rope(x, headDim: 4, ropeDim: 4, startPosition: 3, freqBase: 100, layout: .adjacentPairs)
        var expected: [Float] = []
        for p in [3.0, 4.0] {
            let t0 = p
            let t1 = p / 10
            expected += [cos(t0), sin(t0), cos(t1), sin(t1)].map { Float($0) }
            expected += [-2 * sin(t0), 2 * cos(t0), -2 * sin(t1), 2 * cos(t1)].map { Float($0) }
        }
        expectClose(try backend.read(x), expected)
    }

    @Test func ropeHalfSplit() throws {
        // Pairs (j, j + 2); elements past ropeDim 4 of the 6-wide head are left alone.
        let x = try tensor([1, 6], [1, 1, 0, 0, 5, 6])
        backend.rope(x, headDim: 6, ropeDim: 4, startPosition: 2, freqBase: 10000, layout: .halfSplit)
        let t0 = 2.0
        let t1 = 2.0 / 100
        expectClose(try backend.read(x), [cos(t0), cos(t1), sin(t0), sin(t1), 5, 6].map { Float($0) })
    }

    @Test func ropeLeavesTailOfEachHeadAlone() throws {
        let x = try tensor([1, 8], [1, 0, 7, 8, 1, 0, 9, 10])
        backend.rope(x, headDim: 4, ropeDim: 2, startPosition: 1, freqBase: 10000, layout: .adjacentPairs)
        let c = Float(cos(1.0))
        let s = Float(sin(1.0))
        expectClose(try backend.read(x), [c, s, 7, 8, c, s, 9, 10])
    }

    @Test func swiglu() throws {
        let gate = try tensor([1, 3], [0, 1, -1])
        let up = try tensor([1, 3], [2, 3, 4])
        backend.swiglu(gate: gate, up: up, into: gate)
        let sigmoid = { (x: Double) in 1 / (1 + exp(-x)) }
        expectClose(try backend.read(gate), [0, Float(3 * sigmoid(1)), Float(-4 * sigmoid(-1))])
    }

    @Test func copyRows() throws {
        let cache = try backend.makeTensor(shape: [4, 2])
        backend.copyRows(try tensor([2, 2], [1, 2, 3, 4]), into: cache, atRow: 1)
        #expect(try backend.read(cache) == [0, 0, 1, 2, 3, 4, 0, 0])
        // Into a view: row 0 of rows 3..<4 is row 3.
        backend.copyRows(try tensor([1, 2], [5, 6]), into: cache.rows(3..<4), atRow: 0)
        #expect(try backend.read(cache) == [0, 0, 1, 2, 3, 4, 5, 6])
    }

    @Test func softmaxAndLogSoftmax() throws {
        // Softmax of [0, ln 2] is [1/3, 2/3]; a row shifted by 1000 must not overflow.
        let ln2 = Float(log(2.0))
        let e = exp(0.5)
        let x = try tensor([2, 2], [0, ln2, 1000, 1000.5])
        let out = try backend.makeTensor(shape: [2, 2])
        backend.softmax(x, into: out)
        expectClose(try backend.read(out), [1.0 / 3, 2.0 / 3, Float(1 / (1 + e)), Float(e / (1 + e))])
        backend.logSoftmax(x, into: x)
        let expected = [log(1.0 / 3), log(2.0 / 3), -log(1 + e), 0.5 - log(1 + e)].map { Float($0) }
        expectClose(try backend.read(x), expected)
    }

    @Test func attentionWithOneKeyReturnsItsValue() throws {
        // Two query heads of 2 share the one KV head; only position 0 is visible.
        let q = try tensor([1, 4], [0.3, -2, 5, 1])
        let keys = try tensor([3, 2], [9, 9, 0, 0, 0, 0])
        let values = try tensor([3, 2], [1, 2, 100, 100, 100, 100])
        let out = try backend.makeTensor(shape: [1, 4])
        backend.attention(
            q: q, keys: keys, values: values, headCount: 2, headCountKV: 1,
            startPosition: 0, scale: 0.7, into: out)
        expectClose(try backend.read(out), [1, 2, 1, 2])
    }

    @Test func attentionIsCausalAndScaled() throws {
        // One head of 2. Position 1's key scores ln 3 against q = (1, 0): weights 1/4, 3/4 at row 1.
        let ln3 = Float(log(3.0))
        let q = try tensor([2, 2], [1, 0, 1, 0])
        let keys = try tensor([3, 2], [0, 0, 2 * ln3, 0, 50, 0])
        let values = try tensor([3, 2], [4, 8, 0, -4, 1000, 1000])
        let out = try backend.makeTensor(shape: [2, 2])
        backend.attention(
            q: q, keys: keys, values: values, headCount: 1, headCountKV: 1,
            startPosition: 0, scale: 0.5, into: out)
        // Row 0 sees only position 0; row 1 sees 0 and 1 but never 2.
        expectClose(try backend.read(out), [4, 8, 1, -1])

        // The same query as row 1 alone, at startPosition 1.
        let single = try backend.makeTensor(shape: [1, 2])
        backend.attention(
            q: q.rows(1..<2), keys: keys, values: values, headCount: 1, headCountKV: 1,
            startPosition: 1, scale: 0.5, into: single)
        expectClose(try backend.read(single), [1, -1])
    }

    @Test func attentionGroupsQueryHeads() throws {
        // 4 query heads over 2 KV heads of width 1: heads 0, 1 use KV head 0; heads 2, 3 KV head 1.
        let q = try tensor([1, 4], [1, 1, 1, 1])
        let keys = try tensor([2, 2], [0, 0, 0, 0])
        let values = try tensor([2, 2], [10, 20, 30, 40])
        let out = try backend.makeTensor(shape: [1, 4])
        backend.attention(
            q: q, keys: keys, values: values, headCount: 4, headCountKV: 2,
            startPosition: 1, scale: 1, into: out)
        // Equal scores: each head averages positions 0 and 1 of its KV head.
        expectClose(try backend.read(out), [20, 20, 30, 30])
    }
}
