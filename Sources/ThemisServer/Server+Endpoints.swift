import Foundation
import Hummingbird
import ThemisClient
import ThemisJudge
import ThemisModel

extension ThemisServer {
    // MARK: /v1/chat/completions

    func chat(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let body = try await decode(ChatCompletionRequest.self, &request)
        guard !body.messages.isEmpty else { throw APIError.badRequest("messages must not be empty", param: "messages") }
        var messages: [Message] = []
        for (i, m) in body.messages.enumerated() {
            let role: Role
            switch m.role {
            case "system", "developer": role = .system
            case "user": role = .user
            case "assistant": role = .assistant
            default: throw APIError.badRequest("'messages[\(i)].role' is '\(m.role)': expected system, user or assistant", param: "messages[\(i)].role")
            }
            messages.append(Message(role: role, content: m.content))
        }
        if let last = messages.last(where: { $0.role == .user }), let judgeBody = Self.judgeRequest(in: last.content) {
            if let model = body.model, model != options.modelID {
                throw APIError(status: 404, message: "the model '\(model)' does not exist; this server has '\(options.modelID)'",
                               param: "model", code: "model_not_found")
            }
            return try await judgeChat(judgeBody, stream: body.stream ?? false)
        }
        // vLLM's way to continue a partial answer: the last (assistant) message stays open
        var chatPrompt = Prompt(messages: messages)
        if body.continue_final_message ?? false {
            guard messages.last?.role == .assistant else {
                throw APIError.badRequest("continue_final_message needs an assistant message last", param: "continue_final_message")
            }
            if body.add_generation_prompt == true {
                throw APIError.badRequest("continue_final_message and add_generation_prompt exclude each other", param: "add_generation_prompt")
            }
            chatPrompt = Prompt(messages: Array(messages.dropLast()), assistantPrefix: messages.last!.content)
        }
        let prompt: [Int32]
        do { prompt = try model.tokens(chatPrompt) } catch { throw APIError.badRequest("\(error)", param: "messages") }
        let wantLogprobs = body.logprobs ?? false
        if body.top_logprobs != nil && !wantLogprobs {
            throw APIError.badRequest("top_logprobs needs logprobs: true", param: "top_logprobs")
        }
        let generation = try generationRequest(body, prompt: prompt, maxTokens: body.max_completion_tokens ?? body.max_tokens,
                                               logprobs: wantLogprobs ? (body.top_logprobs ?? 0) : nil)
        let (events, handle) = try await submit(generation)
        let id = "chatcmpl-" + UUID().uuidString.lowercased()
        let model = options.modelID, created = self.created
        if body.stream ?? false {
            let includeUsage = body.stream_options?.include_usage ?? false
            nonisolated(unsafe) var first = true
            return stream(events, handle: handle) { [self] event in
                let base: [String: Any] = ["id": id, "object": "chat.completion.chunk", "created": created, "model": model]
                var chunks: [[String: Any]] = []
                func chunk(_ delta: [String: Any], finish: String?, logprobs: Any? = nil) -> [String: Any] {
                    var choice: [String: Any] = ["index": 0, "delta": delta, "finish_reason": finish ?? NSNull()]
                    choice["logprobs"] = logprobs ?? NSNull()
                    return base.merging(["choices": [choice]]) { $1 }
                }
                if first {
                    first = false
                    chunks.append(chunk(["role": "assistant", "content": ""], finish: nil))
                }
                switch event {
                case .token(let text, let lp):
                    chunks.append(chunk(["content": text], finish: nil, logprobs: lp.map { ["content": [self.chatLogprob($0)]] }))
                case .finished(let reason, let p, let n):
                    chunks.append(chunk([:], finish: Self.finishReason(reason)))
                    if includeUsage {
                        chunks.append(base.merging(["choices": [], "usage": Self.usage(p, n)]) { $1 })
                    }
                case .failed(let error):
                    chunks.append(["error": ["message": error.description, "type": "server_error"]])
                }
                return chunks
            }
        }
        let c = try await collect(events, handle: handle, request: request)
        var choice: [String: Any] = ["index": 0, "message": ["role": "assistant", "content": c.text],
                                     "finish_reason": Self.finishReason(c.reason)]
        choice["logprobs"] = wantLogprobs ? ["content": c.logprobs.map(chatLogprob)] : NSNull()
        return json(["id": id, "object": "chat.completion", "created": created, "model": model, "choices": [choice],
                     "usage": Self.usage(c.promptTokens, c.completionTokens)], closing: true)
    }

