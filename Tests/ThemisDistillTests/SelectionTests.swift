import Foundation
import Testing
import ThemisDistill

@Suite("distillation: selection, augmentation, de-duplication")
struct SelectionTests {
    static func candidates(_ scores: [Int: Int], scenario: String = "open_qa") -> [Candidate] {
        var out: [Candidate] = []
        for (score, count) in scores.sorted(by: { $0.key < $1.key }) {
            for i in 0..<count {
                out.append(Candidate(id: "\(scenario)-\(score)-\(i)", scenario: scenario, score: score, ifd: 0.5 + Double(i % 40) / 100))
            }
        }
        return out
    }

    @Test func balancingKeepsEveryScoreUnderItsCap() throws {
        // score 4 is 56% of the data, as in the paper's first Themis
        let records = Self.candidates([1: 30, 2: 60, 3: 100, 4: 280, 5: 30])
        var rules = SelectionRules()
        rules.maxScoreShare = 0.3
        let result = Selector.select(records, rules: rules)
        let keptScores = try result.kept.map { candidate in try #require(candidate.score, "\(candidate.id) has no score") }
        let counts = Dictionary(grouping: keptScores, by: { $0 }).mapValues(\.count)
        let total = result.kept.count
        for (score, n) in counts { #expect(Double(n) <= 0.3 * Double(total) + 1e-9, "score \(score): \(n) of \(total)") }
        #expect(counts[1] == 30 && counts[5] == 30, "rare scores are all kept: \(counts)")
        #expect(result.kept.count + result.dropped.count == records.count)
        #expect(result.dropped.contains { $0.reason.contains("score 4 above its 30% share") })
        // two scores cannot each stay under 30%: they end equal
        let two = Selector.select(Self.candidates([3: 10, 4: 40]), rules: rules)
        let twoScores = try two.kept.map { candidate in try #require(candidate.score, "\(candidate.id) has no score") }
        #expect(Dictionary(grouping: twoScores, by: { $0 }).mapValues(\.count) == [3: 10, 4: 10])
    }

    @Test func ifdStrategiesDropAndOrder() throws {
        var records = (0..<30).map { Candidate(id: "r\($0)", scenario: "math_qa", score: nil, ifd: 0.6 + Double($0 % 10) / 100) }
        records.append(Candidate(id: "over", scenario: "math_qa", score: nil, ifd: 1.2))
        records.append(Candidate(id: "none", scenario: "math_qa", score: nil, ifd: nil))
        var rules = SelectionRules()
        rules.maxScoreShare = nil
        rules.strategy = .ifd
        let result = Selector.select(records, rules: rules)
        #expect(!result.kept.contains { $0.id == "over" || $0.id == "none" })
        #expect(result.dropped.first { $0.id == "over" }?.reason == "IFD 1.200 >= 1")
        let keptIFDs = try result.kept.map { candidate in try #require(candidate.ifd, "\(candidate.id) has no IFD") }
        #expect(keptIFDs == keptIFDs.sorted(by: >))
        rules.total = 5
        #expect(Selector.select(records, rules: rules).kept.count == 5)
    }

    @Test func zScoreFilterDropsOutliersWithinTheirScenario() {
        // 40 records near 0.5 and one at 0.99 in math; the same 0.99 is ordinary in open_qa
        var records = (0..<40).map { Candidate(id: "m\($0)", scenario: "math_qa", score: nil, ifd: 0.5 + Double($0 % 5) / 100) }
        records.append(Candidate(id: "m-out", scenario: "math_qa", score: nil, ifd: 0.99))
        records += (0..<10).map { Candidate(id: "o\($0)", scenario: "open_qa", score: nil, ifd: 0.8 + Double($0) / 50) }
        records.append(Candidate(id: "o-high", scenario: "open_qa", score: nil, ifd: 0.99))
        var rules = SelectionRules()
        rules.maxScoreShare = nil
        rules.strategy = .ifdZ
        let result = Selector.select(records, rules: rules)
        #expect(result.dropped.contains { $0.id == "m-out" && $0.reason.contains("z-score above 3.0 in math_qa") })
        #expect(result.kept.contains { $0.id == "o-high" })
        rules.strategy = .ifd
        #expect(Selector.select(records, rules: rules).kept.first?.id == "m-out")
    }

    @Test func scaleMapping() throws {
        #expect((1...5).map { RatingScaleMapping.binary.map($0) } == [0, 0, 0, 1, 1])
        #expect((1...5).map { RatingScaleMapping.three.map($0) } == [1, 1, 2, 3, 3])
        #expect((1...5).map { RatingScaleMapping.ten.map($0) } == [1, 3, 6, 8, 10])
        #expect(RatingScaleMapping.ten.map(0) == nil && RatingScaleMapping.binary.map(6) == nil)
        for m in RatingScaleMapping.allCases {
            let mapped = try (1...5).map { rating in try #require(m.map(rating), "\(m) maps \(rating) to nil") }
            #expect(mapped.allSatisfy { m.range.contains($0) })
        }
    }

    @Test func regressionRederivesTheOverallScore() throws {
        // overall = 0.5 + 0.5·accuracy + 0.3·clarity + 0.1·style, plus small noise
        var rng = TestRNG(state: 3)
        func record() -> (criteria: [String: Double], overall: Double) {
            let a = Double(1 + rng.next() % 5), c = Double(1 + rng.next() % 5), s = Double(1 + rng.next() % 5)
            let noise = Double(Int(rng.next() % 3) - 1) * 0.05
            return (["accuracy": a, "clarity": c, "style": s], 0.5 + 0.5 * a + 0.3 * c + 0.1 * s + noise)
        }
        let train = (0..<200).map { _ in record() }, held = (0..<50).map { _ in record() }
        let fit = try #require(OverallScoreRegression.fit(train, criteria: ["accuracy", "clarity", "style"]))
        for (w, expected) in zip(fit.weights, [0.5, 0.5, 0.3, 0.1]) { #expect(abs(w - expected) < 0.03, "\(fit.weights)") }
        let mae = try #require(fit.meanAbsoluteError(held.map { ($0.criteria, $0.overall.rounded()) }, scale: 1...5))
        #expect(mae < 0.2, "held-out MAE \(mae)")
        // exact data is fitted exactly
        let exact = (0..<20).map { i -> (criteria: [String: Double], overall: Double) in
            let a = Double(i % 5 + 1), b = Double((i * 3) % 5 + 1)
            return (["a": a, "b": b], 1 + 2 * a - 0.5 * b)
        }
        let e = try #require(OverallScoreRegression.fit(exact, criteria: ["a", "b"]))
        let predicted = try #require(e.predict(["a": 2, "b": 4]))
        #expect(abs(predicted - 3) < 1e-9)
        // a criterion that never varies is collinear with the intercept
        #expect(OverallScoreRegression.fit(exact.map { (["a": $0.criteria["a"]!, "c": 3], $0.overall) }, criteria: ["a", "c"]) == nil)
    }

    @Test func instructionListsAreParsed() {
        let answer = """
            Here are the questions:
            1. What causes spring tides?
            2) **Question 2:** Why do tides repeat about every 24 hours and 50 minutes?
            *Explanation:*
            - *How does the Sun change the tides?*
            Thanks!
            """
        #expect(Synthesizer.parseList(answer) == [
            "What causes spring tides?", "Why do tides repeat about every 24 hours and 50 minutes?", "How does the Sun change the tides?",
        ])
    }

    @Test func deduplication() {
        let d = Deduplicator(n: 3, threshold: 0.6)
        let texts = [
            ("a", "Write a short poem about the sea at night."),
            ("b", "write a SHORT poem about the sea, at night!"),
            ("c", "Write a short poem about the sea at night, please."),
            ("d", "Explain how photosynthesis works in simple terms."),
            ("e", "Translate 'good morning' into French."),
        ]
        let (kept, dropped) = d.filter(texts.map { (id: $0.0, text: $0.1) })
        #expect(kept == ["a", "d", "e"])
        #expect(dropped.first { $0.id == "b" }?.reason == "duplicate of a (same text)")
        #expect(dropped.first { $0.id == "c" }?.reason.hasPrefix("duplicate of a (Jaccard") == true)
        #expect(Deduplicator.normalise("  Hello,   World! ") == "hello world")
        #expect(Deduplicator.jaccard(["x", "y"], ["y", "z"]) == 1.0 / 3)
    }
}

struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33
    }
}
