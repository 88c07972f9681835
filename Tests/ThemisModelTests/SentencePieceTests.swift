import Foundation
import Testing
import ThemisModel

/// The SentencePiece tokenizer against llama.cpp's ids on a few hundred varied strings
/// (`scripts/spm-tokenize-reference`): Gemma 3's real vocabulary (no space prefix, whitespace-run
/// and newline tokens of its own) and the tiny Llama's trained on the spot (space prefix, byte
/// fallback for most characters).
@Suite("SentencePiece tokenizer against llama.cpp")
struct SentencePieceTests {
    struct Recording: Decodable {
        struct Case: Decodable {
            let text: String
            let ids: [Int32]
            let ids_special: [Int32]
        }
        struct Detokenized: Decodable {
            let label: String
            let ids: [Int32]
            /// Hex of each token's piece, without and with special tokens shown.
            let pieces: [String]
            let pieces_special: [String]
        }
        let cases: [Case]
        let detokenize: [Detokenized]
    }

    static func file(_ model: String) throws -> GGUFFile {
        if model == "gemma-3-270m" { return try GGUFFile(path: TestSupport.modelPath(ReferenceModel.gemma3.modelFile)) }
        return try GGUFFile(path: TestSupport.ownReferenceDirectory.appendingPathComponent("tiny-llama.gguf").path)
    }

    static func recording(_ model: String) throws -> Recording {
        let url = TestSupport.ownReferenceDirectory.appendingPathComponent("spm-tokenize.\(model).json")
        return try JSONDecoder().decode(Recording.self, from: Data(contentsOf: url))
    }

    @Test("ids equal llama.cpp's, special tokens parsed and not", arguments: ["gemma-3-270m", "tiny-llama"])
    func idsEqualLlamaCpp(_ model: String) throws {
        let tokenizer = try Tokenizer(gguf: Self.file(model))
        #expect(tokenizer.kind == .sentencePiece)
        let recording = try Self.recording(model)
        #expect(recording.cases.count >= 300)
        var mismatches = 0
        for c in recording.cases {
            let plain = tokenizer.encode(c.text, parseSpecial: false, addBOS: false)
            let special = tokenizer.encode(c.text, parseSpecial: true, addBOS: false)
            if plain != c.ids || special != c.ids_special { mismatches += 1 }
            #expect(plain == c.ids, "\(c.text.debugDescription): \(plain) vs llama.cpp's \(c.ids)")
            #expect(special == c.ids_special, "\(c.text.debugDescription) (special): \(special) vs llama.cpp's \(c.ids_special)")
        }
        print("[spm \(model)] \(recording.cases.count) strings, \(mismatches) differ from llama.cpp")
    }

    @Test("each token's bytes equal llama.cpp's piece", arguments: ["gemma-3-270m", "tiny-llama"])
    func piecesEqualLlamaCpp(_ model: String) throws {
        let tokenizer = try Tokenizer(gguf: Self.file(model))
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        for d in try Self.recording(model).detokenize {
            #expect(d.ids.map { hex(tokenizer.tokenBytes($0)) } == d.pieces, "\(d.label)")
            #expect(d.ids.map { hex(tokenizer.tokenBytes($0, includeSpecial: true)) } == d.pieces_special, "\(d.label) (special)")
        }
    }
}
