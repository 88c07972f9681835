import Foundation
import Testing
import ThemisTestSupport

/// One way to break the real SmolLM2 file, and the words the error line must contain.
enum Corruption: String, CaseIterable, CustomTestStringConvertible, Sendable {
    // truncations at every section
    case emptyFile, cutInMagic, cutInCounts, cutInMetadataKey, cutInTokenArray, cutInTensorInfos, cutInData
    // counts and lengths larger than the file
    case hugeTensorCount, hugeMetadataCount, hugeKeyLength, hugeArrayCount, hugeArrayThatFits
    // structure
    case deepNesting, duplicateKey, duplicateTensor, unknownValueType, badAlignment, badVersion, badMagic
    // tensor infos
    case overflowingDims, zeroDim, fiveDims, offsetPastEnd, misalignedOffset, overlappingOffsets
    case normDeclaredQ4_1, unknownTensorType, wrongShape, missingTensor, strayTensor, unknownArchitecture
    // hyper-parameters and keys
    case missingArchitecture, missingBlockCount, missingTokens, hugeBlockCount, negativeRopeDimension
    case oddRopeDimension, nanRopeBase, zeroRopeBase, negativeRopeBase, nanEpsilon, zeroEpsilon
    case zeroHeads, headsNotDividing, zeroContext, bosOutOfRange, eosNegative, hugeVocabulary

    var testDescription: String { rawValue }

    /// What the single error line must say.
    var mentions: String {
        switch self {
        case .emptyFile, .cutInMagic, .badMagic: "bad magic"
        case .cutInCounts, .cutInMetadataKey, .cutInTokenArray, .cutInTensorInfos: "truncated"
        case .cutInData, .offsetPastEnd: "outside the file"
        case .hugeTensorCount: "tensor count"
        case .hugeMetadataCount: "metadata count"
        case .hugeKeyLength: "metadata key"
        case .hugeArrayCount: "tokenizer.ggml.tokens"
        case .hugeArrayThatFits: "is an array of 16777217 items"
        case .deepNesting: "nests arrays more than 4 deep"
        case .duplicateKey: "'llama.block_count' appears twice"
        case .duplicateTensor: "'blk.0.attn_q.weight' appears twice"
        case .unknownValueType: "unknown GGUF metadata value type 13"
        case .badAlignment: "general.alignment"
        case .badVersion: "unsupported GGUF version 4"
        case .overflowingDims, .zeroDim, .fiveDims: "'blk.0.attn_q.weight' has an invalid shape"
        case .misalignedOffset: "not a multiple of the file's alignment"
        case .overlappingOffsets: "overlap"
        case .normDeclaredQ4_1: "'output_norm.weight' is stored as q4_1"
        case .unknownTensorType: "unknown or unsupported type id 99"
        case .wrongShape: "blk.0.attn_q.weight has shape"
        case .missingTensor: "'blk.3.ffn_up.weight' is missing"
        case .strayTensor: "tensor 'blk.29.attn_norm.weight' is not part of the llama architecture"
        case .unknownArchitecture: "unsupported model architecture 'mamba' (supported: llama, qwen2, qwen3, phi3, gemma2, gemma3)"
        case .missingArchitecture: "unsupported model architecture '(none)'"
        case .missingBlockCount: "'llama.block_count' is missing"
        case .missingTokens: "tokenizer.ggml.tokens"
        case .hugeBlockCount: "llama.block_count is 1099511627776"
        case .negativeRopeDimension: "llama.rope.dimension_count is -64"
        case .oddRopeDimension: "rope.dimension_count 63 is odd"
        case .nanRopeBase, .zeroRopeBase, .negativeRopeBase: "llama.rope.freq_base"
        case .nanEpsilon, .zeroEpsilon: "llama.attention.layer_norm_rms_epsilon"
        case .zeroHeads: "llama.attention.head_count is 0"
        case .headsNotDividing: "do not divide into 7 KV heads"
        case .zeroContext: "llama.context_length is 0"
        case .bosOutOfRange: "tokenizer.ggml.bos_token_id is 1000000"
        case .eosNegative: "tokenizer.ggml.eos_token_id is -1"
        case .hugeVocabulary: "llama.vocab_size is 100000000"
        }
    }

