import Foundation
import Testing
import ThemisModel
import ThemisTestSupport

/// `themis distill import` and `themis train`: human labels into judge samples, a run killed and
/// resumed, bad samples skipped with their reasons.
@Suite("command line: import and train", .serialized)
struct TrainCLITests {
    static var tinyLlama: String { CLI.root.appendingPathComponent("Tests/ThemisModelTests/Reference/tiny-llama.gguf").path }

    static func directory() throws -> String {
        let dir = NSTemporaryDirectory() + "themis-train-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// Short judge samples in the export format: a question, the verdict (a score span) and a
    /// sentence of explanation.
    static func samples(_ count: Int) -> String {
        (0..<count).map { i -> String in
            let verdict = "After comparing the two responses, my verdict is [[\(i % 2 == 0 ? "A" : "B")]]"
            let answer = verdict + "\nResponse \(i % 2 == 0 ? "A" : "B") answers question \(i) better."
            let record: [String: Any] = [
                "messages": [["role": "user", "content": "Question \(i): is \(i) even? A: yes. B: no."],
                             ["role": "assistant", "content": answer]],
                "spans": [["start": 0, "end": verdict.utf16.count, "kind": "score"],
                          ["start": verdict.utf16.count, "end": answer.utf16.count, "kind": "explanation"]],
                "metadata": ["id": "q\(i)", "scenario": "close_qa", "mode": "pairwise", "augmentation": "original"],
            ]
            return String(decoding: try! JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]), as: UTF8.self)
        }.joined(separator: "\n") + "\n"
    }

    @Test func importTurnsHumanLabelsIntoJudgeSamplesInBothOrders() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = [
            #"{"chosen": "\n\nHuman: How do I boil an egg?\n\nAssistant: Put it in boiling water for nine minutes.", "rejected": "\n\nHuman: How do I boil an egg?\n\nAssistant: Eggs are laid by hens."}"#,
            #"{"instruction": "Name a prime.", "chosen": "7", "rejected": "8"}"#,
            #"{"instruction": "Say hi.", "response_a": "hello", "response_b": "hi there!", "label": "B"}"#,
            #"{"instruction": "Pick a colour.", "output_1": "red", "output_2": "blue", "winner": 0}"#,
            #"{"instruction": "broken", "chosen": 1"#,
            #"{"chosen": "a", "rejected": "b"}"#,
        ].joined(separator: "\n") + "\n"
        let plain = dir + "/pairs.jsonl"
        try input.write(toFile: plain, atomically: true, encoding: .utf8)
        // a gzip copy reads the same
        let gz = try ChildProcess.run("/bin/sh", ["-c", "gzip -c \(plain) > \(plain).gz"], limit: 30)
        try #require(gz.termination.status == 0)
        for source in [plain, plain + ".gz"] {
            let out = dir + "/out-\(source.hasSuffix(".gz") ? "gz" : "plain")"
            let run = try CLI.run(["distill", "import", "--input", source, "--output", out], measured: 1)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("import: 8 samples from 4 pairs, 2 lines skipped"), "\(run.stdout)")
            let samples = try Self.lines(out + "/openai.jsonl")
            #expect(samples.count == 8)
            let verdicts = samples.map { s -> String in
                let messages = s["messages"] as? [[String: String]] ?? []
                let id = (s["metadata"] as? [String: String])?["id"] ?? ""
                let answer = messages.last?["content"] ?? ""
                return id.suffix(3) + " " + (answer.range(of: #"\[\[[ABC]\]\]"#, options: .regularExpression).map { String(answer[$0]) } ?? "?")
            }
            #expect(verdicts == ["#ab [[A]]", "#ba [[B]]", "#ab [[A]]", "#ba [[B]]", "#ab [[B]]", "#ba [[A]]", "#ab [[C]]", "#ba [[C]]"])
            // the verdict sentence is the score span; the prompt holds both responses in the order named
            let first = samples[1]
            let prompt = (first["messages"] as? [[String: String]])?.first?["content"] ?? ""
            #expect(prompt.contains("[Response A]: Eggs are laid by hens.") && prompt.contains("[Response B]: Put it in boiling water"))
            let spans = first["spans"] as? [[String: Any]] ?? []
            #expect(spans.count == 1 && spans[0]["kind"] as? String == "score")
            #expect(try Self.lines(out + "/skipped.jsonl").count == 2)
            #expect(FileManager.default.fileExists(atPath: out + "/sharegpt.json") && FileManager.default.fileExists(atPath: out + "/alpaca.json"))
        }
    }

    /// A classifier picks each pair's scenario; a teacher writes an explanation after the verdict.
    @Test func importClassifiesScenariosAndAddsATeachersExplanation() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = [
            #"{"instruction": "Write a haiku about rain.", "chosen": "Soft rain on the roof", "rejected": "no"}"#,
            #"{"instruction": "What is 17 times 3?", "response_a": "51", "response_b": "41", "label": "A"}"#,
        ].joined(separator: "\n") + "\n"
        try input.write(toFile: dir + "/pairs.jsonl", atomically: true, encoding: .utf8)
        let run = try CLI.run(["distill", "import", "--input", dir + "/pairs.jsonl", "--output", dir + "/out",
                               "--classify-with", CLI.smollm, "--teacher", CLI.smollm, "--teacher-max-tokens", "6",
                               "--device", "cpu", "--formats", "openai"], measured: 10)
        #expect(run.status == 0, "\(run.stderr)")
        let samples = try Self.lines(dir + "/out/openai.jsonl")
        #expect(samples.count == 4)
        let catalogue = try Data(contentsOf: CLI.root.appendingPathComponent("Sources/ThemisJudge/Resources/scenarios.json"))
        let scenarios = (try JSONSerialization.jsonObject(with: catalogue) as? [String: Any])?["scenarios"] as? [[String: Any]] ?? []
        let ids = Set(scenarios.compactMap { $0["id"] as? String })
        #expect(ids.count == 10)
        for s in samples {
            let meta = s["metadata"] as? [String: String] ?? [:]
            #expect(ids.contains(meta["scenario"] ?? ""), "\(meta)")
            let answer = (s["messages"] as? [[String: String]])?.last?["content"] ?? ""
            #expect(answer.hasPrefix("After comparing the two responses, my verdict is [[") && answer.contains("]]\n"), "\(answer)")
            let kinds = (s["spans"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
            #expect(kinds.first == "score" && kinds.contains("explanation"), "\(kinds)")
        }
        let card = try String(contentsOfFile: dir + "/out/README.md", encoding: .utf8)
        #expect(card.contains("classified each instruction") && card.contains("explanation from"), "\(card)")
    }

    /// A run killed (SIGKILL) after some steps and resumed ends with the adapter of a run never
    /// stopped, byte for byte; the log has every step once.
    @Test func killedRunResumesToTheUninterruptedAdapter() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.samples(24).write(toFile: dir + "/data.jsonl", atomically: true, encoding: .utf8)
        let common = ["train", "--model", Self.tinyLlama, "--device", "cpu", "--chat-template", "chatml", "--data",
                      dir + "/data.jsonl", "--steps", "160", "--batch", "2", "--lora-rank", "4", "--lora-dropout", "0.1",
                      "--lr", "1e-3", "--seed", "3", "--checkpoint-every", "1", "--eval-every", "40", "--eval-fraction", "0.2"]
        let whole = try CLI.run(common + ["--output", dir + "/whole"], measured: 20)
        try #require(whole.status == 0, "\(whole.stderr)")
        let killed = try ChildProcess(CLI.binary, common + ["--output", dir + "/killed"])
        let log = dir + "/killed/log.jsonl"
        let deadline = Date().addingTimeInterval(Budget.limit(measured: 20))
        while Date() < deadline, killed.isRunning {
            if let text = try? String(contentsOfFile: log, encoding: .utf8), text.split(separator: "\n").count >= 30 { break }
            usleep(5_000)
        }
        try #require(killed.isRunning, "the run ended before it could be killed: \(killed.stderr)")
        killed.signal(SIGKILL)
        killed.waitForExit(timeout: 30)
        #expect(!FileManager.default.fileExists(atPath: dir + "/killed/adapter.gguf"))
        // without --resume the run is not overwritten
        let refused = try CLI.run(common + ["--output", dir + "/killed"], measured: 2)
        #expect(refused.status == 1 && refused.stderr.contains("holds a run already"), "\(refused.stderr)")
        let resumed = try CLI.run(common + ["--output", dir + "/killed", "--resume"], measured: 20)
        try #require(resumed.status == 0, "\(resumed.stderr)")
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/whole/adapter.gguf"))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/killed/adapter.gguf"))
        #expect(a == b, "the resumed run's adapter differs from the uninterrupted run's")
        let steps = try Self.lines(log).map { $0["step"] as? Int ?? -1 }
        #expect(steps == Array(1...160))
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/killed/summary.json"))) as? [String: Any])
        #expect((summary["resumed_from"] as? Int ?? 0) >= 28)
        let html = try String(contentsOfFile: dir + "/killed/report.html", encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("polyline"))
        // the adapter loads where a model loads: llama.cpp's format, applied on the fly
        let generated = try CLI.run(["generate", "--model", Self.tinyLlama, "--lora", dir + "/killed/adapter.gguf", "--device", "cpu",
                                     "--prompt", "Question 3", "--max-tokens", "4", "--temperature", "0"], measured: 1)
        #expect(generated.status == 0, "\(generated.stderr)")
        // the finished run given --resume writes its adapter again, in f16: half the size, the
        // same values to f16's precision, the training's summary kept
        let summaryPath = dir + "/killed/summary.json"
        let summaryBefore = try Data(contentsOf: URL(fileURLWithPath: summaryPath))
        let half = try CLI.run(common + ["--output", dir + "/killed", "--resume", "--adapter-type", "f16"], measured: 2)
        try #require(half.status == 0, "\(half.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: summaryPath)) == summaryBefore)
        let config = try ModelConfig(file: try GGUFFile(path: Self.tinyLlama))
        let full = try LoRAAdapterFile(path: dir + "/whole/adapter.gguf", config: config)
        let rounded = try LoRAAdapterFile(path: dir + "/killed/adapter.gguf", config: config)
        #expect(rounded.entries.count == full.entries.count && rounded.entries.allSatisfy { $0.a.type == .f16 })
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/killed/adapter.gguf")).count < a.count * 6 / 10)
        for (x, y) in zip(full.entries, rounded.entries) {
            for (u, v) in zip(full.values(x.a) + full.values(x.b), rounded.values(y.a) + rounded.values(y.b)) {
                #expect(abs(u - v) <= abs(u) * 1e-3 + 1e-7, "\(u) in f16: \(v)")
            }
        }
    }

    @Test func badSamplesAreSkippedWithTheirReasons() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var data = Self.samples(6)
        data += "{not json\n"
        data += #"{"messages": [{"role": "user", "content": "q"}], "spans": [], "metadata": {"id": "noanswer", "scenario": "x", "mode": "pairwise", "augmentation": "original"}}"# + "\n"
        data += #"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "spans": [], "metadata": {"id": "nospans", "scenario": "x", "mode": "pairwise", "augmentation": "original"}}"# + "\n"
        let long = String(repeating: "very long question ", count: 200)
        data += #"{"messages": [{"role": "user", "content": "\#(long)"}, {"role": "assistant", "content": "[[A]]"}], "spans": [{"start": 0, "end": 5, "kind": "score"}], "metadata": {"id": "long", "scenario": "x", "mode": "pairwise", "augmentation": "original"}}"# + "\n"
        data += #"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "[[A]]"}], "spans": [{"start": 0, "end": 50, "kind": "score"}], "metadata": {"id": "outside", "scenario": "x", "mode": "pairwise", "augmentation": "original"}}"# + "\n"
        try data.write(toFile: dir + "/data.jsonl", atomically: true, encoding: .utf8)
        let run = try CLI.run(["train", "--model", Self.tinyLlama, "--device", "cpu", "--chat-template", "chatml", "--data",
                               dir + "/data.jsonl", "--output", dir + "/run", "--steps", "2", "--batch", "2",
                               "--max-tokens", "256", "--eval-fraction", "0"], measured: 2)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("6 samples, 0 held aside, 5 skipped"), "\(run.stderr)")
        let skipped = try Self.lines(dir + "/run/skipped.jsonl")
        let reasons = skipped.map { "\($0["id"] as? String ?? "-"): \($0["reason"] as? String ?? "")" }
        #expect(skipped.count == 5, "\(reasons)")
        for (id, words) in [("noanswer", "no assistant answer"), ("nospans", "no answer spans"), ("long", "longer than"),
                            ("outside", "outside the answer")] {
            #expect(reasons.contains { $0.hasPrefix(id + ":") && $0.contains(words) }, "\(id): \(reasons)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/run/adapter.gguf"))
    }
}
