import Foundation
import Testing
import ThemisModel

/// The tokenizer against llama.cpp's recordings on both default models.
@Suite struct TokenizerTests {
    @Test("tokenize cases equal llama.cpp (no BOS, special tokens not parsed)", arguments: ReferenceModel.allCases)
    func tokenizeCases(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        let cases = try model.reference().tokenizeCases
        #expect(cases.count >= 20)
        for reference in cases {
            let text = try #require(reference.text)
            let ids = tokenizer.encode(text, parseSpecial: false, addBOS: false)
            #expect(ids == reference.ids, "\(model) tokenize \(text.debugDescription)")
        }
    }

    @Test("chat prompts equal llama.cpp (special tokens parsed)", arguments: ReferenceModel.allCases)
    func chatPrompts(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        let cases = try model.reference().chatCases
        #expect(!cases.isEmpty)
        for reference in cases {
            let prompt = try #require(reference.prompt)
            let ids = tokenizer.encode(prompt, parseSpecial: true, addBOS: false)
            #expect(ids == reference.promptIDs, "\(model) chat \(prompt.debugDescription)")
        }
    }

    @Test("raw prompts equal llama.cpp (special tokens not parsed)", arguments: ReferenceModel.allCases)
    func rawPrompts(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        let cases = try model.reference().rawCases
        #expect(!cases.isEmpty)
        for reference in cases {
            let prompt = try #require(reference.prompt)
            #expect(
                tokenizer.encode(prompt, parseSpecial: false, addBOS: false) == reference.promptIDs,
                "\(model) raw \(prompt.debugDescription)")
        }
    }

    @Test("the file's add_bos_token is followed when addBOS is nil", arguments: ReferenceModel.allCases)
    func bosFollowsFile(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        // SmolLM2 and Qwen ask for no BOS, Gemma does
        #expect(tokenizer.addsBOS == model.addsBOS)
        let bos = try #require(tokenizer.bosID)
        #expect(
            tokenizer.encode("Hello", parseSpecial: false)
                == (model.addsBOS ? [bos] : []) + tokenizer.encode("Hello", parseSpecial: false, addBOS: false))
        #expect(tokenizer.encode("Hello", parseSpecial: false, addBOS: true).first == bos)
    }

    @Test("special tokens are parsed only when asked", arguments: ReferenceModel.allCases)
    func specialParsing(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        let close = model.turnMarkers.end
        let imEnd = try #require(tokenizer.id(of: close))
        #expect(tokenizer.encode(close, parseSpecial: true, addBOS: false) == [imEnd])
        #expect(!tokenizer.encode(close, parseSpecial: false, addBOS: false).contains(imEnd))
        #expect(tokenizer.decode([imEnd]) == "")
        #expect(tokenizer.decode([imEnd], includeSpecial: true) == close)
        #expect(tokenizer.tokenType(imEnd) == .control)
    }

    @Test("user-defined tokens are matched even when special tokens are not parsed (as in llama.cpp)")
    func userDefinedTokens() throws {
        let tokenizer = try ReferenceModel.qwen25Coder.tokenizer()
        let toolCall = try #require(tokenizer.id(of: "<tool_call>"))
        #expect(tokenizer.tokenType(toolCall) == .userDefined)
        #expect(tokenizer.encode("a<tool_call>", parseSpecial: false, addBOS: false).last == toolCall)
        #expect(tokenizer.decode([toolCall]) == "<tool_call>")
    }

    @Test("end-of-generation tokens", arguments: ReferenceModel.allCases)
    func endOfGeneration(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        let eos = try #require(tokenizer.eosID)
        #expect(tokenizer.isEndOfGeneration(eos))
        for spelling in model == .gemma3 ? ["<end_of_turn>", "<eos>"] : ["<|im_end|>", "<|endoftext|>"] {
            let id = try #require(tokenizer.id(of: spelling))
            #expect(tokenizer.isEndOfGeneration(id), "\(spelling)")
        }
        let imStart = try #require(tokenizer.id(of: model.turnMarkers.start))
        #expect(!tokenizer.isEndOfGeneration(imStart))
        let hello = tokenizer.encode("Hello", parseSpecial: false, addBOS: false)
        #expect(!hello.contains { tokenizer.isEndOfGeneration($0) })
    }

    @Test("vocabulary metadata matches the files")
    func vocabularyMetadata() throws {
        let smol = try ReferenceModel.smolLM2.tokenizer()
        #expect(smol.vocabularySize == 49152)
        #expect(smol.bosID == 1)
        #expect(smol.eosID == 2)
        #expect(smol.preTokenizerName == "smollm")
        let qwen = try ReferenceModel.qwen25Coder.tokenizer()
        #expect(qwen.vocabularySize == 151936)
        #expect(qwen.eosID == 151645)
        #expect(qwen.preTokenizerName == "qwen2")
        #expect(qwen.id(of: "Ġthe") != nil)
        #expect(qwen.spelling(of: 151645) == "<|im_end|>")
    }

    @Test("decode(encode(x)) == x for every tokenize text", arguments: ReferenceModel.allCases)
    func roundTrip(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        for reference in try model.reference().tokenizeCases {
            let text = try #require(reference.text)
            let ids = tokenizer.encode(text, parseSpecial: false, addBOS: false)
            #expect(tokenizer.decode(ids) == text, "\(model) \(text.debugDescription)")
            // The recorded ids decode the same way.
            #expect(tokenizer.decode(reference.ids ?? []) == text, "\(model) \(text.debugDescription)")
        }
    }

    @Test(
        "streaming decoder emits decode's text, one id at a time, never a partial character",
        arguments: ReferenceModel.allCases)
    func streaming(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        let recording = try model.reference()
        var sequences: [[Int32]] = recording.tokenizeCases.compactMap(\.ids)
        sequences += recording.cases.compactMap(\.promptIDs)
        sequences += recording.cases.compactMap(\.greedyIDs)
        for includeSpecial in [false, true] {
            for ids in sequences {
                let expected = tokenizer.decode(ids, includeSpecial: includeSpecial)
                var decoder = tokenizer.makeStreamingDecoder(includeSpecial: includeSpecial)
                var streamed = ""
                for id in ids {
                    let chunk = decoder.append(id)
                    // A chunk holds only whole characters: a replacement character would mean a split one.
                    if !expected.unicodeScalars.contains("\u{FFFD}") {
                        #expect(!chunk.unicodeScalars.contains("\u{FFFD}"), "\(model) \(expected.debugDescription)")
                    }
                    streamed += chunk
                }
                streamed += decoder.finish()
                #expect(streamed == expected, "\(model) \(expected.debugDescription)")
            }
        }
    }

    @Test("streaming holds back a character split across tokens", arguments: ReferenceModel.allCases)
    func streamingSplitCharacters(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        let texts = ["😀👍🏽🇫🇷", "日本語のテキスト", "Ἀρχιμήδης ∑∫∂√∞", "👨‍👩‍👧"]
        for text in texts {
            let ids = tokenizer.encode(text, parseSpecial: false, addBOS: false)
            var decoder = tokenizer.makeStreamingDecoder()
            var chunks: [String] = []
            for id in ids { chunks.append(decoder.append(id)) }
            chunks.append(decoder.finish())
            #expect(chunks.joined() == text)
            #expect(chunks.allSatisfy { !$0.unicodeScalars.contains("\u{FFFD}") })
            // Emoji bytes are spread over several byte-level tokens, so some calls must hold text back.
            if text.hasPrefix("😀") && ids.count > text.unicodeScalars.count {
                #expect(chunks.contains(""))
            }
        }
    }

    @Test("finish turns an unfinished character into U+FFFD")
    func streamingFinishInvalid() throws {
        let tokenizer = try ReferenceModel.qwen25Coder.tokenizer()
        // The first byte-level token of "😀" alone is an incomplete character.
        let ids = tokenizer.encode("😀", parseSpecial: false, addBOS: false)
        let first = try #require(ids.first)
        let firstBytes = tokenizer.tokenBytes(first)
        #expect(!firstBytes.isEmpty)
        var decoder = tokenizer.makeStreamingDecoder()
        if firstBytes.count < 4 {
            #expect(decoder.append(first) == "")
            #expect(decoder.finish() == "\u{FFFD}")
        }
        #expect(decoder.finish() == "")
    }

    @Test("tokenBytes gives raw bytes, special tokens only on request")
    func tokenBytes() throws {
        let tokenizer = try ReferenceModel.smolLM2.tokenizer()
        let space = try #require(tokenizer.id(of: "Ġ"))
        #expect(tokenizer.tokenBytes(space) == [0x20])
        let newline = try #require(tokenizer.id(of: "Ċ"))
        #expect(tokenizer.tokenBytes(newline) == [0x0A])
        let imStart = try #require(tokenizer.id(of: "<|im_start|>"))
        #expect(tokenizer.tokenBytes(imStart).isEmpty)
        #expect(tokenizer.tokenBytes(imStart, includeSpecial: true) == Array("<|im_start|>".utf8))
        #expect(tokenizer.tokenBytes(-1).isEmpty)
        #expect(tokenizer.tokenBytes(Int32(tokenizer.vocabularySize)).isEmpty)
    }

    @Test("a prompt of several thousand tokens encodes quickly and round-trips", arguments: ReferenceModel.allCases)
    func longPrompt(model: ReferenceModel) throws {
        let tokenizer = try model.tokenizer()
        var text = ""
        for (index, reference) in try model.reference().cases.enumerated() {
            text += (reference.text ?? reference.prompt ?? "") + " \(index)\n"
        }
        text = String(repeating: text, count: 8)
        text += String(repeating: "x", count: 5000)  // one very long word
        let clock = ContinuousClock()
        var ids: [Int32] = []
        let elapsed = clock.measure { ids = tokenizer.encode(text, parseSpecial: false, addBOS: false) }
        #expect(ids.count > 4000)
        #expect(elapsed < .seconds(2), "\(ids.count) tokens took \(elapsed)")
        #expect(tokenizer.decode(ids) == text)
    }
}