    /// Writes the broken file to `path`.
    func write(from s: GGUFSurgeon, to path: String) throws {
        var s = s
        func prefix(_ n: Int) throws { try s.original.prefix(n).write(to: URL(fileURLWithPath: path)) }
        let headerEnd = s.header().count
        switch self {
        case .emptyFile: return try Data().write(to: URL(fileURLWithPath: path))
        case .cutInMagic: return try prefix(3)
        case .cutInCounts: return try prefix(14)
        case .cutInMetadataKey: return try prefix(s.offset(ofPair: "llama.block_count") + 5)
        case .cutInTokenArray: return try prefix(s.offset(ofPair: "tokenizer.ggml.tokens") + 200_000)
        case .cutInTensorInfos: return try prefix(headerEnd - 300)
        case .cutInData: return try prefix(s.original.count / 2)
        case .hugeTensorCount: return try s.write(to: path, header: s.header(tensorCount: 1 << 62))
        case .hugeMetadataCount: return try s.write(to: path, header: s.header(pairCount: 1 << 60))
        case .hugeKeyLength:
            var h = s.header()
            h.replaceSubrange(24..<32, with: GGUFSurgeon.le(UInt64(1) << 63))
            return try s.write(to: path, header: h)
        case .hugeArrayCount:
            let i = try #require(s.pairs.firstIndex { $0.key == "tokenizer.ggml.tokens" })
            var v = s.pairs[i].value
            v.replaceSubrange(v.startIndex + 4..<v.startIndex + 12, with: GGUFSurgeon.le(UInt64(1) << 40))
            s.pairs[i].value = v
        case .hugeArrayThatFits:
            s.set("test.big", type: 9, GGUFSurgeon.le(UInt32(0)) + GGUFSurgeon.le(UInt64(1 << 24 + 1)) + Data(count: 1 << 24 + 1))
        case .deepNesting:
            // 100,000 levels of one-element arrays, innermost a uint8
            var v = Data()
            for _ in 0..<100_000 { v += GGUFSurgeon.le(UInt32(9)) + GGUFSurgeon.le(UInt64(1)) }
            v.removeLast(12)
            v += GGUFSurgeon.le(UInt32(0)) + GGUFSurgeon.le(UInt64(1)) + Data([7])
            s.set("test.nested", type: 9, v)
        case .duplicateKey: s.pairs.append(try #require(s.pairs.first { $0.key == "llama.block_count" }))
        case .duplicateTensor: s.tensors.append(try #require(s.tensors.first { $0.name == "blk.0.attn_q.weight" }))
        case .unknownValueType: s.set("test.odd", type: 13, GGUFSurgeon.le(UInt32(0)))
        case .badAlignment:
            s.set("general.alignment", uint32: 3)
        case .badVersion: s.version = 4
        case .badMagic:
            var h = s.header()
            h.replaceSubrange(0..<4, with: Data("GGML".utf8))
            return try s.write(to: path, header: h)
        case .overflowingDims: s.tensor("blk.0.attn_q.weight") { $0.dims = [1 << 39, 1 << 39, 1 << 39] }
        case .zeroDim: s.tensor("blk.0.attn_q.weight") { $0.dims = [576, 0] }
        case .fiveDims: s.tensor("blk.0.attn_q.weight") { $0.dims = [576, 1, 1, 1, 576] }
        case .offsetPastEnd:
            let end = UInt64(s.original.count)
            s.tensor("blk.29.ffn_up.weight") { $0.offset = end }
        case .misalignedOffset: s.tensor("blk.0.attn_q.weight") { $0.offset += 1 }
        case .overlappingOffsets:
            let offset = try #require(s.tensors.first { $0.name == "blk.0.attn_k.weight" }).offset
            s.tensor("blk.0.attn_q.weight") { $0.offset = offset }
        case .normDeclaredQ4_1: s.tensor("output_norm.weight") { $0.type = 3 }
        case .unknownTensorType: s.tensor("blk.0.attn_q.weight") { $0.type = 99 }
        case .wrongShape: s.tensor("blk.0.attn_q.weight") { $0.dims = [576, 192] }
        case .missingTensor: s.tensors.removeAll { $0.name == "blk.3.ffn_up.weight" }
        // one block fewer: the last block's tensors are left over
        case .strayTensor: s.set("llama.block_count", uint32: 29)
        case .unknownArchitecture: s.set("general.architecture", type: 8, GGUFSurgeon.str("mamba"))
        case .missingArchitecture: s.remove("general.architecture")
        case .missingBlockCount: s.remove("llama.block_count")
        case .missingTokens: s.remove("tokenizer.ggml.tokens")
        case .hugeBlockCount: s.set("llama.block_count", uint64: 1 << 40)
        case .negativeRopeDimension: s.set("llama.rope.dimension_count", int32: -64)
        case .oddRopeDimension: s.set("llama.rope.dimension_count", uint32: 63)
        case .nanRopeBase: s.set("llama.rope.freq_base", float32: .nan)
        case .zeroRopeBase: s.set("llama.rope.freq_base", float32: 0)
        case .negativeRopeBase: s.set("llama.rope.freq_base", float32: -10_000)
        case .nanEpsilon: s.set("llama.attention.layer_norm_rms_epsilon", float32: .nan)
        case .zeroEpsilon: s.set("llama.attention.layer_norm_rms_epsilon", float32: 0)
        case .zeroHeads: s.set("llama.attention.head_count", uint32: 0)
        case .headsNotDividing: s.set("llama.attention.head_count_kv", uint32: 7)
        case .zeroContext: s.set("llama.context_length", uint32: 0)
        case .bosOutOfRange: s.set("tokenizer.ggml.bos_token_id", uint32: 1_000_000)
        case .eosNegative: s.set("tokenizer.ggml.eos_token_id", int32: -1)
        case .hugeVocabulary: s.set("llama.vocab_size", uint32: 100_000_000)
        }
        try s.write(to: path)
    }
}

/// Model files from strangers: every corruption of the real SmolLM2 file gets one error line
/// naming the problem and a non-zero exit, never a signal, a hang or a run on garbage.
@Suite("corrupt model files", .serialized)
struct CorruptModelTests {
    static let surgeon = Result { try GGUFSurgeon(path: CLI.smollm) }

    @Test(arguments: Corruption.allCases)
    func corruptFileIsOneClearError(_ corruption: Corruption) throws {
        let surgeon = try Self.surgeon.get()
        let path = NSTemporaryDirectory() + "themis-corrupt-\(corruption.rawValue)-\(getpid()).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try corruption.write(from: surgeon, to: path)
        let start = Date()
        let o = try CLI.run(["generate", "--model", path, "--prompt", "hi", "--max-tokens", "1", "--device", "cpu"], measured: 1)
        let seconds = Date().timeIntervalSince(start)
        print("[corrupt model] \(corruption.rawValue): status \(o.status) in \(String(format: "%.2f", seconds)) s: \(o.stderr.trimmingCharacters(in: .newlines))")
        #expect(o.status == 1, "\(corruption): status \(o.status) (over 128 is a signal)")
        #expect(o.stderrLines.count == 1, "expected one stderr line, got: \(o.stderr)")
        #expect(o.stderr.hasPrefix("themis: error: "), "stderr: \(o.stderr)")
        #expect(o.stderr.contains(corruption.mentions), "\(corruption) should mention '\(corruption.mentions)': \(o.stderr)")
        #expect(o.stdout.isEmpty, "a corrupt model generated: \(o.stdout)")
    }

    /// The tensors only Gemma 3 has (per-head Q/K norms, post-norms), missing or misshapen in the
    /// tiny Gemma 3 file: one line naming the tensor.
    @Test(arguments: [
        ("missing", "blk.2.attn_q_norm.weight", "'blk.2.attn_q_norm.weight' is missing"),
        ("shape", "blk.0.post_ffw_norm.weight", "blk.0.post_ffw_norm.weight has shape [32], expected [64]"),
    ])
    func gemmaTensorsAreChecked(_ kind: String, _ tensor: String, _ mentions: String) throws {
        let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ThemisModelTests/Reference/tiny-gemma3.gguf").path
        var s = try GGUFSurgeon(path: tiny)
        if kind == "missing" { s.tensors.removeAll { $0.name == tensor } } else { s.tensor(tensor) { $0.dims = [32] } }
        let path = NSTemporaryDirectory() + "themis-corrupt-gemma3-\(kind)-\(getpid()).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try s.write(to: path)
        let o = try CLI.run(["generate", "--model", path, "--prompt", "hi", "--max-tokens", "1", "--device", "cpu"], measured: 1)
        #expect(o.status == 1, "status \(o.status)")
        #expect(o.stderrLines.count == 1 && o.stderr.contains(mentions), "stderr: \(o.stderr)")
    }

    /// A context whose KV cache size overflows is refused before anything is allocated.
    @Test(arguments: ["72057594037927937", "9223372036854775807", "100000000"])
    func contextBeyondMemoryIsOneClearError(_ size: String) throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--prompt", "hi", "--max-tokens", "1", "--device", "cpu",
                             "--ctx-size", size], measured: 1)
        #expect(o.status == 1, "status \(o.status)")
        #expect(o.stderrLines.count == 1, "expected one stderr line, got: \(o.stderr)")
        #expect(o.stderr.contains("KV cache"), "stderr: \(o.stderr)")
        // the server refuses it at start, instead of dying on its first request
        let serve = try CLI.run(["serve", "--model", CLI.smollm, "--device", "cpu", "--port", "0", "--ctx-size", size], measured: 1)
        #expect(serve.status == 1 && serve.stderr.contains("KV cache"), "serve: status \(serve.status): \(serve.stderr)")
    }
}
