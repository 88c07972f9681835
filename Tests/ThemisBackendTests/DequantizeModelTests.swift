import Foundation
import Testing
import ThemisTestSupport
import ThemisBackend

/// Dequantisation of real model tensors against the Python `gguf` package.
///
/// `scripts/dequant-reference.py sample` picks a few tensors of every storage type in the model,
/// reports each one's file offset and dequantises its first rows; this test reads the same bytes
/// from the file itself and compares bit for bit. It needs python3 with `gguf`
/// (`python3 -m pip install gguf`) and the models (`scripts/fetch-models`); it fails, not skips,
/// without them. Python is `$THEMIS_PYTHON`, else `.venv/bin/python3` in the package, else
/// `python3` on the PATH; models are in `$THEMIS_MODELS`, else `~/.cache/themis/models`.
@Suite struct DequantizeModelTests {
    struct Model: Sendable, CustomTestStringConvertible {
        let file: String
        /// Storage types the model is known to contain; the sample must cover each of them.
        let types: Set<StorageType>
        var testDescription: String { file }
    }

    static let models = [
        Model(file: "SmolLM2-135M-Instruct.Q4_1.gguf", types: [.q4_1, .q8_0, .f32]),
        Model(file: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", types: [.q5_0, .q8_0, .q4K, .q6K, .f32]),
    ]

    /// One entry of the script's `manifest.json`.
    struct Entry: Decodable {
        let name: String
        let type: UInt32
        let offset: UInt64
        let rowLength: Int
        let rows: Int
        let file: String
    }

    struct Manifest: Decodable {
        let tensors: [Entry]
    }

    @Test(arguments: models)
    func matchesGGUFPackage(_ model: Model) throws {
        let environment = ProcessInfo.processInfo.environment
        let modelFolder =
            environment["THEMIS_MODELS"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/themis/models")
        let modelURL = modelFolder.appendingPathComponent(model.file)
        try #require(
            FileManager.default.fileExists(atPath: modelURL.path),
            "model \(modelURL.path) not found: run scripts/fetch-models (or set THEMIS_MODELS)")
        let root = try #require(repositoryRoot(), "scripts/dequant-reference.py not found above \(#filePath)")

        let output = FileManager.default.temporaryDirectory
            .appendingPathComponent("themis-dequant-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        try runPython(
            root: root,
            arguments: [
                root.appendingPathComponent("scripts/dequant-reference.py").path,
                "sample", modelURL.path, output.path, "--per-type", "3", "--rows", "2",
            ])

        let manifest = try JSONDecoder().decode(
            Manifest.self, from: Data(contentsOf: output.appendingPathComponent("manifest.json")))
        let file = try FileHandle(forReadingFrom: modelURL)
        defer { try? file.close() }
        var covered = Set<StorageType>()
        for entry in manifest.tensors {
            let type = try #require(StorageType(rawValue: entry.type), "\(entry.name): unknown ggml type \(entry.type)")
            covered.insert(type)
            let count = entry.rows * entry.rowLength
            try file.seek(toOffset: entry.offset)
            let bytes = try #require(try file.read(upToCount: type.byteCount(elements: count)))
            try #require(bytes.count == type.byteCount(elements: count), "\(entry.name): short read")
            let actual = bytes.withUnsafeBytes { Dequantize.row(type, $0, count: count) }
            let expected = floats(from: try Data(contentsOf: output.appendingPathComponent(entry.file)))
            try #require(expected.count == count, "\(entry.name): python wrote \(expected.count) values, expected \(count)")
            if let (index, differing) = firstBitDifference(actual, expected) {
                let first = "first at \(index): \(actual[index]), gguf says \(expected[index])"
                Issue.record("\(entry.name) (\(type)): \(differing) of \(count) values differ; \(first)")
            }
        }
        #expect(model.types.isSubset(of: covered), "sampled types \(covered), expected at least \(model.types)")
    }

    struct PythonUnavailable: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs the Python interpreter with `arguments`; fails the test with its output if it fails.
    private func runPython(root: URL, arguments: [String]) throws {
        let environment = ProcessInfo.processInfo.environment
        let venvPython = root.appendingPathComponent(".venv/bin/python3").path
        let python = environment["THEMIS_PYTHON"]
            ?? (FileManager.default.isExecutableFile(atPath: venvPython) ? venvPython : "python3")
        let run: ChildProcess.Completed
        do {
            run = try ChildProcess.run(python, arguments, limit: Budget.limit(measured: 30))
        } catch {
            throw PythonUnavailable(description: "cannot start \(python) (\(error)); python3 with the gguf package is required")
        }
        let text = run.stdout + run.stderr
        let status = run.termination.status
        let hint =
            switch status {
            case 127: "python3 not found; install Python 3 and `python3 -m pip install gguf`"
            case 3: "the Python gguf package is missing: `python3 -m pip install gguf`"
            default: "dequant-reference.py failed"
            }
        try #require(status == 0, "\(hint) (exit \(status)):\n\(text)")
    }
}
