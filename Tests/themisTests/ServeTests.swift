import Foundation
import Testing

/// `themis serve` on a loopback port, driven by the real `openai` Python client
/// (Tests/themisTests/Python/openai_checks.py).
@Suite("command line: serve", .serialized)
struct ServeTests {
    static let script = CLI.root.appendingPathComponent("Tests/themisTests/Python/openai_checks.py").path

    /// A running server and what it printed.
    final class Server: @unchecked Sendable {
        let process = Process()
        let errors = Pipe()
        var port = 0
        var log = ""

        init(_ arguments: [String], environment: [String: String] = [:]) throws {
            process.executableURL = URL(fileURLWithPath: CLI.binary)
            process.arguments = ["serve", "--port", "0"] + arguments
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v }
            process.environment = env
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            // the chosen port is on the first stderr line: "themis: serving M on http://127.0.0.1:PORT ..."
            let deadline = Date().addingTimeInterval(120)
            var buffer = Data()
            while Date() < deadline {
                let chunk = errors.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                buffer += chunk
                log = String(decoding: buffer, as: UTF8.self)
                if let range = log.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                    port = Int(log[range].split(separator: ":").last!)!
                    break
                }
            }
        }

        var base: String { "http://127.0.0.1:\(port)" }

        func stop() -> Int32 {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var figures: [String: Any] {
            (stdout.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }) ?? [:]
        }
    }

    static func python(_ arguments: [String], timeout: Double = 600) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script] + arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        nonisolated(unsafe) var o = Data(), e = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { o = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { e = err.fileHandleForReading.readDataToEndOfFile() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { p.terminate(); Issue.record("openai_checks.py \(arguments) ran past \(timeout) s") }
        p.waitUntilExit()
        group.wait()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func openAIClientChatStreamingLogprobsAndJudge() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "2048", "--explain", "none"])
        defer { _ = server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "api"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func badInputGetsTheRightStatusAndTheServerStaysUp() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "1024", "--max-tokens-limit", "512",
                                 "--api-key-env", "THEMIS_TEST_KEY", "--name", "smol"],
                                environment: ["THEMIS_TEST_KEY": "s3cret-key"])
        defer { _ = server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "smol", "errors", "--key", "s3cret-key"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func aFullQueueAnswers503AndALeavingClientFreesItsSequence() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "2048", "--parallel", "1", "--queue", "1"])
        defer { _ = server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let busy = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "busy"])
        #expect(busy.status == 0, "\(busy.stderr)")
        let gone = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "disconnect"])
        #expect(gone.status == 0, "\(gone.stderr)")
    }

    /// 32 clients, 300 requests, each checked against its prompt's own greedy answer.
    @Test func loadTestLosesAndMixesNothing() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "512", "--parallel", "8"])
        defer { _ = server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "load", "--clients", "32", "--requests", "300",
                                 "--max-tokens", "12", "--deadline", "480"], timeout: 540)
        #expect(r.status == 0, "\(r.stderr)")
        let f = r.figures
        #expect(f["requests"] as? Int == 300)
        print("serve load test: \(r.stdout)")
    }

    @Test func sigtermLetsAStreamingResponseFinish() throws {
        let server = try Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "512"])
        try #require(server.port > 0, "server did not start: \(server.log)")
        let r = try Self.python([server.base, "SmolLM2-135M-Instruct.Q4_1", "shutdown", "--pid", String(server.process.processIdentifier)])
        #expect(r.status == 0, "\(r.stderr)")
        let deadline = Date().addingTimeInterval(30)
        while server.process.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!server.process.isRunning, "the server did not exit after SIGTERM")
        #expect(server.stop() == 0)
    }
}
