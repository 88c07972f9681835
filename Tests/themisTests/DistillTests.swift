import Foundation
import Testing
import ThemisTestSupport

/// `themis distill` end to end with the two small models and a real `themis serve` as the teacher.
@Suite("command line: distill", .serialized)
struct DistillTests {
    static func directory(_ name: String) -> String {
        NSTemporaryDirectory() + "themis-distill-\(UUID().uuidString)-\(name)"
    }

    /// Seconds the HTTP teacher may take for one grading. Eight gradings, four at a time, took
    /// 88 s on the slower machine class (about 45 s a request, queueing included); the limit is
    /// derived from that, or THEMIS_TEST_TEACHER_TIMEOUT (a tiny value reproduces a teacher that
    /// never answers in time).
    static var teacherTimeout: Double {
        ProcessInfo.processInfo.environment["THEMIS_TEST_TEACHER_TIMEOUT"].flatMap(Double.init) ?? Budget.limit(measured: 45)
    }

    /// How much the pipeline test makes: `small` keeps `make test` within its budget, `full` (make
    /// test-all) is the size the pipeline was first tested at.
    enum Size {
        case small, full
    }

    static func config(teacher: String, passages: String, size: Size = .full) -> String {
        let (scenarios, quizzes, synthTokens, respondTokens, gradeTokens) = switch size {
        case .small: ("{open_qa: 3}", "{math_qa: 1}", 96, 32, 64)
        case .full: ("{close_qa: 3, open_qa: 3}", "{math_qa: 2}", 96, 48, 96)
        }
        return """
        seed: 3
        generators:
          smol: {local: \(CLI.smollm), device: cpu}
          qwen: {local: \(CLI.models)/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf, device: cpu}
          teacher: {url: "\(teacher)/v1", model: teacher, concurrency: 4, max_attempts: 3, timeout_seconds: \(Self.teacherTimeout)}
        synthesize:
          generator: smol
          passages: [\(passages)]
          reference_scenarios: \(scenarios)
          quizzes: \(quizzes)
          per_call: 2
          max_tokens: \(synthTokens)
        respond:
          generators: [smol, qwen]
          max_tokens: \(respondTokens)
        grade:
          teacher: teacher
          modes: [single, pairwise]
          max_tokens: \(gradeTokens)
        select:
          ifd_model: smol
          strategy: ifd
          max_score_share: 0.6
        augment:
          drop_criteria: 0.5
        """
    }

    /// Every stage, with Qwen served by `themis serve` as the teacher (make test).
    @Test func smallPipelineWritesAllThreeFormats() throws {
        try wholePipeline(.small, measured: 145)
    }

    /// The same at the size the pipeline was first tested at (make test-all).
    @Test(.enabled(if: TestTier.full, "slow real-model case: make test-all runs it"))
    func wholePipelineWritesAllThreeFormats() throws {
        try wholePipeline(.full, measured: 530)
    }

