import Foundation
import Testing
import ThemisTestSupport

/// The judge asking a model served elsewhere gives the local judge's answers: pointed at a
/// `themis serve` of the same GGUF on loopback (its completions endpoint scores each verdict
/// label with `echo`, the chat template rendered on the client side).
@Suite("command line: judge through a model client", .serialized)
struct RemoteJudgeTests {
    static let fields = "instruction=input,response_a=output_1,response_b=output_2"

    static func records(_ stdout: String) throws -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for line in stdout.split(separator: "\n") {
            let r = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            out[try #require(r["id"] as? String)] = r
        }
        return out
    }

    /// The local judge runs with `--exact-decode` because `themis serve` does (f32 activations in
    /// one-token passes); with the CPU's default 8-bit rounding there, the label probabilities
    /// differ by up to 0.027 (measured), the verdicts not.
    @Test func themisServedJudgeEqualsTheLocalOne() throws {
        let input = JudgeCLITests.shared.appendingPathComponent("llmbar-natural.json").path
        let common = ["--input", input, "--limit", "3", "--fields", Self.fields, "--explain", "none", "--ctx-size", "2048"]
        let local = try CLI.run(["judge", "--model", CLI.smollm, "--device", "cpu", "--exact-decode"] + common, measured: 20)
        #expect(local.status == 0, "stderr: \(local.stderr)")

        let server = try ServeTests.Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "2048", "--name", "judge"])
        defer { server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let remote = try CLI.run(["judge", "--model", server.base + "/v1", "--chat-template", CLI.smollm, "--concurrency", "4"] + common,
                                 measured: 300)
        #expect(remote.status == 0, "stderr: \(remote.stderr)")

        let a = try Self.records(local.stdout), b = try Self.records(remote.stdout)
        #expect(a.count == 3 && Set(a.keys) == Set(b.keys))
        var worst = 0.0
        for (id, l) in a {
            let r = try #require(b[id])
            #expect(r["verdict_source"] as? String == "exact", "\(id): \(r)")
            #expect(l["verdict"] as? String == r["verdict"] as? String, "\(id): \(l["verdict"] ?? "-") vs \(r["verdict"] ?? "-")")
            #expect(l["scenario"] as? String == r["scenario"] as? String, "\(id)")
            let ld = try #require(l["distributions_by_order"] as? [[String: Double]])
            let rd = try #require(r["distributions_by_order"] as? [[String: Double]])
            for (x, y) in zip(ld, rd) { for (k, v) in x { worst = max(worst, abs(v - (y[k] ?? -1))) } }
            let ls = try #require(l["scenario_probabilities"] as? [String: Double])
            let rs = try #require(r["scenario_probabilities"] as? [String: Double])
            for (k, v) in ls { worst = max(worst, abs(v - (rs[k] ?? -1))) }
        }
        #expect(worst < 1e-3, "label probabilities differ by up to \(worst)")
        print("judge local vs themis-served: largest probability difference \(worst)")
    }

    /// Qwen2.5-0.5B on LLMBar pairs three ways: run here, through `themis serve`, through
    /// llama.cpp's `llama_cpp.server` (.venv, from `make llamacpp`), by scripts/served-judges,
    /// which fails if themis-served differs from local at all, or llama.cpp-served agrees on
    /// fewer of the pairs' two verdicts than asked. On all 100 pairs (`make compare-served`) 97
    /// agree; the first 6 hold one of the 3 that do not (a near-tie, line 1), so 4 of 6 are
    /// asked for here (the " B" matching bug this found gave 1 of 3).
    @Test(.enabled(if: TestTier.full, "slow real-model case: make test-all runs it"))
    func llamaCppServedJudgeAgreesWithTheLocalOne() throws {
        let report = NSTemporaryDirectory() + "themis-served-\(UUID().uuidString).json"
        let run = try ChildProcess.run(CLI.root.appendingPathComponent("scripts/served-judges").path,
                                       ["compare", "--limit", "6", "--min-agreement", "0.66", "--json", report],
                                       limit: Budget.limit(measured: 180))
        #expect(run.termination.status == 0, "stdout: \(run.stdout)\nstderr: \(run.stderr.suffix(3000))")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any])
        let theirs = try #require(r["llama_cpp_served_vs_local"] as? [String: Any])
        #expect(theirs["records"] as? Int == 6 && theirs["sources"] as? [String] == ["top_logprobs"], "\(theirs)")
        print(run.stdout)
    }
}

/// `themis generate --model URL`: the server generates, and greedy text is the local model's.
@Suite("command line: generate through a server", .serialized)
struct RemoteGenerateTests {
    @Test func generateAgainstThemisServeEqualsLocalGreedyText() throws {
        let server = try ServeTests.Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "2048", "--name", "smol"])
        defer { server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let greedy = ["--temperature", "0", "--max-tokens", "12", "--json"]
        for input in [["--chat", "Name three primary colours."], ["--prompt", "The capital of France is"]] {
            let local = try CLI.run(["generate", "--model", CLI.smollm, "--device", "cpu", "--exact-decode"] + input + greedy, measured: 3)
            let remote = try CLI.run(["generate", "--model", server.base + "/v1"] + input + greedy, measured: 3)
            #expect(local.status == 0 && remote.status == 0, "\(local.stderr)\n\(remote.stderr)")
            let l = try #require(try JSONSerialization.jsonObject(with: Data(local.stdout.utf8)) as? [String: Any])
            let r = try #require(try JSONSerialization.jsonObject(with: Data(remote.stdout.utf8)) as? [String: Any])
            let text = try #require(l["text"] as? String)
            #expect(!text.isEmpty && r["text"] as? String == text, "\(input[0]): local \(text.debugDescription), served \(r["text"] ?? "-")")
            #expect(r["model"] as? String == "smol" && r["generated_tokens"] as? Int == l["generated_tokens"] as? Int, "\(r)")
            #expect(r["prompt_tokens"] as? Int == l["prompt_tokens"] as? Int, "\(input[0]): \(r) vs \(l)")
        }
        // an option the server cannot take is one error line, not a crash
        let bad = try CLI.run(["generate", "--model", server.base + "/v1", "--remote-model", "nope", "--chat", "hi"])
        #expect(bad.status == 1 && bad.stderr.contains("themis: error: HTTP 4"), "\(bad.stderr)")
    }
}
