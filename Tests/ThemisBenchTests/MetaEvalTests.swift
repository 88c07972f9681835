import Foundation
import Testing
import ThemisJudge
import ThemisBench

/// Joining predictions with labels, the report's metrics, the aggregate and the renderers.
@Suite("meta-evaluation")
struct MetaEvalTests {
    static func file(_ name: String, _ lines: [String]) throws -> String {
        let path = NSTemporaryDirectory() + "themis-metaeval-\(UUID().uuidString)-\(name)"
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func rating(_ id: String, _ rating: Int, label: Int? = nil, scenario: String = "close_qa", mode: String = "single") -> String {
        var s = #"{"id": "\#(id)", "status": "ok", "parse_status": "ok", "mode": "\#(mode)", "scenario": "\#(scenario)", "rating": \#(rating)"#
        if let label { s += #", "label": \#(label)"# }
        return s + "}"
    }

    static func evaluate(_ lines: [String], labels: [String]? = nil, options: MetaEvalOptions = MetaEvalOptions(),
                         join: JoinOptions = JoinOptions()) throws -> MetaEvalReport {
        let data = try MetaEvalInput.join(predictions: [file("p.jsonl", lines)], labels: try labels.map { try file("l.jsonl", $0) },
                                          options: join)
        return try MetaEvaluation.evaluate(data, options: options)
    }

    @Test func ratingsAndTheAggregateByHand() throws {
        // ratings 1 2 3 5 4 against labels 1 3 5 5 2: MAE 1, Agr(2,2) 0.45 (see StatisticsTests)
        let lines = zip([1, 2, 3, 5, 4], [1, 3, 5, 5, 2]).enumerated().map { Self.rating("r\($0)", $1.0, label: $1.1) }
        var options = MetaEvalOptions()
        options.bootstrapSamples = 200
        let report = try Self.evaluate(lines, options: options)
        let r = try #require(report.overall.ratings)
        #expect(r.mae == 1.0 && r.agr == 0.45 && r.accuracy == 0.4)
        try #require(r.confusion.count > 4 && r.confusion.allSatisfy { $0.count > 4 }, "confusion \(r.confusion)")
        #expect(r.confusion[2][2] == 0 && r.confusion[4][4] == 1 && r.confusion[4][2] == 1)
        // random judge: E|k - y| over k = 1...5 is 2, 1.2, 2, 2, 1.4 for the labels, mean 1.72;
        // E Agr(2,2) is 0.25, 0.3, 0.25, 0.25, 0.3, mean 0.27
        let mae = try #require(report.aggregate.components.first { $0.metric == "mae" })
        let agr = try #require(report.aggregate.components.first { $0.metric == "agr" })
        #expect(abs(mae.random - 1.72) < 1e-12 && abs(agr.random - 0.27) < 1e-12)
        #expect(abs(mae.rescaled - (1.72 - 1) / 1.72) < 1e-12)
        #expect(abs(agr.rescaled - 0.18 / 0.73) < 1e-12)
        let score = try #require(report.aggregate.score)
        #expect(abs(score - ((1.72 - 1) / 1.72 + 0.18 / 0.73) / 2) < 1e-12)
        #expect(report.aggregate.components.count == 2)
        // the intervals hold the point estimate and are seeded
        let interval = try #require(report.intervals["agr"])
        #expect(interval.low <= 0.45 && 0.45 <= interval.high)
        let again = try Self.evaluate(lines, options: options)
        let againAgr = try #require(again.intervals["agr"])
        let againMAE = try #require(again.intervals["mae"])
        let reportMAE = try #require(report.intervals["mae"])
        #expect(againAgr.low == interval.low && againMAE.high == reportMAE.high)
    }

    @Test func aPerfectJudgeScoresOneAndConstantRatingsSayUndefined() throws {
        let perfect = (1...5).map { (i: Int) in Self.rating("p\(i)", i, label: i) }
        let report = try Self.evaluate(perfect)
        #expect(report.aggregate.score == 1)
        let ratings = try #require(report.overall.ratings)
        let pearson = try #require(ratings.pearson)
        #expect(abs(pearson - 1) < 1e-12)
        let constant = (1...5).map { (i: Int) in Self.rating("c\(i)", 3, label: i) }
        let flat = try Self.evaluate(constant)
        #expect(flat.overall.ratings?.pearson == nil)
        #expect(flat.overall.ratings?.notes["pearson"] == "undefined: the predictions are constant")
        #expect(flat.markdown.contains("| Pearson r | undefined |"))
        #expect(flat.markdown.contains("pearson: undefined: the predictions are constant"))
        let jsonObject = try JSONSerialization.jsonObject(with: flat.jsonData())
        let json = try #require(jsonObject as? [String: Any])
        let overall = try #require(json["overall"] as? [String: Any])
        #expect(overall["pearson"] is NSNull)
        #expect(!String(decoding: try flat.jsonData(), as: UTF8.self).contains("NaN"))
    }

    @Test func unmatchedMalformedDuplicateAndInvalidLabelsAreCounted() throws {
        let predictions = [Self.rating("a", 3), Self.rating("b", 4), "{not json", Self.rating("c", 2), Self.rating("c", 5),
                           Self.rating("d", 5)]
        let labels = [#"{"id": "b", "label": 4}"#, #"{"id": "c", "label": 7}"#, #"{"id": "d", "label": 5}"#,
                      #"{"id": "e", "label": 1}"#, #"{"id": "f", "label": 2}"#]
        let data = try MetaEvalInput.join(predictions: [Self.file("p.jsonl", predictions)], labels: Self.file("l.jsonl", labels),
                                          options: JoinOptions())
        #expect(data.predictionsRead == 5 && data.labelsRead == 5)
        #expect(data.matched == 2)
        #expect(data.unmatchedPredictions == ["a"])
        #expect(data.unmatchedLabels == ["e", "f"])
        #expect(data.malformedLines == 1 && data.duplicateKeys == 1 && data.invalidLabels == 1)
        #expect(data.problems.contains { $0.contains("line 3: not a JSON object") })
        #expect(data.problems.contains { $0.contains("(c): label 7 is outside the scale 1-5") })
        let report = try MetaEvaluation.evaluate(data, options: MetaEvalOptions())
        let overall = try #require(report.json["overall"] as? [String: Any])
        #expect(overall["matched"] as? Int == 2 && overall["unmatched"] as? Int == 3)
    }

    @Test func nothingMatchedAndEmptyInputThrow() throws {
        #expect(throws: MetaEvalError.self) { try Self.evaluate([Self.rating("a", 3)], labels: [#"{"id": "z", "label": 3}"#]) }
        let empty = try MetaEvalInput.join(predictions: [Self.file("empty.jsonl", [])], labels: nil, options: JoinOptions())
        #expect(empty.predictionsRead == 0)
        #expect(throws: MetaEvalError.self) { try MetaEvaluation.evaluate(empty, options: MetaEvalOptions()) }
    }

    @Test func perScenarioZValuesAndASingleScenario() throws {
        var lines: [String] = []
        for (s, pairs) in [("close_qa", [(3, 3), (2, 4)]), ("open_qa", [(5, 5), (4, 4)]), ("math_qa", [(1, 3), (2, 2), (5, 1)])] {
            for (i, p) in pairs.enumerated() { lines.append(Self.rating("\(s)-\(i)", p.0, label: p.1, scenario: s)) }
        }
        let report = try Self.evaluate(lines)
        // Agr(2,2): close 0.5, open 1, math (0 + 1 + 0)/3, all (1 + 0 + 1 + 1 + 0 + 1 + 0)/7
        let rows = [4.0 / 7, 1.0 / 3, 0.5, 1.0]
        let z = try #require(Statistics.zValues(rows))
        try #require(z.count > 3)
        let mathZ = try #require(report.byScenario["math_qa"]?.z)
        let closeZ = try #require(report.byScenario["close_qa"]?.z)
        let openZ = try #require(report.byScenario["open_qa"]?.z)
        #expect(abs(mathZ - z[1]) < 1e-12)
        #expect(abs(closeZ - z[2]) < 1e-12)
        #expect(abs(openZ - z[3]) < 1e-12)
        let single = try Self.evaluate(Array(lines.prefix(2)))
        let singleClose = try #require(single.byScenario["close_qa"])
        #expect(single.byScenario.count == 1 && singleClose.z == nil)
        #expect(single.markdown.contains("z: undefined with a single scenario"))
    }

    @Test func referenceMinusSingleFromTwoRuns() throws {
        let singleRun = try Self.file("single.jsonl", [Self.rating("x", 3, label: 4), Self.rating("y", 1, label: 3)])
        let referenceRun = try Self.file("reference.jsonl", [Self.rating("x", 4, label: 4, mode: "reference"),
                                                             Self.rating("y", 2, label: 3, mode: "reference")])
        let data = try MetaEvalInput.join(predictions: [singleRun, referenceRun], labels: nil, options: JoinOptions())
        let report = try MetaEvaluation.evaluate(data, options: MetaEvalOptions())
        #expect(report.byMode.keys.sorted() == ["reference", "single"])
        let all = try #require(report.referenceMinusSingle.first { $0.scenario == "all" })
        // single: 0.25, 0 -> 0.125; reference: 1, 0.25 -> 0.625
        #expect(all.single == 0.125 && all.reference == 0.625 && all.delta == 0.5)
        #expect(report.aggregate.components.filter { $0.metric == "agr" }.count == 2)
    }

    static func pair(_ id: String, ab: String, ba: String, label: String, a: String = "short", b: String = "a longer one") -> String {
        let verdict = ab == ba ? ab : "tie"
        return #"{"id": "\#(id)", "status": "ok", "parse_status": "ok", "mode": "pairwise", "scenario": "open_qa", "verdict": "\#(verdict)", "#
            + #""verdicts_by_order": {"ab": "\#(ab)", "ba": "\#(ba)"}, "consistent": \#(ab == ba), "label": \#(label), "#
            + #""response_a": "\#(a)", "response_b": "\#(b)"}"#
    }

    @Test func pairMetrics() throws {
        let lines = [
            Self.pair("1", ab: "A", ba: "A", label: "\"A\""),    // consistent, right
            Self.pair("2", ab: "B", ba: "B", label: "\"A\""),    // consistent, wrong
            Self.pair("3", ab: "A", ba: "B", label: "\"B\""),    // inconsistent: tie; both first-position
            Self.pair("4", ab: "B", ba: "B", label: "\"tie\""),  // label tie
            Self.pair("5", ab: "B", ba: "B", label: "\"B\""),    // right
        ]
        let report = try Self.evaluate(lines)
        let p = try #require(report.overall.pairs)
        #expect(p.n == 5)
        #expect(p.accuracyWithTies == 2.0 / 5)
        #expect(p.nWithoutTies == 3 && p.accuracyWithoutTies == 2.0 / 3)
        #expect(p.nBothOrders == 5 && p.positionConsistency == 4.0 / 5)
        // first shown: ab A (1, 3), ba B (2, 3, 4, 5) -> 6 of 10
        #expect(p.nOrderVerdicts == 10 && p.firstPositionPreference == 0.6)
        // B is the longer response: verdicts 2, 4, 5 pick it of the 4 non-tie verdicts
        #expect(p.nLengthDecided == 4 && p.longerPreference == 0.75)
        try #require(p.confusion.count > 2, "confusion \(p.confusion)")
        #expect(p.confusion[0] == [1, 1, 0] && p.confusion[1] == [0, 1, 1] && p.confusion[2] == [0, 1, 0])
        let agg = report.aggregate.components.map(\.metric)
        #expect(agg == ["accuracy_with_ties", "position_consistency"])
        // numeric labels need the option, and say so
        let numeric = [Self.pair("1", ab: "A", ba: "A", label: "1")]
        let data = try MetaEvalInput.join(predictions: [Self.file("n.jsonl", numeric)], labels: nil, options: JoinOptions())
        #expect(data.matched == 0 && data.problems.first?.contains("--numeric-pair-labels") == true)
        var join = JoinOptions()
        join.numericPairLabels = true
        #expect(try Self.evaluate(numeric, join: join).overall.pairs?.accuracyWithTies == 1)
    }

    @Test func htmlIsSelfContainedWithThreeCharts() throws {
        var lines: [String] = []
        for i in 0..<20 {
            lines.append(#"{"id": "h\#(i)", "status": "ok", "mode": "single", "scenario": "\#(i % 2 == 0 ? "close_qa" : "open_qa")", "rating": \#(1 + i % 5), "expected_score": \#(1.5 + Double(i % 4)), "label": \#(1 + (i / 2) % 5)}"#)
        }
        let html = try Self.evaluate(lines).html(title: "test <report>")
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<svg ").count - 1 == 3)
        #expect(html.contains("test &lt;report&gt;"))
        // nothing loaded from elsewhere: no script, no src or href
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("href="))
    }

    @Test func bundledBenchmarksCarryTheirLicences() throws {
        let llmbar = try #require(JudgeBenchmark.builtIn.first { $0.name == "llmbar-natural" })
        let records = try llmbar.records()
        #expect(records.count == 100 && records.allSatisfy { $0.readError == nil })
        #expect(records.filter { $0.fields["label"]?.int == 1 }.count == 42)
        let dir = URL(fileURLWithPath: llmbar.labelsPath).deletingLastPathComponent()
        for name in ["LICENSES/LLMBar-LICENSE", "LICENSES/FastChat-LICENSE", "README.md"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path), "\(name)")
        }
        let mtbench = try JudgeBenchmark.resolve("mtbench-human", fields: nil, numericPairLabels: false).records()
        #expect(mtbench.count == 200)
        // every pair's input is the first turn of an MT-Bench question, so every pair gets a scenario
        let counts = Dictionary(grouping: mtbench, by: { $0.fields["category"]?.string ?? "none" }).mapValues(\.count)
        #expect(counts == ["humanities": 34, "roleplay": 33, "extraction": 27, "stem": 25, "writing": 24, "coding": 22,
                           "reasoning": 20, "math": 15])
        let catalogue = try ScenarioCatalogue.bundled()
        #expect(mtbench.allSatisfy { catalogue.scenario(named: $0.fields["scenario"]?.string ?? "") != nil })
        #expect(throws: MetaEvalError.self) { try JudgeBenchmark.resolve("no-such-benchmark", fields: nil, numericPairLabels: false) }
    }
}
