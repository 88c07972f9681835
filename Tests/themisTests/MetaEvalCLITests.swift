import Foundation
import Testing

/// `themis meta-eval` and `themis eval-judge` end to end: reports, bad input, exit statuses.
@Suite("command line: meta-eval", .serialized)
struct MetaEvalCLITests {
    static func write(_ name: String, _ lines: [String]) throws -> String {
        let path = NSTemporaryDirectory() + "themis-metaeval-cli-\(UUID().uuidString)-\(name)"
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func rating(_ id: String, _ rating: Int, scenario: String = "open_qa") -> String {
        #"{"id": "\#(id)", "status": "ok", "parse_status": "ok", "mode": "single", "scenario": "\#(scenario)", "rating": \#(rating)}"#
    }

    @Test func reportsTableJSONAndHTML() throws {
        let predictions = try Self.write("p.jsonl", (0..<12).map { Self.rating("r\($0)", 1 + $0 % 5, scenario: $0 % 3 == 0 ? "close_qa" : "open_qa") })
        let labels = try Self.write("l.jsonl", (0..<12).map { #"{"id": "r\#($0)", "label": \#(1 + ($0 + $0 / 4) % 5)}"# })
        let json = NSTemporaryDirectory() + "themis-metaeval-\(UUID().uuidString).json"
        let html = NSTemporaryDirectory() + "themis-metaeval-\(UUID().uuidString).html"
        let o = try CLI.run(["meta-eval", "--predictions", predictions, "--labels", labels, "--json", json, "--html", html])
        #expect(o.status == 0, "stderr: \(o.stderr)")
        #expect(o.stdout.contains("| Agr(2,2) |") && o.stdout.contains("## By scenario") && o.stdout.contains("## Aggregate"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        let overall = try #require(report["overall"] as? [String: Any])
        for key in ["n", "matched", "unmatched", "mae", "agr", "accuracy", "pearson", "spearman", "kendall_tau_b"] {
            #expect(overall[key] != nil, "overall lacks \(key)")
        }
        #expect((overall["agr"] as? [String: Any])?["p"] as? Double == 2)
        #expect((report["by_scenario"] as? [String: Any])?.keys.sorted() == ["close_qa", "open_qa"])
        #expect((report["aggregate"] as? [String: Any])?["score"] is Double)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.components(separatedBy: "<svg ").count - 1 == 3)
        // tau-c and another Agr by option
        let c = try CLI.run(["meta-eval", "--predictions", predictions, "--labels", labels, "--kendall", "c", "--agr-p", "3", "--agr-q", "1"])
        #expect(c.stdout.contains("Kendall τ-c") && c.stdout.contains("Agr(3,1)"), "\(c.stdout)")
    }

    @Test func differentIdsAreReportedAndNothingMatchedFails() throws {
        let predictions = try Self.write("p.jsonl", [Self.rating("a", 3), Self.rating("b", 4), "{oops"])
        let someLabels = try Self.write("l.jsonl", [#"{"id": "b", "label": 4}"#, #"{"id": "c", "label": 2}"#, #"{"id": "d", "label": 9}"#])
        let o = try CLI.run(["meta-eval", "--predictions", predictions, "--labels", someLabels])
        #expect(o.status == 0)
        #expect(o.stderr.contains("1 predictions have no label, e.g. a"), "\(o.stderr)")
        #expect(o.stderr.contains("2 labels have no prediction, e.g. c, d"), "\(o.stderr)")
        #expect(o.stderr.contains("line 3: not a JSON object"), "\(o.stderr)")
        #expect(o.stdout.contains("| 2 | 3 | 1 | 1 | 2 | 1 | 0 | 0 |"), "\(o.stdout)")

        let otherLabels = try Self.write("other.jsonl", [#"{"id": "x", "label": 4}"#, #"{"id": "y", "label": 2}"#])
        let none = try CLI.run(["meta-eval", "--predictions", predictions, "--labels", otherLabels])
        #expect(none.status == 1)
        #expect(none.stderr.contains("themis: error: no prediction could be matched with a label"), "\(none.stderr)")
        #expect(none.stdout.isEmpty)

        let outOfScale = try Self.write("scale.jsonl", [#"{"id": "a", "label": 7}"#])
        let bad = try CLI.run(["meta-eval", "--predictions", predictions, "--labels", outOfScale])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("label 7 is outside the scale 1-5"), "\(bad.stderr)")

        let missing = try CLI.run(["meta-eval", "--predictions", "/nonexistent/p.jsonl"])
        #expect(missing.status != 0 && missing.stderr.contains("cannot read /nonexistent/p.jsonl"), "\(missing.stderr)")
        let badAggregate = try CLI.run(["meta-eval", "--predictions", predictions, "--aggregate", "mae,charm"])
        #expect(badAggregate.status != 0 && badAggregate.stderr.contains("unknown metric 'charm'"))
    }

    /// The whole loop on the small model: judge the first LLMBar pairs, join, report.
    @Test func evalJudgeRunsTheJudgeAndTheReport() throws {
        let out = NSTemporaryDirectory() + "themis-evaljudge-\(UUID().uuidString).jsonl"
        let html = out + ".html"
        let o = try CLI.run(["eval-judge", "--model", CLI.smollm, "--device", "cpu", "--benchmark", "llmbar-natural", "--limit", "4",
                             "--output", out, "--html", html, "--bootstrap", "100"], measured: 20)
        #expect(o.status == 0, "stderr: \(o.stderr)")
        #expect(o.stdout.contains("## Pairs (n = 4)"), "\(o.stdout)")
        #expect(o.stdout.contains("| 4 | 100 | 4 | 0 | 0 | 0 | 0 | 0 |"), "labels beyond --limit are not unmatched: \(o.stdout)")
        #expect(FileManager.default.fileExists(atPath: html))
        // a second run resumes: nothing left to judge, same report
        let again = try CLI.run(["eval-judge", "--model", CLI.smollm, "--device", "cpu", "--benchmark", "llmbar-natural", "--limit", "4",
                                 "--output", out, "--resume", "--bootstrap", "100"], measured: 5)
        #expect(again.status == 0 && again.stderr.contains("4 records already in"), "\(again.stderr)")
        #expect(again.stdout == o.stdout)
        // a shard judges and reports its part only: lines 1 and 3 of the first 4 hash to shard 1 of 2
        let shard = NSTemporaryDirectory() + "themis-evaljudge-\(UUID().uuidString)-shard.jsonl"
        let part = try CLI.run(["eval-judge", "--model", CLI.smollm, "--device", "cpu", "--benchmark", "llmbar-natural", "--limit", "4",
                                "--shard", "1/2", "--output", shard, "--bootstrap", "100"], measured: 10)
        #expect(part.status == 0, "stderr: \(part.stderr)")
        #expect(part.stdout.contains("## Pairs (n = 2)") && part.stdout.contains("| 2 | 100 | 2 | 0 | 0 | 0 | 0 | 0 |"), "\(part.stdout)")
        #expect(try JudgeCLITests.lines(shard).compactMap { $0["id"] as? String }.sorted() == ["line-1", "line-3"])
        let unknown = try CLI.run(["eval-judge", "--model", CLI.smollm, "--benchmark", "no-such-set"])
        #expect(unknown.status == 1 && unknown.stderr.contains("neither a bundled benchmark"), "\(unknown.stderr)")
    }
}
