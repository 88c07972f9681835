import Foundation
import Testing
import ThemisTestSupport

/// `themis judge` against a loopback OpenAI-compatible server made to misbehave
/// (Python/fault_server.py): retried faults give verdicts, lasting ones give error records with
/// their reason, no record is lost, and `--resume` judges the failed ones again.
@Suite("command line: judge against a misbehaving server", .serialized)
struct FaultyServerJudgeTests {
    static let script = CLI.root.appendingPathComponent("Tests/themisTests/Python/fault_server.py").path

    final class FaultServer: Sendable {
        let child: ChildProcess
        let port: Int

        init() throws {
            child = try ChildProcess("python3", [FaultyServerJudgeTests.script])
            port = child.loopbackPort(.stdout, timeout: Budget.limit(measured: 2))
        }

        var base: String { "http://127.0.0.1:\(port)" }

        /// The body of a request to the server (Python's urllib: the tests already need python3).
        func request(_ method: String, _ path: String) throws -> Data {
            let fetch = "import sys, urllib.request as u; sys.stdout.write(u.urlopen(u.Request(sys.argv[1], method=sys.argv[2], "
                + "data=b'' if sys.argv[2] == 'POST' else None), timeout=30).read().decode())"
            let run = try ChildProcess.run("python3", ["-c", fetch, base + path, method], limit: Budget.limit(measured: 1))
            try #require(run.termination.status == 0, "\(method) \(path): \(run.stderr)")
            return Data(run.stdout.utf8)
        }
    }

