import Foundation
import Testing
import ThemisBench

/// Every statistic against scipy's value on the vectors of `scripts/metric-reference.py`.
@Suite("statistics against scipy")
struct StatisticsTests {
    struct Case {
        var name: String
        var x: [Double], y: [Double]
        var pearson: Double?, spearman: Double?, kendallB: Double?, kendallC: Double?
        var ranks: [Double], mae: Double
    }

    /// A fixture that is missing or not shaped as `scripts/metric-reference.py` writes it.
    struct FixtureError: Error, CustomStringConvertible {
        var description: String
    }

    /// The fixture's top-level object, read once; a failure to read it fails the tests that use it.
    nonisolated(unsafe) private static let loadedReference: Result<[String: Any], any Error> = Result {
        guard let url = Bundle.module.url(forResource: "Fixtures/metric-reference", withExtension: "json") else {
            throw FixtureError(description: "missing Fixtures/metric-reference.json; run scripts/metric-reference.py")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
            throw FixtureError(description: "Fixtures/metric-reference.json is not a JSON object")
        }
        return object
    }

    static func reference() throws -> [String: Any] { try loadedReference.get() }

    /// `object[key]` as a `T`, or an error naming what is missing.
    static func field<T>(_ object: [String: Any], _ key: String, in name: String) throws -> T {
        guard let value = object[key] as? T else {
            throw FixtureError(description: "metric-reference.json: \(name).\(key) is missing or not a \(T.self)")
        }
        return value
    }

    private static let loadedCases: Result<[Case], any Error> = Result {
        let object = try reference()
        return try object.keys.sorted().compactMap { name in
            let c: [String: Any] = try field(object, name, in: "the top level")
            guard let x = c["x"] as? [Double], let y = c["y"] as? [Double] else { return nil }
            return Case(name: name, x: x, y: y, pearson: c["pearson"] as? Double, spearman: c["spearman"] as? Double,
                        kendallB: c["kendall_b"] as? Double, kendallC: c["kendall_c"] as? Double,
                        ranks: try field(c, "ranks_x", in: name), mae: try field(c, "mae", in: name))
        }
    }

    static func cases() throws -> [Case] { try loadedCases.get() }

    static func caseNames() throws -> [String] { try cases().map(\.name) }

