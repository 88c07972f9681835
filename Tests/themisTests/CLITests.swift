import Foundation
import Testing
import ThemisTestSupport

/// Runs the built `themis` binary and checks exit statuses and error lines.
enum CLI {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var binary: String {
        #if DEBUG
        return root.appendingPathComponent(".build/debug/themis").path
        #else
        return root.appendingPathComponent(".build/release/themis").path
        #endif
    }

    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
        var stderrLines: [Substring] { stderr.split(separator: "\n") }
    }

    /// Runs themis with `arguments` and waits for it to exit.
    ///
    /// `measured` is how long the command took on the slower machine class with the rest of the
    /// suite running beside it; the process is stopped (and the test fails) only past
    /// `Budget.limit(measured:)`, so the limit guards against hangs, not against a slow machine.
    static func run(_ arguments: [String], environment: [String: String] = [:], measured: Double = 2) throws -> Output {
        let limit = Budget.limit(measured: measured)
        let start = Date()
        let run = try ChildProcess.run(binary, arguments, environment: environment, limit: limit)
        if run.ranPastLimit {
            Issue.record("themis \(arguments.prefix(2).joined(separator: " ")) ran past its limit of \(Int(limit)) s (measured \(measured) s): stopped")
        }
        let seconds = Date().timeIntervalSince(start)
        if seconds > 5 { print("[duration] themis \(arguments.prefix(2).joined(separator: " ")): \(String(format: "%.1f", seconds)) s (measured \(measured) s, limit \(Int(limit)) s)") }
        return Output(status: run.termination.status, stdout: run.stdout, stderr: run.stderr)
    }

    static var models: String {
        ProcessInfo.processInfo.environment["THEMIS_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSHomeDirectory() + "/.cache/themis/models"
    }
    static var smollm: String { models + "/SmolLM2-135M-Instruct.Q4_1.gguf" }

    static func temporaryFile(_ bytes: Data) throws -> String {
        let path = NSTemporaryDirectory() + "themis-test-\(UUID().uuidString).gguf"
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// A tiny GGUF writer for malformed-file tests.
struct GGUFBuilder {
    var version: UInt32 = 3
    var metadata: [(String, UInt32, Data)] = []
    var tensors: [(name: String, dims: [UInt64], type: UInt32, offset: UInt64)] = []
    var dataBytes = 0

    static func le<T: FixedWidthInteger>(_ v: T) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    static func str(_ s: String) -> Data { le(UInt64(s.utf8.count)) + Data(s.utf8) }

    mutating func string(_ key: String, _ value: String) { metadata.append((key, 8, Self.str(value))) }
    mutating func uint32(_ key: String, _ value: UInt32) { metadata.append((key, 4, Self.le(value))) }
    mutating func float32(_ key: String, _ value: Float) { metadata.append((key, 6, Self.le(value.bitPattern))) }

    func build() -> Data {
        var d = Data("GGUF".utf8)
        d += Self.le(version) + Self.le(UInt64(tensors.count)) + Self.le(UInt64(metadata.count))
        for (k, t, v) in metadata { d += Self.str(k) + Self.le(t) + v }
        for t in tensors {
            d += Self.str(t.name) + Self.le(UInt32(t.dims.count))
            for x in t.dims { d += Self.le(x) }
            d += Self.le(t.type) + Self.le(t.offset)
        }
        while d.count % 32 != 0 { d.append(0) }
        d += Data(count: dataBytes)
        return d
    }

    /// A llama-like header with one f32 tensor.
    static func minimal(architecture: String = "llama") -> GGUFBuilder {
        var b = GGUFBuilder()
        b.string("general.architecture", architecture)
        b.tensors = [("token_embd.weight", [32, 4], 0, 0)]
        b.dataBytes = 32 * 4 * 4
        return b
    }
}

@Suite("command line: bad input", .serialized)
struct CLIErrorTests {
    func expectOneLineError(_ o: CLI.Output, contains text: String, status: Int32? = nil) {
        #expect(o.status != 0)
        if let status { #expect(o.status == status) }
        #expect(o.stderrLines.count == 1, "expected one stderr line, got: \(o.stderr)")
        #expect(o.stderr.contains(text), "stderr: \(o.stderr)")
        #expect(!o.stderr.contains("Fatal error"), "crashed: \(o.stderr)")
    }

    @Test func missingModelFile() throws {
        let o = try CLI.run(["generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi", "--device", "cpu"])
        expectOneLineError(o, contains: "model file not found")
    }

    @Test func truncatedHeader() throws {
        let head = try #require(try FileHandle(forReadingFrom: URL(fileURLWithPath: CLI.smollm)).read(upToCount: 100_000))
        let path = try CLI.temporaryFile(head)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let o = try CLI.run(["generate", "--model", path, "--prompt", "hi", "--device", "cpu"])
        expectOneLineError(o, contains: "truncated")
    }

    @Test func truncatedTensorData() throws {
        let head = try #require(try FileHandle(forReadingFrom: URL(fileURLWithPath: CLI.smollm)).read(upToCount: 8_000_000))
        let path = try CLI.temporaryFile(head)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let o = try CLI.run(["generate", "--model", path, "--prompt", "hi", "--device", "cpu"])
        expectOneLineError(o, contains: "outside the file")
    }

    @Test func badMagic() throws {
        let path = try CLI.temporaryFile(Data("NOT A GGUF FILE AT ALL".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let o = try CLI.run(["generate", "--model", path, "--prompt", "hi", "--device", "cpu"])
        expectOneLineError(o, contains: "bad magic")
    }

    @Test func unsupportedVersion() throws {
        var b = GGUFBuilder.minimal()
        b.version = 1
        let path = try CLI.temporaryFile(b.build())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let o = try CLI.run(["generate", "--model", path, "--prompt", "hi", "--device", "cpu"])
        expectOneLineError(o, contains: "unsupported GGUF version 1")
    }

    @Test func tensorOutOfBounds() throws {
        var b = GGUFBuilder.minimal()
        b.tensors = [("token_embd.weight", [32, 4], 0, 1 << 20)]
        let path = try CLI.temporaryFile(b.build())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let o = try CLI.run(["generate", "--model", path, "--prompt", "hi", "--device", "cpu"])
        expectOneLineError(o, contains: "outside the file")
    }

    @Test func unknownTensorType() throws {
        var b = GGUFBuilder.minimal()
        b.tensors = [("token_embd.weight", [32, 4], 99, 0)]
        let path = try CLI.temporaryFile(b.build())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let o = try CLI.run(["generate", "--model", path, "--prompt", "hi", "--device", "cpu"])
        expectOneLineError(o, contains: "unknown or unsupported type id 99")
    }

    @Test func unsupportedArchitecture() throws {
        let path = try CLI.temporaryFile(GGUFBuilder.minimal(architecture: "gptneox").build())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let o = try CLI.run(["generate", "--model", path, "--prompt", "hi", "--device", "cpu"])
        expectOneLineError(o, contains: "unsupported model architecture 'gptneox'")
    }

    @Test func promptLongerThanContext() throws {
        let prompt = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 20)
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--prompt", prompt, "--ctx-size", "32", "--device", "cpu"])
        expectOneLineError(o, contains: "does not fit the context of 32 tokens")
    }

    @Test(arguments: [
        (["--temperature=-1"], "temperature"),
        (["--top-p=0"], "top-p"),
        (["--top-p=1.5"], "top-p"),
        (["--min-p=2"], "min-p"),
        (["--top-k=-3"], "top-k"),
        (["--repeat-penalty=0"], "repetition penalty"),
    ])
    func invalidSampling(flags: [String], mentions: String) throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--prompt", "hi", "--device", "cpu"] + flags)
        expectOneLineError(o, contains: mentions)
    }

    @Test func unknownDevice() throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--prompt", "hi", "--device", "vulkan:7"])
        expectOneLineError(o, contains: "no device 'vulkan:7'", status: 2)
        #expect(o.stderr.contains("cpu"))
    }
}