    /// Single-mode records with their scenario given: one label request each, its fault in the text.
    static func input(_ faults: [String]) throws -> String {
        let lines = try faults.map { fault -> String in
            let record: [String: String] = [
                "id": fault, "instruction": "What is 2 + 2? (fault=\(fault))", "response": "4", "scenario": "math_qa",
            ]
            return String(decoding: try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]), as: UTF8.self)
        }
        let path = JudgeCLITests.temporary("faults.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func faultsAreRetriedOrRecordedAndResumeFinishes() throws {
        let server = try FaultServer()
        defer { _ = server.child.stop(grace: 5) }
        try #require(server.port > 0, "fault server did not start: \(server.child.stderr)")
        let recovering = ["429-once", "500-once", "slow-once", "truncated-once", "drop-once"]
        let lasting = ["500-always", "slow-always", "truncated-always", "drop-always"]
        let input = try Self.input(["ok-once"] + recovering + lasting)
        let output = JudgeCLITests.temporary("faults-out.jsonl")
        // a 2 s attempt limit against a server that takes 6 s to answer a slow request
        let args = ["judge", "--model", server.base + "/v1", "--input", input, "--output", output, "--explain", "none",
                    "--max-attempts", "3", "--request-timeout", "2", "--concurrency", "4", "--batch", "10"]
        let first = try CLI.run(args, measured: 20)
        #expect(first.status == 3, "exit status 3: some records failed; stderr: \(first.stderr)")

        let records = try JudgeCLITests.lines(output)
        let byID = Dictionary(records.map { ($0["id"] as? String ?? "?", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(records.count == 10 && byID.count == 10, "every record once: \(records.map { $0["id"] ?? "-" })")
        for id in ["ok-once"] + recovering {
            let r = try #require(byID[id], "\(id) missing")
            #expect(r["status"] as? String == "ok", "\(id): \(r)")
            #expect(r["rating"] as? Int == 4 && r["verdict_source"] as? String == "top_logprobs", "\(id): \(r)")
        }
        let reasons = ["500-always": "HTTP 500: internal error", "slow-always": "timed out after 2.0 s",
                       "truncated-always": "malformed JSON reply", "drop-always": "connection failed"]
        for (id, reason) in reasons {
            let r = try #require(byID[id], "\(id) missing")
            let error = try #require(r["error"] as? String, "\(id): \(r)")
            #expect(r["status"] as? String == "error")
            #expect(error.contains("failed after 3 attempts") && error.contains(reason), "\(id): \(error)")
        }
        // the retry after a 429 waited for its Retry-After (1 s)
        let stats = try #require(try JSONSerialization.jsonObject(with: server.request("GET", "/stats")) as? [String: [Double]])
        let busy = try #require(stats["fault=429-once"])
        try #require(busy.count == 2, "429: \(busy)")
        #expect(busy[1] - busy[0] >= 0.95, "429 retried after \(busy[1] - busy[0]) s")
        #expect(stats["fault=500-always"]?.count == 3 && stats["fault=ok-once"]?.count == 1, "\(stats)")

        // the server recovers: --retry-errors keeps the ten records' order of ids and judges the four failed ones again
        _ = try server.request("POST", "/heal")
        let again = try CLI.run(args + ["--resume", "--retry-errors"], measured: 5)
        #expect(again.status == 0, "stderr: \(again.stderr)")
        #expect(again.stderr.contains("resuming: 6 records already in \(output), 4 to go (4 that failed are judged again)"), "\(again.stderr)")
        let finished = try JudgeCLITests.lines(output)
        #expect(finished.count == 10 && Set(finished.compactMap { $0["id"] as? String }).count == 10)
        #expect(finished.allSatisfy { $0["status"] as? String == "ok" && $0["rating"] as? Int == 4 }, "\(finished)")
    }

    /// A server that gives no log-probabilities (it ignores the request for them): the verdict is
    /// the greedy answer, parsed, and the record says so.
    @Test func withoutLogprobsVerdictsAreSampledAndMarked() throws {
        let server = try FaultServer()
        defer { _ = server.child.stop(grace: 5) }
        try #require(server.port > 0, "fault server did not start: \(server.child.stderr)")
        let input = try Self.input(["none-once", "none-always"])
        let o = try CLI.run(["judge", "--model", server.base + "/nolog/v1", "--input", input, "--explain", "none",
                             "--request-timeout", "5"], measured: 5)
        #expect(o.status == 0, "stderr: \(o.stderr)")
        let records = try o.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(records.count == 2)
        for r in records {
            #expect(r["status"] as? String == "ok" && r["rating"] as? Int == 4, "\(r)")
            #expect(r["verdict_source"] as? String == "sampled", "\(r)")
            #expect(r["distribution"] as? [String: Double] == ["1": 0, "2": 0, "3": 0, "4": 1, "5": 0], "\(r)")
        }
    }

    /// `--label-source top_logprobs` with the template rendered here: the completions endpoint's
    /// first token and its alternatives, the label's own token taken (not " 4", another
    /// continuation, which the server lists too), renormalised over the five ratings.
    @Test func completionTopLogprobsWithAClientSideTemplate() throws {
        let server = try FaultServer()
        defer { _ = server.child.stop(grace: 5) }
        try #require(server.port > 0, "fault server did not start: \(server.child.stderr)")
        let input = try Self.input(["none-once"])
        let o = try CLI.run(["judge", "--model", server.base + "/v1", "--input", input, "--explain", "none", "--chat-template", "chatml",
                             "--label-source", "top_logprobs", "--request-timeout", "5"], measured: 5)
        #expect(o.status == 0, "stderr: \(o.stderr)")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
        #expect(r["verdict_source"] as? String == "top_logprobs" && r["rating"] as? Int == 4, "\(r)")
        let p = try #require(r["distribution"] as? [String: Double])
        let weights = [-5.5, -4.0, -1.8, -0.25, -2.6].map { Foundation.exp($0) }
        let expected = weights[3] / weights.reduce(0, +)
        #expect(abs((p["4"] ?? 0) - expected) < 1e-9, "p(4) = \(p["4"] ?? -1), expected \(expected)")
        // exact needs the template
        let refused = try CLI.run(["judge", "--model", server.base + "/v1", "--input", input, "--label-source", "exact"])
        #expect(refused.status != 0 && refused.stderr.contains("--label-source exact needs --chat-template"), "\(refused.stderr)")
    }
}
