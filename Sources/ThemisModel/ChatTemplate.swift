/// The chat formats Themis renders; `rawValue` is the spelling of the `--chat-template` option.
public enum ChatTemplateKind: String, CaseIterable, Sendable {
    /// `<|im_start|>role\n…<|im_end|>\n` (SmolLM2, Qwen2.5 and many others).
    case chatml
    /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>` after `<|begin_of_text|>`.
    case llama3
    /// `<s>[INST] … [/INST]answer</s>` (Mistral).
    case mistral
    /// `<s>[INST] <<SYS>>\n…\n<</SYS>>\n\n… [/INST] answer </s>`, BOS before every user turn (Llama 2).
    case llama2
    /// `<bos><start_of_turn>user\n…<end_of_turn>\n<start_of_turn>model\n` (Gemma 2 and 3).
    case gemma
    /// `<|user|>\n…<|end|>\n<|assistant|>\n` (Phi-3, Phi-3.5).
    case phi3
    /// ChatML with Qwen 3's thinking turned off: the answer opens with an empty `<think>` block, so
    /// the model answers (and a judge gives its verdict) at once.
    case qwen3
}

/// Who wrote a chat message.
public enum ChatRole: String, Sendable, CaseIterable, Codable, Hashable {
    /// Instructions that frame the conversation.
    case system
    /// The person asking.
    case user
    /// The model.
    case assistant
}

/// One message of a conversation.
public struct ChatMessage: Sendable, Codable, Hashable {
    /// Who wrote it.
    public var role: ChatRole
    /// Its text, inserted verbatim (Llama 3 trims surrounding whitespace, as its template does).
    public var content: String

    /// A message from `role`.
    public init(role: ChatRole, content: String) {
        self.role = role
        self.content = content
    }

    /// A system message.
    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: .system, content: content) }
    /// A user message.
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: .user, content: content) }
    /// An assistant message.
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: .assistant, content: content) }
}

/// Why a model's chat template cannot be used.
public enum ChatTemplateError: Error, CustomStringConvertible, Equatable {
    /// The file has no `tokenizer.chat_template`.
    case missing
    /// The template matches none of the known formats; carries its beginning.
    case unrecognized(String)

    /// A one-line message for users, naming the `--chat-template` option.
    public var description: String {
        let choose =
            "choose one with --chat-template " + ChatTemplateKind.allCases.map(\.rawValue).joined(separator: "|")
        switch self {
        case .missing:
            return "the model file has no chat template (tokenizer.chat_template); \(choose)"
        case .unrecognized(let start):
            return "unrecognized chat template in the model file (it begins \(start.debugDescription)); \(choose)"
        }
    }
}

/// Formats a conversation into the prompt text a chat model was trained on.
///
/// Only the three formats of `ChatTemplateKind` are rendered, by code rather than by running the file's Jinja
/// template; `init(gguf:)` recognises which one a file uses and keeps the default system prompt the template
/// inserts when a conversation has none.
public struct ChatTemplate: Sendable, Equatable {
    /// The format rendered.
    public let kind: ChatTemplateKind
    /// The system message used when the conversation does not start with one; nil for none.
    public let defaultSystemPrompt: String?
    /// Spelling of the beginning-of-sequence token written at the start (Llama 3 and Mistral formats).
    public let bosText: String
    /// Spelling of the end-of-sequence token written after each assistant message (Mistral format).
    public let eosText: String

    /// Whether `render` writes the BOS spelling itself, so the prompt must be encoded with `addBOS: false`.
    public var rendersBOS: Bool { !bosText.isEmpty }

    /// A template of `kind`; `bosText` and `eosText` default to the usual spellings of that format.
    public init(
        kind: ChatTemplateKind, defaultSystemPrompt: String? = nil, bosText: String? = nil, eosText: String? = nil
    ) {
        self.kind = kind
        self.defaultSystemPrompt = defaultSystemPrompt
        switch kind {
        case .chatml:
            self.bosText = bosText ?? ""
            self.eosText = eosText ?? "<|im_end|>"
        case .llama3:
            self.bosText = bosText ?? "<|begin_of_text|>"
            self.eosText = eosText ?? "<|eot_id|>"
        case .mistral, .llama2:
            self.bosText = bosText ?? "<s>"
            self.eosText = eosText ?? "</s>"
        case .gemma:
            self.bosText = bosText ?? "<bos>"
            self.eosText = eosText ?? "<end_of_turn>"
        case .phi3:
            self.bosText = bosText ?? ""
            self.eosText = eosText ?? "<|end|>"
        case .qwen3:
            self.bosText = bosText ?? ""
            self.eosText = eosText ?? "<|im_end|>"
        }
    }

    /// The template of a model file: `kind` when given (the `--chat-template` override), else the format
    /// recognised in `tokenizer.chat_template`, else (a file without a template) its family's format
    /// for the Gemma architectures, whose vocabularies carry the turn markers.
    ///
    /// Throws `ChatTemplateError` naming the `--chat-template` option when no kind is given and the template is
    /// missing or unrecognised.
    public init(gguf: GGUFFile, kind override: ChatTemplateKind? = nil) throws {
        let source = gguf.metadata["tokenizer.chat_template"]?.string
        let architecture = gguf.metadata["general.architecture"]?.string ?? ""
        let kind: ChatTemplateKind
        if let override {
            kind = override
        } else if source?.isEmpty ?? true, ["gemma", "gemma2", "gemma3"].contains(architecture) {
            kind = .gemma
        } else {
            guard let source, !source.isEmpty else { throw ChatTemplateError.missing }
            guard let detected = ChatTemplate.detect(source) else {
                throw ChatTemplateError.unrecognized(String(source.prefix(60)))
            }
            kind = detected
        }
        let defaultSystemPrompt = source.flatMap {
            ChatTemplate.detect($0) == kind ? ChatTemplate.defaultSystemPrompt(in: $0, kind: kind) : nil
        }
        func spelling(_ key: String) -> String? {
            guard let id = gguf.metadata["tokenizer.ggml.\(key)"]?.int,
                let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.array, id >= 0, id < tokens.count
            else { return nil }
            return tokens[id].string
        }
        // ChatML writes no BOS; the other formats write the file's own spellings when the file is of that format
        // (an overridden format keeps its usual spellings: SmolLM2's BOS is `<|im_start|>`). Phi-3's
        // templates differ in whether they start with BOS: the file's template says.
        let fromFile = source.flatMap(ChatTemplate.detect) == kind
        let usesFileTokens = ![.chatml, .qwen3, .gemma].contains(kind) && fromFile
        var bos = usesFileTokens ? spelling("bos_token_id") : nil
        if kind == .phi3 { bos = fromFile && source!.contains("bos_token") ? spelling("bos_token_id") ?? "<s>" : "" }
        self.init(
            kind: kind, defaultSystemPrompt: defaultSystemPrompt, bosText: bos,
            eosText: usesFileTokens && kind != .phi3 ? spelling("eos_token_id") : nil)
    }

    /// The format a Jinja chat template renders, recognised by its markers; nil when none is known.
    public static func detect(_ template: String) -> ChatTemplateKind? {
        if template.contains("<|start_header_id|>") { return .llama3 }
        if template.contains("<start_of_turn>") { return .gemma }
        if template.contains("<|im_start|>") { return template.contains("<think>") ? .qwen3 : .chatml }
        if template.contains("<|user|>") && template.contains("<|end|>") { return .phi3 }
        if template.contains("<<SYS>>") { return .llama2 }
        if template.contains("[INST]") { return .mistral }
        return nil
    }

    /// The system prompt a template inserts as a string literal when the conversation has none, if any.
    ///
    /// For ChatML it is the literal text between `<|im_start|>system\n` and `<|im_end|>` inside one Jinja string
    /// (SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
    public static func defaultSystemPrompt(in template: String, kind: ChatTemplateKind) -> String? {
        guard kind == .chatml else { return nil }
        let opener = "<|im_start|>system"
        var searchStart = template.startIndex
        while let open = template[searchStart...].firstRange(of: opener) {
            searchStart = open.upperBound
            // The newline after the role is either a real newline or an escaped `\n` inside the Jinja string.
            var bodyStart = open.upperBound
            if template[bodyStart...].hasPrefix("\\n") {
                bodyStart = template.index(bodyStart, offsetBy: 2)
            } else if template[bodyStart...].hasPrefix("\n") {
                bodyStart = template.index(after: bodyStart)
            } else {
                continue
            }
            guard let close = template[bodyStart...].firstRange(of: "<|im_end|>") else { break }
            if let literal = unescapedLiteral(template[bodyStart..<close.lowerBound]), !literal.isEmpty {
                return literal
            }
        }
        return nil
    }

    /// The text of a Jinja string-literal fragment, or nil when it leaves the literal (an unescaped quote or a
    /// template tag), i.e. when the system text is computed rather than fixed.
    private static func unescapedLiteral(_ fragment: Substring) -> String? {
        var result = ""
        var escaped = false
        for character in fragment {
            if escaped {
                switch character {
                case "n": result.append("\n")
                case "t": result.append("\t")
                default: result.append(character)
                }
                escaped = false
                continue
            }
            switch character {
            case "\\": escaped = true
            case "'", "\"", "{", "}": return nil
            default: result.append(character)
            }
        }
        return escaped ? nil : result
    }

    /// The prompt text for `messages`, ending with the assistant's turn opener when `addGenerationPrompt`.
    ///
    /// For the Llama 3 and Mistral formats the text starts with `bosText`, as their templates do: tokenize it with
    /// special tokens parsed and without adding another BOS.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        renderPrompt(messages, addGenerationPrompt: addGenerationPrompt).text
    }

    /// The prompt, its answer started with `assistantPrefix` (continued by the model rather than
    /// answered anew), as the model's tokens: special tokens only where the template put them,
    /// and no second BOS after a template that writes its own. Every caller that feeds a chat
    /// prompt to a model goes through here.
    public func tokens(_ messages: [ChatMessage], assistantPrefix: String = "", tokenizer: Tokenizer) -> [Int32] {
        tokenizer.encode(renderPrompt(messages, assistantPrefix: assistantPrefix), addBOS: rendersBOS ? false : nil)
    }

    /// The prompt with its answer started with `assistantPrefix`, as text (what a completions
    /// endpoint is sent when the template is rendered on the client side).
    public func renderPrompt(_ messages: [ChatMessage], assistantPrefix: String) -> RenderedPrompt {
        var rendered = renderPrompt(messages)
        if !assistantPrefix.isEmpty { rendered.appendMessageText(assistantPrefix) }
        return rendered
    }

    /// The prompt with the byte ranges of the messages' own text, where special-token spellings
    /// must stay plain text (see `Tokenizer.encode(_:addBOS:)`).
    public func renderPrompt(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> RenderedPrompt {
        var conversation = messages
        if let defaultSystemPrompt, let first = messages.first, first.role != .system {
            conversation.insert(.system(defaultSystemPrompt), at: 0)
        }
        var prompt = RenderedPrompt()
        prompt.appendTemplate(bosText)
        switch kind {
        case .chatml: renderChatML(conversation, addGenerationPrompt: addGenerationPrompt, into: &prompt)
        case .qwen3:
            renderChatML(conversation, addGenerationPrompt: addGenerationPrompt, into: &prompt)
            // Qwen 3's template with `enable_thinking=false`
            if addGenerationPrompt { prompt.appendTemplate("<think>\n\n</think>\n\n") }
        case .llama3: renderLlama3(conversation, addGenerationPrompt: addGenerationPrompt, into: &prompt)
        case .mistral: renderMistral(conversation, into: &prompt)
        case .llama2: renderLlama2(conversation, into: &prompt)
        case .gemma: renderGemma(conversation, addGenerationPrompt: addGenerationPrompt, into: &prompt)
        case .phi3: renderPhi3(conversation, addGenerationPrompt: addGenerationPrompt, into: &prompt)
        }
        return prompt
    }

    /// Llama 2's format: the system text, fenced by `<<SYS>>`, opens the first user turn; every
    /// user turn after the first starts with its own BOS; messages are stripped.
    private func renderLlama2(_ messages: [ChatMessage], into prompt: inout RenderedPrompt) {
        var system: String?
        var firstTurn = true
        for message in messages {
            switch message.role {
            case .system:
                system = message.content
            case .user:
                if !firstTurn { prompt.appendTemplate(bosText) }
                firstTurn = false
                prompt.appendTemplate("[INST] ")
                if let system {
                    prompt.appendTemplate("<<SYS>>\n")
                    prompt.appendContent(system)
                    prompt.appendTemplate("\n<</SYS>>\n\n")
                }
                system = nil
                prompt.appendContent(message.content.trimmingWhitespace())
                prompt.appendTemplate(" [/INST]")
            case .assistant:
                prompt.appendTemplate(" ")
                prompt.appendContent(message.content.trimmingWhitespace())
                prompt.appendTemplate(" " + eosText)
            }
        }
    }

    /// Gemma's format has no system role: the system text and a blank line open the first user
    /// turn; the assistant is "model"; messages are trimmed.
    private func renderGemma(_ messages: [ChatMessage], addGenerationPrompt: Bool, into prompt: inout RenderedPrompt) {
        var system: String?
        for message in messages {
            if message.role == .system {
                system = message.content
                continue
            }
            prompt.appendTemplate("<start_of_turn>\(message.role == .assistant ? "model" : "user")\n")
            if let system, message.role == .user {
                prompt.appendContent(system)
                prompt.appendTemplate("\n\n")
            }
            system = nil
            prompt.appendContent(message.content.trimmingWhitespace())
            prompt.appendTemplate("<end_of_turn>\n")
        }
        if addGenerationPrompt { prompt.appendTemplate("<start_of_turn>model\n") }
    }

    private func renderPhi3(_ messages: [ChatMessage], addGenerationPrompt: Bool, into prompt: inout RenderedPrompt) {
        for message in messages {
            prompt.appendTemplate("<|\(message.role.rawValue)|>\n")
            prompt.appendContent(message.content)
            prompt.appendTemplate("<|end|>\n")
        }
        if addGenerationPrompt { prompt.appendTemplate("<|assistant|>\n") }
    }

    private func renderChatML(_ messages: [ChatMessage], addGenerationPrompt: Bool, into prompt: inout RenderedPrompt) {
        for message in messages {
            prompt.appendTemplate("<|im_start|>\(message.role.rawValue)\n")
            prompt.appendContent(message.content)
            prompt.appendTemplate("<|im_end|>\n")
        }
        if addGenerationPrompt { prompt.appendTemplate("<|im_start|>assistant\n") }
    }

    private func renderLlama3(_ messages: [ChatMessage], addGenerationPrompt: Bool, into prompt: inout RenderedPrompt) {
        for message in messages {
            prompt.appendTemplate("<|start_header_id|>\(message.role.rawValue)<|end_header_id|>\n\n")
            // The Llama 3 template trims each message.
            prompt.appendContent(message.content.trimmingWhitespace())
            prompt.appendTemplate("<|eot_id|>")
        }
        if addGenerationPrompt { prompt.appendTemplate("<|start_header_id|>assistant<|end_header_id|>\n\n") }
    }

    /// Mistral's format has no system role: the system text opens the first user turn. The `[/INST]` that closes
    /// each user turn is already the generation prompt.
    private func renderMistral(_ messages: [ChatMessage], into prompt: inout RenderedPrompt) {
        var system: String?
        for message in messages {
            switch message.role {
            case .system:
                system = message.content
            case .user:
                prompt.appendTemplate("[INST] ")
                if let system {
                    prompt.appendContent(system)
                    prompt.appendTemplate("\n\n")
                }
                system = nil
                prompt.appendContent(message.content)
                prompt.appendTemplate(" [/INST]")
            case .assistant:
                prompt.appendContent(message.content)
                prompt.appendTemplate(eosText)
            }
        }
    }
}

/// A rendered chat prompt and the UTF-8 byte ranges that hold message text.
public struct RenderedPrompt: Sendable, Equatable {
    public private(set) var text = ""
    /// Byte ranges of `text` that came from messages: special tokens are not parsed there.
    public private(set) var contentRanges: [Range<Int>] = []

    public init() {}

    mutating func appendTemplate(_ s: String) { text += s }

    /// Appends text that belongs to a message (for example the start of an assistant answer
    /// placed after the generation prompt): special-token spellings in it stay plain text.
    public mutating func appendMessageText(_ s: String) { appendContent(s) }

    /// The parts before and after UTF-8 byte `offset` (which must fall between characters), each
    /// with its message ranges, so they can be tokenized separately.
    public func split(atByte offset: Int) -> (head: RenderedPrompt, tail: RenderedPrompt) {
        let bytes = Array(text.utf8)
        precondition(offset >= 0 && offset <= bytes.count, "split at \(offset) of \(bytes.count) bytes")
        var head = RenderedPrompt(), tail = RenderedPrompt()
        head.text = String(decoding: bytes[..<offset], as: UTF8.self)
        tail.text = String(decoding: bytes[offset...], as: UTF8.self)
        for r in contentRanges {
            if r.lowerBound < offset { head.contentRanges.append(r.lowerBound..<min(r.upperBound, offset)) }
            if r.upperBound > offset { tail.contentRanges.append(max(r.lowerBound, offset) - offset..<r.upperBound - offset) }
        }
        return (head, tail)
    }

    mutating func appendContent(_ s: String) {
        let start = text.utf8.count
        text += s
        if !s.isEmpty { contentRanges.append(start..<text.utf8.count) }
    }
}

extension String {
    /// The string without leading and trailing whitespace (Jinja's `trim`).
    fileprivate func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}