/// Pre-tokenizer selection on small synthetic vocabularies, where the split points show in the merges that apply.
@Suite struct PreTokenizerTests {
    /// Digits "12345" with merges that would join all of them: each pre-tokenizer cuts numbers differently.
    static let digitMerges = ["1 2", "12 3", "123 4", "1234 5", "4 5"]
    static let digitTokens = ["12", "123", "1234", "12345", "45"]

    func tokenizer(pre: String?, extraTokens: [String] = digitTokens, merges: [String] = digitMerges) throws
        -> Tokenizer
    {
        try Tokenizer(gguf: TinyGGUF.byteLevel(pre: pre, extraTokens: extraTokens, merges: merges).open())
    }

    @Test(
        "numbers split like llama.cpp",
        arguments: [
            ("gpt2", ["12345"]), ("gpt-2", ["12345"]), ("llama3", ["123", "45"]), ("llama-bpe", ["123", "45"]),
            ("qwen2", ["1", "2", "3", "4", "5"]), ("smollm", ["1", "2", "3", "4", "5"]), ("default", ["123", "45"]),
        ])
    func numberSplits(pre: String, expected: [String]) throws {
        let tokenizer = try tokenizer(pre: pre)
        let ids = tokenizer.encode("12345", parseSpecial: false, addBOS: false)
        #expect(ids.map { tokenizer.spelling(of: $0) ?? "?" } == expected)
        #expect(tokenizer.preTokenizerName == pre)
    }

