import Foundation
import Testing
import ThemisModel

/// Chat template detection and rendering, against llama.cpp's formatted prompts.
@Suite struct ChatTemplateTests {
    @Test("rendered prompts equal llama.cpp's for every chat case", arguments: ReferenceModel.allCases)
    func referencePrompts(model: ReferenceModel) throws {
        let template = try ChatTemplate(gguf: model.gguf())
        #expect(template.kind == model.templateKind)
        let cases = try model.reference().chatCases
        #expect(!cases.isEmpty)
        for reference in cases {
            let user = try #require(reference.user)
            #expect(template.render([.user(user)]) == reference.prompt, "\(model) \(user.debugDescription)")
        }
    }

    @Test("default system prompts come from the templates")
    func defaultSystemPrompts() throws {
        #expect(
            try ChatTemplate(gguf: ReferenceModel.smolLM2.gguf()).defaultSystemPrompt
                == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        #expect(
            try ChatTemplate(gguf: ReferenceModel.qwen25Coder.gguf()).defaultSystemPrompt
                == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
    }

    @Test("a conversation's own system message replaces the default")
    func explicitSystem() throws {
        let template = try ChatTemplate(gguf: ReferenceModel.qwen25Coder.gguf())
        let text = template.render([.system("Be brief."), .user("Hi"), .assistant("Hello!"), .user("Bye")])
        #expect(
            text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n")
        #expect(!template.render([.user("Hi")], addGenerationPrompt: false).hasSuffix("<|im_start|>assistant\n"))
    }

    @Test(
        "formats are recognised from small templates",
        arguments: [
            (
                "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] "
                    + "+ '<|im_end|>\\n'}}{% endfor %}",
                ChatTemplateKind.chatml
            ),
            (
                "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] "
                    + "+ '<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}", .llama3
            ),
            (
                "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + "
                    + "' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}", .mistral
            ),
        ])
    func detection(template: String, kind: ChatTemplateKind) throws {
        #expect(ChatTemplate.detect(template) == kind)
        var file = TinyGGUF.byteLevel(pre: "gpt2")
        file.entries.append(("tokenizer.chat_template", .string(template)))
        let parsed = try ChatTemplate(gguf: file.open())
        #expect(parsed.kind == kind)
        #expect(parsed.defaultSystemPrompt == nil)
    }

    @Test("an unknown template is an error that names --chat-template")
    func unknownTemplate() throws {
        var file = TinyGGUF.byteLevel(pre: "gpt2")
        file.entries.append(("tokenizer.chat_template", .string("{% for m in messages %}{{ m.content }}{% endfor %}")))
        let gguf = try file.open()
        do {
            _ = try ChatTemplate(gguf: gguf)
            Issue.record("expected an error")
        } catch {
            #expect(String(describing: error).contains("--chat-template chatml|llama3|mistral"))
        }
        // The override still works.
        #expect(try ChatTemplate(gguf: gguf, kind: .chatml).kind == .chatml)
    }

    @Test("a missing template is an error that names --chat-template")
    func missingTemplate() throws {
        let gguf = try TinyGGUF.byteLevel(pre: "gpt2").open()
        #expect(throws: ChatTemplateError.missing) { try ChatTemplate(gguf: gguf) }
        #expect(ChatTemplateError.missing.description.contains("--chat-template chatml|llama3|mistral"))
        #expect(try ChatTemplate(gguf: gguf, kind: .mistral).kind == .mistral)
    }

    @Test("the override keeps the file's default system prompt only when the formats agree")
    func overrideKeepsDefault() throws {
        let smol = try ReferenceModel.smolLM2.gguf()
        #expect(try ChatTemplate(gguf: smol, kind: .chatml).defaultSystemPrompt != nil)
        let llama3 = try ChatTemplate(gguf: smol, kind: .llama3)
        #expect(llama3.defaultSystemPrompt == nil)
        #expect(llama3.bosText == "<|begin_of_text|>")
    }

