import Foundation
import Testing
import ThemisTestSupport

/// `themis judge` on untrusted files: line ends, byte-order marks, duplicate ids, cut output,
/// error records, failed writes, exit statuses (0 all ok, 1 fatal, 2 usage, 3 records failed).
@Suite("command line: judge input and output files", .serialized)
struct JudgeFilesTests {
    static func record(_ id: String, scenario: String = "math_qa") -> String {
        #"{"id": "\#(id)", "instruction": "What is 2 + 2?", "response": "4", "scenario": "\#(scenario)"}"#
    }

    static func write(_ name: String, _ text: String) throws -> String {
        let path = JudgeCLITests.temporary(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func judge(_ input: String, _ extra: [String], measured: Double = 4) throws -> CLI.Output {
        try CLI.run(["judge", "--model", CLI.smollm, "--device", "cpu", "--ctx-size", "1024", "--explain", "none",
                     "--input", input] + extra, measured: measured)
    }

    static func ids(_ path: String) throws -> [String] {
        try JudgeCLITests.lines(path).map { $0["id"] as? String ?? "?" }
    }

    @Test func crlfLinesAndAByteOrderMarkedArrayLoseNoRecord() throws {
        let crlf = try Self.write("crlf.jsonl", ["a", "b", "c"].map { Self.record($0) }.joined(separator: "\r\n") + "\r\n")
        let out = JudgeCLITests.temporary("crlf-out.jsonl")
        let o = try Self.judge(crlf, ["--output", out])
        #expect(o.status == 0, "stderr: \(o.stderr)")
        #expect(try Self.ids(out) == ["a", "b", "c"])
        #expect(try JudgeCLITests.lines(out).allSatisfy { $0["status"] as? String == "ok" })

        let array = try Self.write("bom.json", "\u{FEFF}[" + ["x", "y"].map { Self.record($0) }.joined(separator: ",\n") + "]")
        let fromArray = try Self.judge(array, [])
        #expect(fromArray.status == 0, "stderr: \(fromArray.stderr)")
        let ids = fromArray.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? String
        }
        #expect(ids == ["x", "y"])
    }

    @Test func duplicateInputIdsAreOneClearError() throws {
        let input = try Self.write("dup.jsonl", [Self.record("a"), Self.record("b"), Self.record("a")].joined(separator: "\n"))
        let o = try Self.judge(input, ["--output", JudgeCLITests.temporary("dup-out.jsonl")])
        #expect(o.status == 1, "stderr: \(o.stderr)")
        #expect(o.stderrLines.count == 1 && o.stderr.contains("'a' on lines 1 and 3"), "\(o.stderr)")
    }

    @Test func resumeKeepsACompleteLastLineAndRetriesErrorsOnlyWhenAsked() throws {
        let input = try Self.write("resume.jsonl", [Self.record("a"), Self.record("b"), Self.record("c", scenario: "astrology")].joined(separator: "\n"))
        let out = JudgeCLITests.temporary("resume-out.jsonl")
        let first = try Self.judge(input, ["--output", out])
        #expect(first.status == 3, "one record failed: status 3; stderr: \(first.stderr)")
        // the output loses its final newline (an editor, a copy): the last record is still whole
        var text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        text.removeLast()
        try Data(text.utf8).write(to: URL(fileURLWithPath: out))
        let resumed = try Self.judge(input, ["--output", out, "--resume"])
        #expect(resumed.status == 0, "stderr: \(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming: 3 records already"), "\(resumed.stderr)")
        #expect(try Self.ids(out) == ["a", "b", "c"])
        #expect(try String(contentsOfFile: out, encoding: .utf8) == text + "\n")

        // the input is fixed; --retry-errors judges the failed record again
        let fixed = try Self.write("fixed.jsonl", [Self.record("a"), Self.record("b"), Self.record("c")].joined(separator: "\n"))
        let retried = try Self.judge(fixed, ["--output", out, "--retry-errors"])
        #expect(retried.status == 0, "stderr: \(retried.stderr)")
        #expect(retried.stderr.contains("2 records already") && retried.stderr.contains("1 that failed are judged again"), "\(retried.stderr)")
        let records = try JudgeCLITests.lines(out)
        #expect(records.map { $0["id"] as? String } == ["a", "b", "c"])
        #expect(records.allSatisfy { $0["status"] as? String == "ok" }, "\(records)")
    }

    @Test func aFailedWriteIsOneErrorLineAndResumeFinishes() throws {
        let input = try Self.write("write.jsonl", ["a", "b", "c", "d"].map { Self.record($0) }.joined(separator: "\n"))
        // a full disk: every write fails
        let full = try Self.judge(input, ["--output", "/dev/full", "--overwrite"])
        #expect(full.status == 1, "stderr: \(full.stderr)")
        #expect(full.stderrLines.count == 1 && full.stderr.contains("cannot write /dev/full"), "\(full.stderr)")

        // a file-size limit of one block (512 bytes): the first record fits, the second is cut short
        let out = JudgeCLITests.temporary("limit-out.jsonl")
        let command = "ulimit -f 1; exec '\(CLI.binary)' judge --model '\(CLI.smollm)' --device cpu --ctx-size 1024 --explain none --input '\(input)' --output '\(out)'"
        let limited = try ChildProcess.run("/bin/sh", ["-c", command], limit: Budget.limit(measured: 4))
        #expect(limited.termination == .exited(1), "\(limited.termination): \(limited.stderr)")
        #expect(limited.stderr.contains("File too large"), "\(limited.stderr)")
        let resumed = try Self.judge(input, ["--output", out, "--resume"])
        #expect(resumed.status == 0, "stderr: \(resumed.stderr)")
        #expect(try Self.ids(out) == ["a", "b", "c", "d"])
    }

    @Test(arguments: [
        (["--label-scale", "0-9223372036854775807"], "--label-scale"),
        (["--label-scale", "1-100000000"], "--label-scale"),
        (["--bootstrap", "9223372036854775807"], "--bootstrap"),
        (["--agr-p", "nan"], "--agr-p"),
    ])
    func metaEvalOptionsBeyondTheirRangeAreUsageErrors(flags: [String], mentions: String) throws {
        let p = try MetaEvalCLITests.write("p.jsonl", [MetaEvalCLITests.rating("a", 3)])
        let o = try CLI.run(["meta-eval", "--predictions", p] + flags)
        #expect(o.status == 2, "usage errors exit 2: \(o.stderr)")
        #expect(o.stderr.contains(mentions), "\(o.stderr)")
    }

    @Test func hugeAndNonFiniteNumbersDoNotBreakTheReports() throws {
        let predictions = try MetaEvalCLITests.write("p.jsonl", [
            #"{"id": "a", "status": "ok", "mode": "single", "scenario": "open_qa", "rating": 3, "expected_score": 1e308}"#,
            #"{"id": "b", "status": "ok", "mode": "single", "scenario": "open_qa", "rating": 4, "expected_score": 1.7e308}"#,
            #"{"id": "c", "status": "ok", "mode": "single", "scenario": "open_qa", "rating": 2, "expected_score": 2}"#,
        ])
        let labels = try MetaEvalCLITests.write("l.jsonl", [#"{"id": "a", "label": 3}"#, #"{"id": "b", "label": 1e300}"#,
                                                            #"{"id": "c", "label": "nan"}"#])
        let json = JudgeCLITests.temporary("report.json"), html = JudgeCLITests.temporary("report.html")
        let o = try CLI.run(["meta-eval", "--predictions", predictions, "--labels", labels, "--json", json, "--html", html])
        #expect(o.status == 0, "stderr: \(o.stderr)")
        #expect(o.stderr.contains("label 1e+300 is outside the scale 1-5") || o.stderr.contains("outside the scale"), "\(o.stderr)")
        #expect(o.stderr.contains("rating label 'nan' is not an integer"), "\(o.stderr)")
        #expect((try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json)))) != nil, "no JSON report")
        #expect(FileManager.default.fileExists(atPath: html))
    }
}
