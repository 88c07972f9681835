import BackendConformance
import CPUBackend
import Testing
import ThemisBackend

/// Every conformance case on the CPU backend, with one thread and with two (the pool's paths),
/// with f32 decode activations (the multi-row decode kernel), and with the portable Swift
/// one-token dots instead of the C byte dots (where this build has those).
@Suite("CPU backend conformance", .serialized)
struct CPUConformanceTests {
    static let twoThreads = CPUBackend(threads: 2)
    static let oneThread = CPUBackend(threads: 1)
    static let f32Decode = CPUBackend(threads: 2, roundDecodeActivations: false)
    static let swiftDots = CPUBackend(threads: 2, byteDots: false)

    @Test(arguments: Conformance.cases)
    func matchesReference(_ c: ConformanceCase) throws {
        for (name, backend) in [("2 threads", Self.twoThreads), ("1 thread", Self.oneThread), ("f32 decode", Self.f32Decode),
                                ("Swift dots", Self.swiftDots)] {
            let nmse = try c.nmse(on: backend)
            #expect(nmse <= c.tolerance, "\(c.name) on \(name): NMSE \(nmse) > \(c.tolerance)")
        }
    }

    /// The byte dots and the Swift dots sum the same integers per block: their results differ only
    /// by the order of float additions (and the scalar offset terms), far inside the conformance
    /// tolerance. Where this build has no byte dots both backends run the Swift path.
    @Test(arguments: [StorageType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4K, .q5K, .q6K])
    func byteDotsAgreeWithSwiftDots(_ type: StorageType) throws {
        print("[byte dots] \(type): \(Self.twoThreads.usesByteDots ? "C byte multiply-adds" : "none in this build")")
        let k = 4864, m = 37
        var r = Inputs(seed: 1234 &+ UInt64(type.rawValue))
        let box = ByteBox(r.weightBytes(type, rows: m, k: k))
        var results: [[Float]] = []
        for b in [Self.twoThreads, Self.swiftDots] {
            let w = try b.makeWeight(type: type, shape: [m, k], bytes: UnsafeRawBufferPointer(box.bytes))
            let x = try b.makeTensor(shape: [1, k])
            var xr = Inputs(seed: 99)
            b.write(xr.floats(k), to: x)
            let y = try b.makeTensor(shape: [1, m])
            b.matmul(x, weight: w, into: y)
            results.append(try b.read(y))
        }
        let scale = results[1].map { abs($0) }.max() ?? 1
        for i in 0..<m {
            #expect(abs(results[0][i] - results[1][i]) <= 1e-4 * scale, "\(type) row \(i): \(results[0][i]) vs \(results[1][i])")
        }
        withExtendedLifetime(box) {}
    }

    /// A prompt's rows through the byte GEMM (where this build has it) equal each row alone through
    /// the one-token dots: the 32-element formats round every row alike (a scale per 32), so the
    /// integer block sums are the same and only the order of float adds differs. The K-quants'
    /// one-token rows take one scale per 256 instead, and prompts without the byte GEMM stay in
    /// f32: a different rounding, so NMSE as in the conformance cases. 21 rows: full tiles (of 6
    /// with AVX-512, 3 with AVX2) and a remainder; 37 weight rows: two full panels of 16 and a
    /// partial one.
    @Test(arguments: [StorageType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4K, .q5K, .q6K])
    func promptRowsEqualLoneRows(_ type: StorageType) throws {
        let b = Self.twoThreads
        let k = 1024, m = 37, n = 21
        let (together, alone) = try Self.rowsTogetherAndAlone(b, type, k: k, m: m, n: n, seed: 4321)
        let scale = alone.map { abs($0) }.max() ?? 1
        print("[byte GEMM] \(type): \(b.roundsPromptRows(of: type) ? "prompt rows rounded to bytes" : "prompt rows in f32")")
        if type.blockSize == 32 && b.roundsPromptRows(of: type) {
            for j in 0..<(n * m) {
                #expect(abs(together[j] - alone[j]) <= 1e-5 * scale, "\(type) row \(j / m) column \(j % m): \(together[j]) vs \(alone[j])")
            }
        } else {
            var num = 0.0, den = 0.0
            for (a, e) in zip(together, alone) { num += Double(a - e) * Double(a - e); den += Double(e) * Double(e) }
            #expect(num / den < 2e-4, "\(type): NMSE \(num / den) between prompt rows and lone rows")
        }
    }

    @Test(arguments: TrainingConformance.cases)
    func backwardMatchesReference(_ c: ConformanceCase) throws {
        for backend in [Self.twoThreads, Self.oneThread] {
            let nmse = try c.nmse(on: backend)
            #expect(nmse <= c.tolerance, "\(c.name) on \(backend.device.computeUnits) threads: NMSE \(nmse) > \(c.tolerance)")
        }
    }

    /// Each backward op against finite differences of the reference forward op.
    @Test(arguments: TrainingConformance.gradientCases)
    func gradientsMatchFiniteDifferences(_ c: GradientCase) throws {
        let nmse = try c.nmse(on: Self.twoThreads)
        print("[finite differences] \(c.name): NMSE \(nmse)")
        #expect(nmse <= c.tolerance, "\(c.name): NMSE \(nmse) against finite differences")
    }

    /// With f32 decode activations, a row decoded with others gets exactly the numbers it gets
    /// alone: a server's batched answers then equal a lone request's.
    @Test(arguments: StorageType.allCases)
    func batchedDecodeRowsEqualLoneRows(_ type: StorageType) throws {
        let k = type.blockSize > 32 ? 512 : 96, m = 21
        for n in [2, 4, 5, 8] {
            let (together, alone) = try Self.rowsTogetherAndAlone(Self.f32Decode, type, k: k, m: m, n: n, seed: 77 &+ UInt64(n))
            #expect(together == alone, "\(type): \(n) rows together differ from each alone")
        }
    }

    /// `x · wᵀ` for `n` random rows of `k` at once, and each row on its own (concatenated).
    static func rowsTogetherAndAlone(_ b: CPUBackend, _ type: StorageType, k: Int, m: Int, n: Int,
                                     seed: UInt64) throws -> (together: [Float], alone: [Float]) {
        var r = Inputs(seed: seed &+ UInt64(type.rawValue))
        let box = ByteBox(r.weightBytes(type, rows: m, k: k))
        defer { withExtendedLifetime(box) {} }
        let w = try b.makeWeight(type: type, shape: [m, k], bytes: UnsafeRawBufferPointer(box.bytes))
        let values = r.floats(n * k)
        let x = try b.makeTensor(shape: [n, k])
        b.write(values, to: x)
        let y = try b.makeTensor(shape: [n, m])
        b.matmul(x, weight: w, into: y)
        let together = try b.read(y)
        try #require(together.count >= n * m, "\(type): \(together.count) values for \(n) rows of \(m)")
        var alone: [Float] = []
        for i in 0..<n {
            let xi = try b.makeTensor(shape: [1, k])
            b.write(Array(values[i * k..<(i + 1) * k]), to: xi)
            let yi = try b.makeTensor(shape: [1, m])
            b.matmul(xi, weight: w, into: yi)
            alone += try b.read(yi)
        }
        return (Array(together.prefix(n * m)), alone)
    }
}