    func wholePipeline(_ size: Size, measured: Double) throws {
        // Qwen2.5-0.5B writes the verdict sentence the judge prompts ask for; SmolLM2-135M does not
        let server = try ServeTests.Server(["--model", CLI.models + "/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "--device", "cpu",
                                            "--ctx-size", "2048", "--name", "teacher"])
        defer { server.stop() }
        try #require(server.port > 0, "teacher did not start: \(server.log)")
        let out = Self.directory("run")
        let configPath = out + ".yaml"
        let passages = CLI.root.appendingPathComponent("examples/distill-passages.jsonl").path
        try Data(Self.config(teacher: server.base, passages: passages, size: size).utf8).write(to: URL(fileURLWithPath: configPath))
        let o = try CLI.run(["distill", "run", "--config", configPath, "--output", out], measured: measured)
        #expect(o.status == 0, "stderr: \(o.stderr)\nstdout: \(o.stdout)")
        for stage in ["synthesize", "respond", "grade", "select", "augment", "export"] {
            let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/\(stage).manifest.json"))) as? [String: Any])
            #expect(manifest["complete"] as? Bool == true, "\(stage)")
        }
        // OpenAI messages: a user prompt and the teacher's answer, spans covering the answer
        let lines = try String(contentsOfFile: out + "/export/openai.jsonl", encoding: .utf8).split(separator: "\n")
        let grade = (try? String(contentsOfFile: out + "/grade.manifest.json", encoding: .utf8)) ?? "(no grade manifest)"
        try #require(!lines.isEmpty, "no samples were exported; grade manifest: \(grade)\nstderr: \(o.stderr.suffix(2000))")
        for line in lines {
            let sample = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let messages = try #require(sample["messages"] as? [[String: String]])
            #expect(messages.map { $0["role"] } == ["user", "assistant"])
            try #require(messages.count == 2)
            let answer = try #require(messages[1]["content"])
            let spans = try #require(sample["spans"] as? [[String: Any]])
            #expect(spans.last?["end"] as? Int == answer.utf16.count)
            #expect(spans.contains { $0["kind"] as? String == "score" })
        }
        let share = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/export/sharegpt.json"))) as? [[String: Any]])
        #expect(share.count == lines.count)
        #expect((share.first?["conversations"] as? [[String: String]])?.first?["from"] == "human")
        let alpaca = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/export/alpaca.json"))) as? [[String: Any]])
        #expect(alpaca.count == lines.count && alpaca.allSatisfy { ($0["output"] as? String)?.isEmpty == false })
        // the served teacher graded with probability verdicts (its chat top_logprobs), not sampled text
        let graded = try String(contentsOfFile: out + "/grade.jsonl", encoding: .utf8).split(separator: "\n")
        try #require(!graded.isEmpty, "no graded records")
        for line in graded {
            let r = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(r["verdict_source"] as? String == "top_logprobs", "\(r["id"] ?? "-"): \(r["verdict_source"] ?? "no verdict_source")")
            let p = try #require(r["verdict_probabilities"] as? [String: Double], "\(r["id"] ?? "-") has no verdict probabilities")
            #expect(abs(p.values.reduce(0, +) - 1) < 1e-6, "\(p)")
            let verdict = (r["verdict"] as? String) ?? (r["score"] as? Int).map(String.init)
            #expect(verdict == p.max { $0.value < $1.value }?.key, "\(r["id"] ?? "-"): verdict \(verdict ?? "-") is not the most likely of \(p)")
        }
        let card = try String(contentsOfFile: out + "/export/README.md", encoding: .utf8)
        #expect(card.contains("## Scenario") && card.contains("## IFD") && card.contains("## Source model"))
        // a second run finds every stage done and changes nothing
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/grade.jsonl"))
        let again = try CLI.run(["distill", "run", "--config", configPath, "--output", out], measured: 5)
        #expect(again.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/grade.jsonl")) == before)
    }

    @Test func killedStageResumesToTheSameOutput() throws {
        let passages = CLI.root.appendingPathComponent("examples/distill-passages.jsonl").path
        let whole = Self.directory("whole"), cut = Self.directory("cut")
        let configPath = whole + ".yaml"
        try Data(Self.config(teacher: "http://127.0.0.1:9", passages: passages).utf8).write(to: URL(fileURLWithPath: configPath))
        let o = try CLI.run(["distill", "synthesize", "--config", configPath, "--output", whole], measured: 21)
        #expect(o.status == 0, "\(o.stderr)")
        // the same stage, killed once its output has a few lines, then run again
        let p = try ChildProcess(CLI.binary, ["distill", "synthesize", "--config", configPath, "--output", cut], captureOutput: false)
        let deadline = Date().addingTimeInterval(Budget.limit(measured: 10))
        while p.isRunning && Date() < deadline {
            if let text = try? String(contentsOfFile: cut + "/synthesize.jsonl", encoding: .utf8), text.split(separator: "\n").count >= 3 { break }
            usleep(20_000)
        }
        #expect(p.isRunning, "the stage finished before it could be killed")
        p.signal(SIGKILL)
        p.waitForExit(timeout: 30)
        let resumed = try CLI.run(["distill", "synthesize", "--config", configPath, "--output", cut], measured: 18)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        for file in ["synthesize.jsonl", "instructions.jsonl"] {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(cut)/\(file)")) == Data(contentsOf: URL(fileURLWithPath: "\(whole)/\(file)")), "\(file)")
        }
    }

