import Foundation
import Testing
import ThemisModel

/// Where the test data lives: llama.cpp reference recordings and the downloaded model files.
enum TestSupport {
    /// The package root, found from this file's location (`Tests/ThemisModelTests/TestSupport.swift`).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/reference` beside the package: the llama.cpp reference recordings.
    static let referenceDirectory: URL = packageRoot.deletingLastPathComponent()
        .appendingPathComponent("shared").appendingPathComponent("reference")

    /// `Tests/ThemisModelTests/Reference`: recordings and tiny models this project made.
    static let ownReferenceDirectory: URL = packageRoot.appendingPathComponent("Tests/ThemisModelTests/Reference")

    /// `$THEMIS_MODELS`, else `~/.cache/themis/models`.
    static let modelDirectory: URL = {
        if let path = ProcessInfo.processInfo.environment["THEMIS_MODELS"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".cache/themis/models")
    }()

    /// The path of model file `name`; throws (failing the test) when it has not been downloaded.
    static func modelPath(_ name: String) throws -> String {
        let url = modelDirectory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TestDataError.missing(
                "model file \(url.path) is missing: run `make models` (or set THEMIS_MODELS to the folder holding it)")
        }
        return url.path
    }
}

/// Test data that is absent or unreadable. Tests throw it so they fail with the reason instead of skipping.
struct TestDataError: Error, CustomStringConvertible {
    let description: String
    static func missing(_ message: String) -> TestDataError { TestDataError(description: message) }
}