    @Test("Llama 3 format")
    func llama3() {
        let template = ChatTemplate(kind: .llama3)
        #expect(
            template.render([.system("Sys"), .user("  Hello \n")])
                == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSys<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    @Test("Mistral format")
    func mistral() {
        let template = ChatTemplate(kind: .mistral)
        #expect(template.render([.user("Hi")]) == "<s>[INST] Hi [/INST]")
        #expect(template.rendersBOS)
        #expect(!ChatTemplate(kind: .chatml).rendersBOS)
        #expect(
            template.render([.system("Sys"), .user("Hi"), .assistant("Hello"), .user("Bye")])
                == "<s>[INST] Sys\n\nHi [/INST]Hello</s>[INST] Bye [/INST]")
    }

    @Test("ChatML with a given default system prompt")
    func chatMLDefault() {
        let template = ChatTemplate(kind: .chatml, defaultSystemPrompt: "D")
        #expect(
            template.render([.user("U")])
                == "<|im_start|>system\nD<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
        #expect(template.render([]) == "<|im_start|>assistant\n")
    }

    @Test("default system prompt extraction reads only literal text")
    func extraction() {
        let computed = "{{'<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n'}}"
        #expect(ChatTemplate.defaultSystemPrompt(in: computed, kind: .chatml) == nil)
        let literal = computed + "{{ '<|im_start|>system\\nYou\\'re kind.<|im_end|>\\n' }}"
        #expect(ChatTemplate.defaultSystemPrompt(in: literal, kind: .chatml) == "You're kind.")
    }
}

/// The formats against llama.cpp's own renderers (`llama_chat_apply_template`,
/// `scripts/chat-template-reference`): every conversation for the formats both render the same
/// way, and for Llama 2 the single-turn ones (the judge's). Llama 2's later turns differ on
/// purpose: we follow the official template (`' ' + answer + ' ' + eos`, BOS before each user
/// turn); llama.cpp's renderer writes neither.
@Suite("chat templates against llama.cpp")
struct ChatTemplateReferenceTests {
    struct Recording: Decodable {
        struct Case: Decodable {
            struct Message: Decodable { let role: String; let content: String }
            let template: String
            let messages: [Message]
            let prompt: String
        }
        let cases: [Case]
    }

    static let kinds: [String: ChatTemplateKind] = [
        "chatml": .chatml, "llama3": .llama3, "llama2-sys-strip": .llama2, "gemma": .gemma, "phi3": .phi3,
    ]

    @Test("rendered prompts equal llama.cpp's (its renderer writes no BOS)")
    func equalLlamaCpp() throws {
        let url = TestSupport.ownReferenceDirectory.appendingPathComponent("chat-templates.llamacpp.json")
        let recording = try JSONDecoder().decode(Recording.self, from: Data(contentsOf: url))
        var compared = 0
        for c in recording.cases {
            guard let kind = Self.kinds[c.template] else { continue }
            if kind == .llama2 && c.messages.filter({ $0.role == "user" }).count > 1 { continue }
            let template = ChatTemplate(kind: kind)
            let messages = c.messages.map { ChatMessage(role: ChatRole(rawValue: $0.role)!, content: $0.content) }
            var ours = template.render(messages)
            #expect(ours.hasPrefix(template.bosText))
            ours.removeFirst(template.bosText.count)
            #expect(ours == c.prompt, "\(c.template): \(ours.debugDescription) vs \(c.prompt.debugDescription)")
            compared += 1
        }
        #expect(compared == 14)
    }

    @Test("Qwen 3's judge prompt is ChatML with an empty thinking block opening the answer")
    func qwen3ThinkingOff() {
        let messages: [ChatMessage] = [.system("Judge."), .user("Rate it.")]
        let chatml = ChatTemplate(kind: .chatml).render(messages)
        #expect(ChatTemplate(kind: .qwen3).render(messages) == chatml + "<think>\n\n</think>\n\n")
        #expect(ChatTemplate.detect("{%- if enable_thinking is defined %}<|im_start|>assistant\n<think>\n\n</think>") == .qwen3)
    }
}