    /// Hand-edited intermediate files: a response that is a number, a repeated id, a line that is
    /// not JSON. Each becomes a failed item of the next stage naming its line; the stage goes on.
    @Test func handEditedStageFilesBecomeFailedItems() throws {
        let out = Self.directory("edited")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let configPath = out + ".yaml"
        try Data("""
            generators:
              smol: {local: \(CLI.smollm), device: cpu}
              teacher: {url: "http://127.0.0.1:9/v1", model: teacher, max_attempts: 1, timeout_seconds: 5}
            synthesize: {generator: smol}
            respond: {generators: [smol]}
            grade: {teacher: teacher, modes: [single]}
            select: {strategy: random}
            """.utf8).write(to: URL(fileURLWithPath: configPath))
        func line(_ id: String, response: String) -> String {
            #"{"id": "\#(id)", "instruction_id": "i1", "scenario": "open_qa", "instruction": "Why is the sky blue?", "generator": "smol", "#
                + #""response": \#(response), "item": "\#(id)", "index": 0, "of": 1}"#
        }
        let respond = [line("r1", response: #""Rayleigh scattering.""#), line("r2", response: "42"), "{not json",
                       line("r1", response: #""again""#)].joined(separator: "\n") + "\n"
        try Data(respond.utf8).write(to: URL(fileURLWithPath: out + "/respond.jsonl"))
        try Data(#"{"stage": "respond", "configHash": "x", "complete": true, "counts": {}, "dropped": {}}"#.utf8)
            .write(to: URL(fileURLWithPath: out + "/respond.manifest.json"))
        let o = try CLI.run(["distill", "grade", "--config", configPath, "--output", out], measured: 3)
        #expect(o.status == 0, "\(o.stderr)")
        let graded = try String(contentsOfFile: out + "/grade.jsonl", encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let failures = graded.compactMap { $0["failed"] as? String }
        #expect(graded.count == 4 && failures.count == 4, "\(graded)")
        #expect(failures.contains { $0.contains("line 2 of respond.jsonl") && $0.contains("response") }, "\(failures)")
        #expect(failures.contains { $0.contains("line 3 of respond.jsonl: not valid JSON") }, "\(failures)")
        #expect(failures.contains { $0.contains("line 4 of respond.jsonl: id 'r1' is already on line 1") }, "\(failures)")
    }

    @Test func badConfigurationsSayWhy() throws {
        let path = Self.directory("bad") + ".yaml"
        for (yaml, message) in [
            ("generators: {a: {local: x}}\nsynthesize: {generator: b}\n", "synthesize.generator: no generator 'b'"),
            ("generators: {a: {local: x}}\nsynthesize: {generator: a, colour: red}\n", "unknown key 'synthesize.colour'"),
            ("generators: [1, 2\n", "not valid YAML"),
            ("generators: {a: {local: x}}\nsynthesize: {generator: a, quizzes: {math_qa: -3}}\n", "synthesize.quizzes.math_qa is -3"),
            ("generators: {a: {local: x}}\nsynthesize: {generator: a, per_call: -1}\n", "synthesize.per_call is -1"),
            ("generators: {a: {local: x, concurrency: 0}}\nsynthesize: {generator: a}\n", "generators.a.concurrency is 0"),
            ("seed: .nan\n", "'seed' is not a finite number"),
            ("synthesize: {temperature: .inf}\n", "'synthesize.temperature' is not a finite number"),
            ("seed: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n", "nested more than 32 levels deep"),
            ((0..<1_000).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n", "nested more than 32 levels deep"),
            ("a: &x [1, 2]\nb: *x\n", "anchors and aliases are not accepted"),
            ("? [seed]\n: 3\n", "a mapping key must be text"),
        ] {
            try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
            let o = try CLI.run(["distill", "run", "--config", path, "--output", Self.directory("bad-out")])
            #expect(o.status == 1 && o.stderr.contains(message), "\(yaml): \(o.stderr)")
        }
    }
}