    @Test("a missing pre-tokenizer means 'default'")
    func missingPre() throws {
        #expect(try tokenizer(pre: nil).preTokenizerName == "default")
    }

    @Test("an unknown pre-tokenizer is an error naming it")
    func unknownPre() throws {
        let file = try TinyGGUF.byteLevel(pre: "no-such-pre").open()
        #expect(throws: TokenizerError.unknownPreTokenizer("no-such-pre")) { try Tokenizer(gguf: file) }
        do {
            _ = try Tokenizer(gguf: file)
        } catch {
            #expect(String(describing: error).contains("no-such-pre"))
        }
    }

    @Test("a tokenizer other than byte-level BPE and SentencePiece is an error")
    func unsupportedModel() throws {
        var file = TinyGGUF.byteLevel(pre: "gpt2")
        file.entries[0] = ("tokenizer.ggml.model", .string("bert"))
        #expect(throws: TokenizerError.unsupportedModel("bert")) { try Tokenizer(gguf: file.open()) }
    }

    @Test("a SentencePiece vocabulary without scores is an error")
    func sentencePieceNeedsScores() throws {
        var file = TinyGGUF.byteLevel(pre: "gpt2")
        file.entries[0] = ("tokenizer.ggml.model", .string("llama"))
        #expect(throws: TokenizerError.missingKey("tokenizer.ggml.scores")) { try Tokenizer(gguf: file.open()) }
    }

    @Test("Llama 3 emits a word that is a whole vocabulary entry without merging")
    func llama3IgnoresMerges() throws {
        let llama3 = try tokenizer(pre: "llama3", extraTokens: ["abc"], merges: [])
        #expect(llama3.encode("abc", parseSpecial: false, addBOS: false) == [256])
        // Llama 3 adds BOS by default, but this file names no BOS token, so there is none to add.
        #expect(llama3.addsBOS)
        #expect(llama3.encode("abc", parseSpecial: false) == [256])
        let gpt2 = try tokenizer(pre: "gpt2", extraTokens: ["abc"], merges: [])
        #expect(gpt2.encode("abc", parseSpecial: false, addBOS: false).count == 3)
    }

    @Test("contractions: GPT-2 matches lower case only, Llama 3 any case")
    func contractions() throws {
        let merges = ["' s", "' S"]
        let tokens = ["'s", "'S"]
        let gpt2 = try tokenizer(pre: "gpt2", extraTokens: tokens, merges: merges)
        let llama3 = try tokenizer(pre: "llama3", extraTokens: tokens, merges: merges)
        // "x's" -> "x" "'s" in both; "X'S" keeps "'S" whole only where the pattern is case-insensitive.
        #expect(gpt2.encode("x's", parseSpecial: false, addBOS: false).count == 2)
        #expect(llama3.encode("X'S", parseSpecial: false, addBOS: false).count == 2)
        // GPT-2: "'" and "S" fall into different patterns (punctuation run, letter run), so no merge.
        #expect(gpt2.encode("X'S", parseSpecial: false, addBOS: false).count == 3)
    }

    @Test("whitespace runs leave their last space to the next word")
    func whitespaceRuns() throws {
        // "Ġ Ġ" -> "ĠĠ", "Ġ a" -> "Ġa"
        let tokenizer = try tokenizer(pre: "gpt2", extraTokens: ["ĠĠ", "Ġa"], merges: ["Ġ Ġ", "Ġ a"])
        let ids = tokenizer.encode("   a", parseSpecial: false, addBOS: false)
        #expect(ids.map { tokenizer.spelling(of: $0) ?? "?" } == ["ĠĠ", "Ġa"])
    }
}
