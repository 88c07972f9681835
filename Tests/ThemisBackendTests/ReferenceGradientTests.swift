import BackendConformance
import Testing
import ThemisBackend

/// The reference backend's backward ops against finite differences of its own forward ops: the
/// ground truth every other backend's backward ops are compared with.
@Suite("reference backward ops")
struct ReferenceGradientTests {
    @Test(arguments: TrainingConformance.gradientCases)
    func gradientsMatchFiniteDifferences(_ c: GradientCase) throws {
        let nmse = try c.nmse(on: ReferenceBackend())
        print("[finite differences] \(c.name): NMSE \(nmse)")
        #expect(nmse <= c.tolerance, "\(c.name): NMSE \(nmse) against finite differences")
    }

    /// A wrong gradient is caught: the check is not one that always passes.
    @Test func aWrongGradientFails() throws {
        let c = try #require(TrainingConformance.gradientCases.first { $0.name.hasPrefix("swiglu") })
        var expected = try c.finiteDifferences()
        let right = try c.nmse(on: ReferenceBackend())
        expected[3] += 0.05
        var num = 0.0, den = 0.0
        for (e, f) in zip(expected, try c.finiteDifferences()) {
            num += (Double(e) - Double(f)) * (Double(e) - Double(f))
            den += Double(f) * Double(f)
        }
        #expect(right <= c.tolerance && num / den > c.tolerance * 10)
    }

    /// Dropout keeps about 1 - p of the elements, scaled by 1 / (1 - p), and the same seed gives the
    /// same mask.
    @Test func dropoutKeepsTheExpectedShare() throws {
        let b = ReferenceBackend()
        let x = try b.makeTensor(shape: [100, 100])
        b.write(Array(repeating: 1, count: 10_000), to: x)
        let y = try b.makeTensor(shape: [100, 100])
        b.dropout(x, probability: 0.25, seed: 42, into: y)
        let values = try b.read(y)
        let kept = values.filter { $0 != 0 }
        #expect(abs(Double(kept.count) / 10_000 - 0.75) < 0.02)
        #expect(kept.allSatisfy { abs($0 - 4 / 3) < 1e-6 })
        b.dropout(x, probability: 0.25, seed: 42, into: x)
        #expect(try b.read(x) == values)
        b.dropout(y, probability: 0.25, seed: 43, into: y)
        #expect(try b.read(y) != values)
    }
}