    static func usage(_ prompt: Int, _ completion: Int) -> [String: Int] {
        ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion]
    }

    /// One token of a chat completion's `logprobs.content`.
    func chatLogprob(_ lp: TokenChoice) -> [String: Any] {
        let (text, bytes) = tokenText(lp.token)
        return ["token": text, "logprob": Double(lp.logprob), "bytes": bytes.map(Int.init),
                "top_logprobs": lp.top.map { t -> [String: Any] in
                    let (s, b) = tokenText(t.token)
                    return ["token": s, "logprob": Double(t.logprob), "bytes": b.map(Int.init)]
                }]
    }

    // MARK: /v1/completions

    func completion(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let body = try await decode(CompletionRequest.self, &request)
        let echo = body.echo ?? false
        // special tokens in the text are parsed, as llama.cpp's and vLLM's servers do: a client
        // that renders the chat template itself sends them
        let prompt = model.tokenizer.encode(body.prompt, parseSpecial: true)
        if echo && body.stream == true { throw APIError.badRequest("echo cannot be streamed", param: "echo") }
        let generation = try generationRequest(body, prompt: prompt, maxTokens: body.max_tokens, logprobs: body.logprobs, allowZero: echo)
        if echo { return try await echoCompletion(body, generation: generation, request: request) }
        let (events, handle) = try await submit(generation)
        let id = "cmpl-" + UUID().uuidString.lowercased()
        let model = options.modelID, created = self.created
        let base: [String: Any] = ["id": id, "object": "text_completion", "created": created, "model": model]
        if body.stream ?? false {
            let includeUsage = body.stream_options?.include_usage ?? false
            return stream(events, handle: handle) { [self] event in
                let base: [String: Any] = ["id": id, "object": "text_completion", "created": created, "model": model]
                switch event {
                case .token(let text, let lp):
                    let logprobs: Any = lp.map { legacyLogprobs([$0], offset: 0) } ?? NSNull()
                    return [base.merging(["choices": [["index": 0, "text": text, "logprobs": logprobs, "finish_reason": NSNull()]]]) { $1 }]
                case .finished(let reason, let p, let n):
                    var out = [base.merging(["choices": [["index": 0, "text": "", "logprobs": NSNull(),
                                                           "finish_reason": Self.finishReason(reason)]]]) { $1 }]
                    if includeUsage { out.append(base.merging(["choices": [], "usage": Self.usage(p, n)]) { $1 }) }
                    return out
                case .failed(let error):
                    return [["error": ["message": error.description, "type": "server_error"]]]
                }
            }
        }
        let c = try await collect(events, handle: handle, request: request)
        let logprobs: Any = body.logprobs == nil ? NSNull() : legacyLogprobs(c.logprobs, offset: 0)
        return json(base.merging([
            "choices": [["index": 0, "text": c.text, "logprobs": logprobs, "finish_reason": Self.finishReason(c.reason)]],
            "usage": Self.usage(c.promptTokens, c.completionTokens),
        ]) { $1 }, closing: true)
    }

    /// `echo`: the prompt's own tokens with their log-probabilities (the first has none), then
    /// any generated ones: what a client scoring candidate continuations reads.
    func echoCompletion(_ body: CompletionRequest, generation: Generation, request: Request) async throws -> Response {
        let top = body.logprobs ?? 0
        let scored: [TokenChoice?]
        do {
            scored = try await model.promptLogprobs(generation.prompt, top: top)
        } catch let error as ClientError {
            throw APIError(error, param: "prompt")
        }
        var text = body.prompt
        var choices = scored
        var reason = StopReason.maxTokens
        var completionTokens = 0
        if generation.maxTokens > 0 {
            // the prompt was just evaluated for its log-probabilities: start from its keys and values
            var generation = generation
            generation.reusePrefix = true
            let (events, handle) = try await submit(generation)
            let c = try await collect(events, handle: handle, request: request)
            text += c.text
            choices += c.logprobs.map { Optional($0) }
            reason = c.reason
            completionTokens = c.completionTokens
        }
        let logprobs: Any = body.logprobs == nil ? NSNull() : legacyLogprobs(choices, tokens: generation.prompt + choices.dropFirst(scored.count).compactMap { $0?.token }, offset: 0)
        return json(["id": "cmpl-" + UUID().uuidString.lowercased(), "object": "text_completion", "created": created, "model": options.modelID,
                     "choices": [["index": 0, "text": text, "logprobs": logprobs, "finish_reason": Self.finishReason(reason)]],
                     "usage": Self.usage(generation.prompt.count, completionTokens)], closing: generation.maxTokens > 0)
    }

    /// The completions API's `{tokens, token_logprobs, top_logprobs, text_offset}`.
    func legacyLogprobs(_ lps: [TokenChoice], offset: Int) -> [String: Any] {
        legacyLogprobs(lps.map { Optional($0) }, tokens: lps.map(\.token), offset: offset)
    }

    /// The same, for tokens some of which have no log-probability (an echoed prompt's first).
    func legacyLogprobs(_ lps: [TokenChoice?], tokens ids: [Int32], offset: Int) -> [String: Any] {
        var tokens: [String] = [], values: [Any] = [], top: [Any] = [], offsets: [Int] = []
        var at = offset
        for (id, lp) in zip(ids, lps) {
            let (text, _) = tokenText(id)
            tokens.append(text)
            values.append(lp.map { Double($0.logprob) } ?? NSNull())
            if let lp {
                var alternatives: [String: Double] = [:]
                for t in lp.top { alternatives[tokenText(t.token).0] = Double(t.logprob) }
                top.append(alternatives)
            } else {
                top.append(NSNull())
            }
            offsets.append(at)
            at += text.utf16.count
        }
        return ["tokens": tokens, "token_logprobs": values, "top_logprobs": top, "text_offset": offsets]
    }

    // MARK: the judge

    /// A chat message that is a judge request: a JSON object with `mode` and `question`.
    static func judgeRequest(in content: String) -> JudgeRequestBody? {
        let trimmed = content.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("{"), let data = trimmed.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              object["mode"] is String, object["question"] is String else { return nil }
        return try? JSONDecoder().decode(JudgeRequestBody.self, from: data)
    }

    func judgeEndpoint(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let body = try await decode(JudgeRequestBody.self, &request)
        let (record, _) = try await runJudge(body)
        return json(record)
    }

    /// The judge's verdict as a chat completion: the text, verdict first, and the structured
    /// verdict in `judgement`.
    func judgeChat(_ body: JudgeRequestBody, stream: Bool) async throws -> Response {
        let (record, judgement) = try await runJudge(body)
        let prefix = judgement.mode == .pairwise ? PromptBuilder.pairwisePrefix : PromptBuilder.ratingPrefix
        let label = judgement.mode == .pairwise ? (judgement.verdict.map { $0 == "tie" ? "C" : $0 } ?? "?") : judgement.rating.map(String.init) ?? "?"
        let text = prefix + label + "]]" + judgement.passes[0].explanation
        let id = "chatcmpl-" + UUID().uuidString.lowercased()
        let prompt = judgement.passes.map(\.promptTokens).reduce(0, +)
        let completion = model.tokenizer.encode(text, parseSpecial: false).count
        if stream {
            let base: [String: Any] = ["id": id, "object": "chat.completion.chunk", "created": created, "model": options.modelID]
            let chunks: [[String: Any]] = [
                base.merging(["choices": [["index": 0, "delta": ["role": "assistant", "content": text], "finish_reason": NSNull()]]]) { $1 },
                base.merging(["choices": [["index": 0, "delta": [:] as [String: Any], "finish_reason": "stop"]], "judgement": record]) { $1 },
            ]
            var sse = ""
            for chunk in chunks {
                let data = try JSONSerialization.data(withJSONObject: chunk, options: [.sortedKeys, .withoutEscapingSlashes])
                sse += "data: " + String(decoding: data, as: UTF8.self) + "\n\n"
            }
            sse += "data: [DONE]\n\n"
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: .init(byteBuffer: .init(string: sse)))
        }
        return json(["id": id, "object": "chat.completion", "created": created, "model": options.modelID,
                     "choices": [["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": "stop",
                                  "logprobs": NSNull()] as [String: Any]],
                     "usage": Self.usage(prompt, completion), "judgement": record])
    }

    /// Runs the judge on the served model.
    func runJudge(_ body: JudgeRequestBody) async throws -> ([String: Any], Judgement) {
        let mode: JudgeMode
        switch body.mode {
        case "single": mode = body.ref_answer == nil ? .single : .reference
        case "reference": mode = .reference
        case "pairwise": mode = .pairwise
        default: throw APIError.badRequest("mode is '\(body.mode)': expected single or pairwise", param: "mode")
        }
        if mode == .pairwise {
            guard body.answer1 != nil, body.answer2 != nil else { throw APIError.badRequest("pairwise needs answer1 and answer2", param: "answer1") }
        } else {
            guard body.answer != nil else { throw APIError.badRequest("\(body.mode) needs answer", param: "answer") }
            if mode == .reference && body.ref_answer == nil { throw APIError.badRequest("reference needs ref_answer", param: "ref_answer") }
        }
        let judge = self.judge
        var scenario: Scenario?
        if let name = body.scenario {
            guard let s = judge.catalogue.scenario(named: name) else {
                throw APIError.badRequest("unknown scenario '\(name)' (known: \(judge.catalogue.scenarios.map(\.id).joined(separator: ", ")))",
                                          param: "scenario")
            }
            scenario = s
        }
        let input = JudgeInput(instruction: body.question, conversation: [], response: body.answer, responseA: body.answer1,
                               responseB: body.answer2, reference: body.ref_answer)
        let given = scenario
        let result: Result<Judgement, APIError>
        do {
            result = .success(try await judge.judge(input, mode: mode, scenario: given))
        } catch let error as ClientError where APIError(error).status == 503 {
            throw APIError(error)
        } catch {
            result = .failure(APIError.badRequest("\(error)"))
        }
        let judgement = try result.get()
        // the record as `themis judge` writes it, less the id a request does not have
        let data = try judgement.record(id: "", scenarioGiven: given != nil).jsonData()
        var object = (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
        object["id"] = nil
        return (object, judgement)
    }
}