/// The default models and their llama.cpp recordings.
enum ReferenceModel: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case smolLM2
    case qwen25Coder
    case gemma3

    var modelFile: String {
        switch self {
        case .smolLM2: return "SmolLM2-135M-Instruct.Q4_1.gguf"
        case .qwen25Coder: return "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
        case .gemma3: return "gemma-3-270m-q4_k_m.gguf"
        }
    }

    /// The recording: in `shared/reference` for the first two, in this target's `Reference`
    /// folder (recorded by `scripts/record-llamacpp-reference`) for Gemma 3.
    var referenceFile: URL {
        switch self {
        case .smolLM2: return TestSupport.referenceDirectory.appendingPathComponent("smollm2-135m-instruct-q4_1.llamacpp.json")
        case .qwen25Coder:
            return TestSupport.referenceDirectory.appendingPathComponent("qwen2.5-coder-0.5b-instruct-q4_k_m.llamacpp.json")
        case .gemma3: return TestSupport.ownReferenceDirectory.appendingPathComponent("gemma-3-270m-q4_k_m.llamacpp.json")
        }
    }

    /// transformers' exact logits on the same file and prompts (`scripts/record-transformers-reference`).
    var transformersFile: URL {
        TestSupport.ownReferenceDirectory.appendingPathComponent(
            referenceFile.lastPathComponent.replacingOccurrences(of: ".llamacpp.json", with: ".transformers.json"))
    }

    /// How far llama.cpp's logits may be from ours: mean absolute difference over its top 20,
    /// and the lead of its top token above which ours must be the same. llama.cpp rounds
    /// activations to 8 bits and keeps its KV cache in f16; on Gemma 3, whose logits run to 30
    /// and whose residual stream is large, that moves the logits by 0.52 on average (measured
    /// against transformers' f32 logits, which ours equal to 1e-4), so its bounds are wider.
    var llamaCppBounds: (meanError: Double, topLead: Float) { self == .gemma3 ? (0.75, 1.5) : (0.25, 0.3) }

    /// The chat format the file's template (or, for Gemma 3's template-less file, its family) renders.
    var templateKind: ChatTemplateKind { self == .gemma3 ? .gemma : .chatml }
    /// The spellings that open and close a turn in that format.
    var turnMarkers: (start: String, end: String) {
        self == .gemma3 ? ("<start_of_turn>", "<end_of_turn>") : ("<|im_start|>", "<|im_end|>")
    }
    /// Whether the file asks for BOS (`tokenizer.ggml.add_bos_token`).
    var addsBOS: Bool { self == .gemma3 }

    /// The tokens after which the recording's greedy continuation stopped: EOS, and for Gemma
    /// also `<end_of_turn>`.
    func stops(_ id: Int32, tokenizer: Tokenizer) -> Bool {
        id == tokenizer.eosID || (self == .gemma3 && tokenizer.spelling(of: id) == "<end_of_turn>")
    }

    var testDescription: String { rawValue }

    /// The opened model file (opened once per test run).
    func gguf() throws -> GGUFFile { try #require(ReferenceModel.loaded[self]).gguf.get() }

    /// The model's tokenizer (built once per test run).
    func tokenizer() throws -> Tokenizer { try #require(ReferenceModel.loaded[self]).tokenizer.get() }

    /// llama.cpp's recorded behaviour on this model.
    func reference() throws -> ReferenceRecording { try #require(ReferenceModel.recordings[self]).get() }

    private struct Loaded: Sendable {
        let gguf: Result<GGUFFile, any Error>
        let tokenizer: Result<Tokenizer, any Error>
    }

    private static let loaded: [ReferenceModel: Loaded] = Dictionary(
        uniqueKeysWithValues: allCases.map { model in
            let gguf = Result { try GGUFFile(path: TestSupport.modelPath(model.modelFile)) }
            let tokenizer = gguf.flatMap { file in Result { try Tokenizer(gguf: file) } }
            return (model, Loaded(gguf: gguf, tokenizer: tokenizer))
        })

    private static let recordings: [ReferenceModel: Result<ReferenceRecording, any Error>] =
        Dictionary(
            uniqueKeysWithValues: allCases.map { model in
                (model, Result { try ReferenceRecording.load(model.referenceFile) })
            })
}

/// One `*.llamacpp.json` file: see `shared/reference/README.md`.
struct ReferenceRecording: Decodable, Sendable {
    struct Case: Decodable, Sendable {
        let kind: String
        /// `chat` cases: the user message.
        let user: String?
        /// `chat` and `raw` cases: the prompt text given to llama.cpp.
        let prompt: String?
        /// `chat` and `raw` cases: its tokens.
        let promptIDs: [Int32]?
        /// `tokenize` cases: the text and its tokens.
        let text: String?
        let ids: [Int32]?
        let greedyIDs: [Int32]?
        let greedyText: String?
        /// `chat` and `raw` cases: [token id, logit] of the 20 highest logits after the prompt.
        let top20First: [[Double]]?

        enum CodingKeys: String, CodingKey {
            case kind, user, prompt, text, ids
            case top20First = "top20_first"
            case promptIDs = "prompt_ids"
            case greedyIDs = "greedy_ids"
            case greedyText = "greedy_text"
        }
    }

    let model: String
    let cases: [Case]

    var chatCases: [Case] { cases.filter { $0.kind == "chat" } }
    var rawCases: [Case] { cases.filter { $0.kind == "raw" } }
    var tokenizeCases: [Case] { cases.filter { $0.kind == "tokenize" } }

    static func load(_ url: URL) throws -> ReferenceRecording {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TestDataError.missing("reference recording \(url.path) is missing")
        }
        return try JSONDecoder().decode(ReferenceRecording.self, from: data)
    }
}

/// Writes a small GGUF file holding only metadata, for tests that need a model file with chosen keys.
struct TinyGGUF {
    enum Value {
        case string(String)
        case strings([String])
        case int32s([Int32])
        case uint32(UInt32)
        case bool(Bool)
    }

    var entries: [(key: String, value: Value)] = []

    /// A byte-level BPE vocabulary: the 256 single-byte tokens in byte order, then `extraTokens`, with `merges`.
    static func byteLevel(pre: String?, extraTokens: [String] = [], merges: [String] = []) -> TinyGGUF {
        var scalars: [Unicode.Scalar] = []
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                scalars.append(Unicode.Scalar(UInt8(byte)))
            } else {
                scalars.append(Unicode.Scalar(next)!)
                next += 1
            }
        }
        let tokens = scalars.map { String($0) } + extraTokens
        var file = TinyGGUF()
        file.entries.append(("tokenizer.ggml.model", .string("gpt2")))
        if let pre { file.entries.append(("tokenizer.ggml.pre", .string(pre))) }
        file.entries.append(("tokenizer.ggml.tokens", .strings(tokens)))
        file.entries.append(("tokenizer.ggml.token_type", .int32s(tokens.map { _ in 1 })))
        file.entries.append(("tokenizer.ggml.merges", .strings(merges)))
        return file
    }

    /// The file's bytes.
    var bytes: [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) {
            u64(UInt64(s.utf8.count))
            out.append(contentsOf: s.utf8)
        }
        u32(0x4655_4747)  // "GGUF"
        u32(3)
        u64(0)  // tensors
        u64(UInt64(entries.count))
        for (key, value) in entries {
            string(key)
            switch value {
            case .string(let s):
                u32(8)
                string(s)
            case .strings(let array):
                u32(9)
                u32(8)
                u64(UInt64(array.count))
                for item in array { string(item) }
            case .int32s(let array):
                u32(9)
                u32(5)
                u64(UInt64(array.count))
                for item in array { u32(UInt32(bitPattern: item)) }
            case .uint32(let v):
                u32(4)
                u32(v)
            case .bool(let b):
                u32(7)
                out.append(b ? 1 : 0)
            }
        }
        return out
    }

    /// Writes the file to a fresh temporary path and opens it.
    func open() throws -> GGUFFile {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("themis-test-\(UUID().uuidString).gguf")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try GGUFFile(path: url.path)
    }
}
