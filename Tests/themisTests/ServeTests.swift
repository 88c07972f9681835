import Foundation
import Testing
import ThemisTestSupport

/// `themis serve` on a loopback port, driven by the real `openai` Python client
/// (Tests/themisTests/Python/openai_checks.py).
@Suite("command line: serve", .serialized)
struct ServeTests {
    static let script = CLI.root.appendingPathComponent("Tests/themisTests/Python/openai_checks.py").path

    /// A running `themis serve` on a free loopback port; it dies with the test (see `ChildProcess`).
    final class Server: Sendable {
        let child: ChildProcess
        /// The port it listens on, 0 if it did not start.
        let port: Int

        init(_ arguments: [String], environment: [String: String] = [:]) throws {
            child = try ChildProcess(CLI.binary, ["serve", "--port", "0"] + arguments, environment: environment)
            // the chosen port is on the first stderr line: "themis: serving M on http://127.0.0.1:PORT ..."
            port = child.loopbackPort(.stderr, timeout: Budget.limit(measured: 5))
        }

        var base: String { "http://127.0.0.1:\(port)" }
        /// What the server wrote to stderr so far.
        var log: String { child.stderr }

        /// SIGTERM (then SIGKILL if it does not drain in time); the exit status.
        @discardableResult
        func stop() -> Int32 { child.stop(grace: Budget.limit(measured: 5, floor: 30)).status }
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var figures: [String: Any] {
            (stdout.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }) ?? [:]
        }
    }

    /// Runs openai_checks.py; `measured` as for `CLI.run`.
    static func python(_ arguments: [String], measured: Double = 17) throws -> Result {
        let limit = Budget.limit(measured: measured)
        let run = try ChildProcess.run("python3", [script] + arguments, limit: limit)
        if run.ranPastLimit {
            Issue.record("openai_checks.py \(arguments.dropFirst().prefix(2)) ran past its limit of \(Int(limit)) s: stopped")
        }
        return Result(status: run.termination.status, stdout: run.stdout, stderr: run.stderr)
    }

    @Test func openAIClientChatStreamingLogprobsAndJudge() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "2048", "--explain", "none"])
        defer { server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "api"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func badInputGetsTheRightStatusAndTheServerStaysUp() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "1024", "--max-tokens-limit", "512",
                                 "--api-key-env", "THEMIS_TEST_KEY", "--name", "smol", "--idle-timeout", "3"],
                                environment: ["THEMIS_TEST_KEY": "s3cret-key"])
        defer { server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "smol", "errors", "--key", "s3cret-key", "--idle", "3"], measured: 30)
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// A judge request with a long answer no longer holds the engine: a 2-token completion that
    /// arrives while the judge's prompts go in is answered first, and neither answer changes.
    @Test func aCompletionIsAnsweredWhileALongJudgeRequestRuns() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "2048", "--explain", "none",
                                 "--prefix-cache-mib", "0"])
        defer { server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "interleave"], measured: 20)
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// Device memory exhaustion on the real Vulkan loader and lavapipe (whose device memory is host
    /// memory: the server's address space is capped while it runs): the request that needs a new
    /// sequence's cache gets 503 out_of_memory, the running one finishes, the server stays up and
    /// serves both once memory is back.
    @Test func outOfDeviceMemoryAnswers503AndTheServerStaysUp() throws {
        // a context of 8192 makes each sequence's cache (377 MB) larger than the pool's 256 MiB blocks
        let server = try Server(["--model", CLI.smollm, "--device", "vulkan:0", "--ctx-size", "8192", "--parallel", "2"])
        defer { server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "oom", "--pid", String(server.child.pid)], measured: 50)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!server.log.contains("Fatal error"), "\(server.log)")
    }

    @Test func aFullQueueAnswers503AndALeavingClientFreesItsSequence() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "2048", "--parallel", "1", "--queue", "1"])
        defer { server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let busy = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "busy"])
        #expect(busy.status == 0, "\(busy.stderr)")
        let gone = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "disconnect"])
        #expect(gone.status == 0, "\(gone.stderr)")
    }

    /// 32 clients, 300 requests, each checked against its prompt's own greedy answer (make test-all).
    @Test(.enabled(if: TestTier.full, "slow real-model case: make test-all runs it"))
    func loadTestLosesAndMixesNothing() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "512", "--parallel", "8"])
        defer { server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "load", "--clients", "32", "--requests", "300",
                                 "--max-tokens", "12", "--deadline", "480"], measured: 110)
        #expect(r.status == 0, "\(r.stderr)")
        let f = r.figures
        #expect(f["requests"] as? Int == 300)
        print("serve load test: \(r.stdout)")
    }

    @Test func sigtermLetsAStreamingResponseFinish() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "512"])
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "shutdown", "--pid", String(server.child.pid)])
        #expect(r.status == 0, "\(r.stderr)")
        let ended = server.child.waitForExit(timeout: Budget.limit(measured: 5, floor: 30))
        #expect(ended == .exited(0), "the server did not exit cleanly after SIGTERM: \(ended.map(String.init(describing:)) ?? "still running")")
    }
}
