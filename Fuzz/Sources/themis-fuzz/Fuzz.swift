// libFuzzer entry point for every fuzz target of the project; THEMIS_FUZZ_TARGET picks one.
// Built only by `make fuzz` (THEMIS_FUZZ=1, its own build folder), never by the main build.
import Foundation
import JSONLines
import ThemisDistill
import ThemisJudge
import ThemisModel
import ThemisServer

/// The fuzz targets: each takes arbitrary bytes and must return (any error is fine) without a
/// trap, a sanitizer report, a hang or unbounded memory.
enum FuzzTarget: String, CaseIterable {
    case gguf, tokenizer, chatTemplate = "chat-template", verdict, jsonl, distillConfig = "distill-config"
    case serverRequest = "server-request"

    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["THEMIS_FUZZ_TARGET"] ?? ""
        guard let t = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("THEMIS_FUZZ_TARGET must be one of: \(allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        return t
    }()
}

/// The real SmolLM2 tokenizer and chat template (the fuzzed text goes through what the judge uses).
let realModel: (tokenizer: Tokenizer, template: ChatTemplate)? = {
    guard [.tokenizer, .chatTemplate].contains(FuzzTarget.selected) else { return nil }
    let models = ProcessInfo.processInfo.environment["THEMIS_MODELS"] ?? NSHomeDirectory() + "/.cache/themis/models"
    do {
        let file = try GGUFFile(path: models + "/SmolLM2-135M-Instruct.Q4_1.gguf")
        return (try Tokenizer(gguf: file), try ChatTemplate(gguf: file))
    } catch {
        FileHandle.standardError.write(Data("themis-fuzz: cannot load SmolLM2 from \(models): \(error)\n".utf8))
        exit(2)
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let bytes = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    switch FuzzTarget.selected {
    case .gguf: fuzzGGUF(bytes)
    case .tokenizer: fuzzTokenizer(bytes)
    case .chatTemplate: fuzzChatTemplate(bytes)
    case .verdict: fuzzVerdict(bytes)
    case .jsonl: fuzzJSONL(bytes)
    case .distillConfig: _ = try? PipelineConfig.parse(String(decoding: bytes, as: UTF8.self), path: "fuzz.yaml")
    case .serverRequest: fuzzServerRequest(bytes)
    }
    return 0
}

/// The loader's whole header path: GGUF, hyper-parameters, tokenizer, chat template.
func fuzzGGUF(_ bytes: [UInt8]) {
    guard let file = try? GGUFFile(bytes: bytes) else { return }
    _ = try? ModelConfig(file: file)
    if let tokenizer = try? Tokenizer(gguf: file) {
        let ids = tokenizer.encode("Hello, <|im_start|> wörld 123!", parseSpecial: true)
        _ = tokenizer.decode(ids + [-1, Int32(tokenizer.vocabularySize), .max], includeSpecial: true)
    }
    if let template = try? ChatTemplate(gguf: file) { _ = template.render([.user("hi")]) }
    for t in file.tensors { _ = file.bytes(of: t).last }
}

/// Text (first byte even) or token ids (odd) through the real tokenizer, both ways.
func fuzzTokenizer(_ bytes: [UInt8]) {
    guard let (tokenizer, _) = realModel, let first = bytes.first else { return }
    if first % 2 == 0 {
        let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
        let ids = tokenizer.encode(text, parseSpecial: first % 4 == 0)
        _ = tokenizer.decode(ids, includeSpecial: true)
    } else {
        var ids: [Int32] = []
        var i = 1
        while i + 4 <= bytes.count {
            ids.append(Int32(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24))
            i += 4
        }
        _ = tokenizer.decode(ids, includeSpecial: first % 4 == 1)
        for id in ids.prefix(16) { _ = tokenizer.tokenBytes(id); _ = tokenizer.spelling(of: id) }
    }
}

/// Messages split at zero bytes (the byte before each picks the role) rendered by every template
/// kind and tokenized.
func fuzzChatTemplate(_ bytes: [UInt8]) {
    guard let (tokenizer, real) = realModel else { return }
    let parts = bytes.split(separator: 0, omittingEmptySubsequences: false)
    let messages = parts.map { part -> ChatMessage in
        let role = ChatRole.allCases[Int(part.first ?? 0) % ChatRole.allCases.count]
        return ChatMessage(role: role, content: String(decoding: part.dropFirst(), as: UTF8.self))
    }
    for template in [real] + ChatTemplateKind.allCases.map({ ChatTemplate(kind: $0, defaultSystemPrompt: "sys") }) {
        _ = template.tokens(messages, assistantPrefix: "I believe [[", tokenizer: tokenizer)
        _ = template.render(messages, addGenerationPrompt: bytes.count % 2 == 0)
    }
}

func fuzzVerdict(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    _ = VerdictParser.rating(text, scale: .standard)
    _ = VerdictParser.pairwise(text)
    if let scale = try? RatingScale(lower: 0, upper: 10) { _ = VerdictParser.rating(text, scale: scale) }
}

/// Record files as the judge, meta-evaluation and the distillation read them.
func fuzzJSONL(_ bytes: [UInt8]) {
    let data = Data(bytes)
    _ = try? JSONLReader.decode(data, as: JSONObject.self)
    _ = try? JSONLReader.decode(data, as: JudgeRecord.self)
    _ = try? JSONLReader.decode(data, as: GradedRecord.self)
    _ = try? JSONLReader.decode(data, as: InstructionRecord.self)
}

/// Bodies of the three JSON endpoints, decoded as the server does before any model work.
func fuzzServerRequest(_ bytes: [UInt8]) {
    let data = Data(bytes)
    for route in ThemisServer.BodyRoute.allCases { try? ThemisServer.validateBody(data, for: route) }
}

// SwiftPM links an executable's entry point as `<module>_main`; libFuzzer's driver is started
// from there (its own `main` is then not linked in).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("themis_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv) { fuzzOne($0, $1) }
}