    static func close(_ a: Double?, _ b: Double?, _ tolerance: Double = 1e-9) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case let (a?, b?): return abs(a - b) <= tolerance
        default: return false
        }
    }

    @Test(arguments: try caseNames()) func matchesScipy(_ name: String) throws {
        let cases = try Self.cases()
        let c = try #require(cases.first(where: { $0.name == name }))
        #expect(Self.close(Statistics.pearson(c.x, c.y), c.pearson), "pearson \(String(describing: Statistics.pearson(c.x, c.y)))")
        #expect(Self.close(Statistics.spearman(c.x, c.y), c.spearman))
        #expect(Self.close(Statistics.kendall(c.x, c.y, variant: .b), c.kendallB),
                "tau-b \(String(describing: Statistics.kendall(c.x, c.y, variant: .b))) vs \(String(describing: c.kendallB))")
        #expect(Self.close(Statistics.kendall(c.x, c.y, variant: .c), c.kendallC))
        #expect(Statistics.averageRanks(c.x) == c.ranks)
        #expect(Self.close(Statistics.meanAbsoluteError(c.x, c.y), c.mae))
    }

    @Test func constantInputIsUndefinedNotNaN() {
        let x = [3.0, 3, 3, 3], y = [1.0, 2, 3, 4]
        #expect(Statistics.pearson(x, y) == nil)
        #expect(Statistics.spearman(x, y) == nil)
        #expect(Statistics.kendall(x, y) == nil)
        #expect(Statistics.undefinedReason(x, y) == "undefined: the predictions are constant")
        #expect(Statistics.undefinedReason(y, x) == "undefined: the labels are constant")
        #expect(Statistics.pearson([1], [2]) == nil)
        #expect(Statistics.mean([]) == nil)
    }

    @Test func quantilesMatchNumpy() throws {
        let reference = try Self.reference()
        let q = try #require(reference["quantiles"] as? [String: Any])
        let values = try #require(q["values"] as? [Double])
        let sorted = values.sorted()
        let ps = try #require(q["q"] as? [Double])
        let expectedValues = try #require(q["expected"] as? [Double])
        for (p, expected) in zip(ps, expectedValues) {
            #expect(Self.close(Statistics.quantile(sorted: sorted, p), expected))
        }
    }

    @Test func agreementAndMAEByHand() throws {
        let predicted = [1.0, 2, 3, 5, 4], truth = [1.0, 3, 5, 5, 2]
        // |d| = 0, 1, 2, 0, 2: Agr(2,2) scores 1, 1/4, 0, 1, 0
        #expect(Statistics.agreement(predicted, truth, p: 2, q: 2) == 0.45)
        // Agr(3,1) scores 1, 1/2, 1/3, 1, 1/3
        let agreement31 = try #require(Statistics.agreement(predicted, truth, p: 3, q: 1))
        #expect(abs(agreement31 - (1 + 0.5 + 1.0 / 3 + 1 + 1.0 / 3) / 5) < 1e-12)
        // Agr(1, q) is exact accuracy
        #expect(Statistics.agreement(predicted, truth, p: 1, q: 2) == Statistics.accuracy(predicted, truth))
        #expect(Statistics.accuracy(predicted, truth) == 0.4)
        #expect(Statistics.meanAbsoluteError(predicted, truth) == 1.0)
    }

    /// The paper's Table 4 (Alignbench, single-answer grading): z-values of the nine rows.
    @Test func zValuesReproduceThePapersTable4() throws {
        let agr = [0.559, 0.484, 0.791, 0.522, 0.560, 0.697, 0.510, 0.449, 0.689]
        let printed = [-0.223, -0.876, 1.799, -0.545, -0.214, 0.980, -0.650, -1.181, 0.910]
        let z = try #require(Statistics.zValues(agr))
        for (a, b) in zip(z, printed) { #expect(abs(a - b) < 2e-3, "\(a) vs \(b)") }
        #expect(Statistics.zValues([0.5, 0.5]) == nil)
    }

    /// The paper's Figure 1: Pearson's R of per-scenario Agr(2,2) against the mean human label is
    /// 0.822 (Alignbench) and 0.426 (SynUI); Table 4's rounded rows give the same to 3e-3.
    @Test func pearsonReproducesThePapersFigure1() throws {
        let alignbench = Statistics.pearson([0.484, 0.791, 0.522, 0.560, 0.697, 0.510, 0.449, 0.689],
                                            [2.785, 3.659, 2.444, 2.962, 3.311, 2.720, 3.045, 3.255])
        let synUI = Statistics.pearson([0.548, 0.616, 0.433, 0.659, 0.566, 0.538, 0.556, 0.702, 0.653, 0.623],
                                       [2.929, 3.609, 3.500, 3.653, 3.152, 3.210, 3.451, 3.645, 3.377, 3.837])
        #expect(abs(try #require(alignbench) - 0.822) < 3e-3)
        #expect(abs(try #require(synUI) - 0.426) < 3e-3)
    }

    /// The Fenwick-tree count against the pairwise definition, on random data with many ties.
    @Test func kendallMatchesThePairwiseDefinition() {
        var rng = TestGenerator(state: 1)
        for _ in 0..<5 {
            let x = (0..<300).map { _ in Double(rng.next() % 5) }
            let y = x.map { $0 + Double(rng.next() % 4) }
            var s = 0.0, xTies = 0.0, yTies = 0.0
            for i in x.indices {
                for j in x.indices where j > i {
                    let dx = x[i] - x[j], dy = y[i] - y[j]
                    s += Double((dx > 0 ? 1 : dx < 0 ? -1 : 0) * (dy > 0 ? 1 : dy < 0 ? -1 : 0))
                    if dx == 0 { xTies += 1 }
                    if dy == 0 { yTies += 1 }
                }
            }
            let n0 = Double(x.count * (x.count - 1) / 2)
            #expect(Self.close(Statistics.kendall(x, y), s / ((n0 - xTies) * (n0 - yTies)).squareRoot(), 1e-12))
        }
    }
}

/// A seeded generator for test data (a 64-bit LCG; the high bits are used).
struct TestGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33
    }
}
