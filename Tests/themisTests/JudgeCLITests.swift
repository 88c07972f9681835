import Foundation
import Testing
import ThemisTestSupport

/// `themis judge` end to end on the real models: bad records, kill and resume, LLMBar pairs.
@Suite("command line: judge", .serialized)
struct JudgeCLITests {
    static let shared = CLI.root.deletingLastPathComponent().appendingPathComponent("shared/data")
    static var qwen: String { CLI.models + "/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" }

    static func temporary(_ name: String) -> String {
        NSTemporaryDirectory() + "themis-judge-\(UUID().uuidString)-\(name)"
    }

    static func lines(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test func badRecordsGetErrorRecordsAndTheRunGoesOn() throws {
        let long = String(repeating: "This sentence makes the response far too long for a small context. ", count: 80)
        let input = [
            #"{"id": "good", "instruction": "What is 2 + 2?", "response": "4", "scenario": "math_qa"}"#,
            #"{"id": "broken", "instruction": "unterminated"#,
            #"{"id": "no-response", "instruction": "What is 2 + 2?", "scenario": "math_qa"}"#,
            #"{"id": "bad-scenario", "instruction": "What is 2 + 2?", "response": "4", "scenario": "astrology"}"#,
            #"{"id": "too-long", "instruction": "Summarise.", "response": "\#(long)", "scenario": "rewriting"}"#,
        ].joined(separator: "\n") + "\n"
        let inPath = Self.temporary("bad.jsonl"), outPath = Self.temporary("bad-out.jsonl")
        try Data(input.utf8).write(to: URL(fileURLWithPath: inPath))
        let o = try CLI.run(["judge", "--model", CLI.smollm, "--device", "cpu", "--ctx-size", "768", "--input", inPath,
                             "--output", outPath, "--explain", "none"], measured: 7)
        #expect(o.status == 3, "some records failed: status 3; stderr: \(o.stderr)")
        #expect(o.stderr.contains("4 of 5 records failed"), "stderr: \(o.stderr)")
        let records = try Self.lines(outPath)
        #expect(records.count == 5)
        let byID = Dictionary(uniqueKeysWithValues: records.map { ($0["id"] as? String ?? "line-?", $0) })
        #expect(byID["good"]?["status"] as? String == "ok")
        #expect((1...5).contains(byID["good"]?["rating"] as? Int ?? 0))
        let broken = try #require(records.first { ($0["error"] as? String)?.hasPrefix("line 2:") == true })
        #expect(broken["status"] as? String == "error")
        #expect((byID["no-response"]?["error"] as? String)?.contains("line 3: no 'response' field") == true)
        #expect((byID["bad-scenario"]?["error"] as? String)?.contains("line 4: unknown scenario 'astrology'") == true)
        let tooLong = try #require(byID["too-long"]?["error"] as? String)
        #expect(tooLong.contains("line 5:") && tooLong.contains("tokens but the context holds 768"), "\(tooLong)")

        // --truncate cuts the middle of the response instead
        let truncated = try CLI.run(["judge", "--model", CLI.smollm, "--device", "cpu", "--ctx-size", "768", "--input", inPath,
                                     "--output", outPath, "--overwrite", "--explain", "none", "--truncate"], measured: 5)
        #expect(truncated.status == 3, "stderr: \(truncated.stderr)")
        let again = try Self.lines(outPath)
        #expect(again.first { $0["id"] as? String == "too-long" }?["status"] as? String == "ok")
    }

    @Test func killedRunResumesWithoutLosingOrRepeatingRecords() throws {
        let outPath = Self.temporary("resume.jsonl")
        let input = Self.shared.appendingPathComponent("llmbar-natural.json").path
        let args = ["judge", "--model", CLI.smollm, "--device", "cpu", "--input", input, "--limit", "6",
                    "--fields", "instruction=input,response_a=output_1,response_b=output_2",
                    "--keep-fields", "label", "--explain", "none", "--output", outPath]
        // start, wait for two records, kill
        let p = try ChildProcess(CLI.binary, args, captureOutput: false)
        let deadline = Date().addingTimeInterval(Budget.limit(measured: 25))
        while p.isRunning && Date() < deadline {
            let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            if text.split(separator: "\n").count >= 2 { break }
            usleep(50_000)
        }
        p.signal(SIGKILL)
        p.waitForExit(timeout: 30)
        let before = try Self.lines(outPath).count
        #expect(before >= 2 && before < 6, "killed after \(before) records")
        // a half-written last line, as a kill during a write leaves
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"id": "line-"#.utf8))
        try handle.close()

        let o = try CLI.run(args + ["--resume"], measured: 13)
        #expect(o.status == 0, "stderr: \(o.stderr)")
        #expect(o.stderr.contains("resuming: \(before) records already"), "stderr: \(o.stderr)")
        let records = try Self.lines(outPath)
        let ids = records.compactMap { $0["id"] as? String }
        #expect(ids.count == 6 && Set(ids).count == 6, "\(ids)")
        #expect(Set(ids) == Set((1...6).map { "line-\($0)" }))
        #expect(records.allSatisfy { $0["status"] as? String == "ok" && $0["label"] != nil })
    }

    /// Gemma 3 (SentencePiece vocabulary, Gemma's turn format chosen for its template-less file,
    /// <end_of_turn> ending the explanations) judges in all three modes.
    @Test func gemma3JudgesInAllThreeModes() throws {
        let lines = try String(contentsOf: CLI.root.appendingPathComponent("examples/judge-examples.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(3)
        let input = NSTemporaryDirectory() + "themis-gemma3-judge-\(getpid()).jsonl"
        defer { try? FileManager.default.removeItem(atPath: input) }
        try lines.joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let o = try CLI.run(["judge", "--model", CLI.models + "/gemma-3-270m-q4_k_m.gguf", "--device", "cpu",
                             "--input", input, "--explain", "short"], measured: 20)
        #expect(o.status == 0, "stderr: \(o.stderr)")
        let records = try o.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(Set(records.compactMap { $0["mode"] as? String }) == ["reference", "single", "pairwise"])
        for r in records {
            #expect(r["status"] as? String == "ok", "\(r)")
            #expect(r["rating"] is Int || ["A", "B", "tie"].contains(r["verdict"] as? String ?? ""), "\(r)")
            #expect(!(r["explanation"] as? String ?? "").contains("<end_of_turn>"), "\(r)")
        }
    }

    @Test(.enabled(if: TestTier.full, "slow real-model case: make test-all runs it"))
    func llmbarPairsWithQwenAllGetAVerdict() throws {
        let input = Self.shared.appendingPathComponent("llmbar-natural.json").path
        let o = try CLI.run(["judge", "--model", Self.qwen, "--device", "cpu", "--input", input, "--limit", "4",
                             "--fields", "instruction=input,response_a=output_1,response_b=output_2",
                             "--keep-fields", "label", "--explain", "none"], measured: 60)
        #expect(o.status == 0, "stderr: \(o.stderr)")
        let records = try o.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(records.count == 4)
        for r in records {
            #expect(r["status"] as? String == "ok")
            #expect(["A", "B", "tie"].contains(r["verdict"] as? String ?? ""))
            let orders = try #require(r["verdicts_by_order"] as? [String: String])
            #expect(orders.count == 2)
            #expect(r["consistent"] is Bool)
            #expect(r["scenario_source"] as? String == "classified")
        }
        #expect(o.stderr.contains("pairwise consistency: "), "stderr: \(o.stderr)")
        #expect(o.stderr.contains("agreement with labels: "), "stderr: \(o.stderr)")
    }
}
