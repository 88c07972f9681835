import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ThemisModel

/// How to reach an OpenAI-compatible server and how hard to try.
public struct OpenAIModelOptions: Sendable {
    /// Up to `/v1`, e.g. `http://127.0.0.1:8080/v1`.
    public var baseURL: String
    /// The model name the server knows.
    public var model: String
    /// Name of the environment variable holding the bearer key (the key itself is never stored).
    public var apiKeyEnv: String?
    /// Requests in flight at once.
    public var concurrency = 4
    /// Requests started per second at most; nil: no limit.
    public var requestsPerSecond: Double?
    /// Attempts per request, the first included.
    public var maxAttempts = 5
    /// Backoff before retry n is uniform in [0, min(maxBackoff, initialBackoff · 2^n)] ("full jitter").
    public var initialBackoff = 0.5
    public var maxBackoff = 20.0
    /// Seconds for one attempt.
    public var timeout = 120.0
    /// Directory of cached answers; nil: no cache.
    public var cacheDirectory: String?
    /// The served model's chat template, rendered here: with it, label probabilities and
    /// continuation scores are exact (the completions endpoint scores the rendered prompt
    /// followed by each candidate, `echo` + `logprobs`). Without it the chat endpoint is used:
    /// the first answer token's `top_logprobs`, or a sampled answer where the server gives none.
    public var chatTemplate: ChatTemplate?
    /// The context length, when the caller knows it (prompts are then checked before sending).
    public var contextLength: Int?
    /// How label probabilities are asked for; nil: the best there is (`exact` with a chat
    /// template, else the chat endpoint's `top_logprobs`, falling back to `sampled` when the
    /// server gives no log-probabilities).
    public var labelMethod: LabelSource?

    public init(baseURL: String, model: String) {
        self.baseURL = baseURL
        self.model = model
    }
}

/// Any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp's server, another `themis serve`, a
/// hosted API) as a model client: a concurrency limit, a rate limit, retries with exponential
/// backoff and jitter on 429, 5xx, timeouts, dropped connections and malformed replies (honouring
/// `Retry-After`), and an on-disk answer cache.
///
/// A verdict prefix is a partial assistant message, continued with vLLM's
/// `continue_final_message: true` (`add_generation_prompt: false`), which `themis serve` also
/// understands; with a chat template given, prompts are rendered here and sent to the
/// completions endpoint instead.
public final class OpenAIModel: ModelClient, Sendable {
    public let options: OpenAIModelOptions
    public var name: String { options.model }
    private let client: HTTPClient
    private let apiKey: String?
    private let slots: AsyncSemaphore
    private let pacer: Pacer?
    private let cache: AnswerCache?
    /// Attempts made, retries taken and cache hits, for reports.
    public let counters = Counters()
    /// Set once the server refused log-probabilities: label requests then sample.
    private let noLogprobs = Flag()

    public init(options: OpenAIModelOptions) throws {
        self.options = options
        if options.labelMethod == .exact && options.chatTemplate == nil {
            throw ClientError.unsupported("exact label probabilities from a server need the served model's chat template")
        }
        if let env = options.apiKeyEnv {
            guard let key = ProcessInfo.processInfo.environment[env], !key.isEmpty else {
                throw ClientError.unsupported("the API key variable \(env) is not set")
            }
            apiKey = key
        } else {
            apiKey = nil
        }
        guard options.concurrency >= 1, options.maxAttempts >= 1 else {
            throw ClientError.unsupported("concurrency and attempts must be at least 1")
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton)
        slots = AsyncSemaphore(options.concurrency)
        pacer = options.requestsPerSecond.map { Pacer(perSecond: $0) }
        cache = try options.cacheDirectory.map { try AnswerCache(directory: $0) }
    }

    /// Closes the connections; call before dropping the client.
    public func shutdown() async throws { try await client.shutdown() }

    public var capabilities: Capabilities {
        Capabilities(labels: labelMethod, continuationScoring: options.chatTemplate != nil, tokenCounts: false)
    }

    /// How label probabilities are asked for: the options' choice, else the best there is.
    private var labelMethod: LabelSource { options.labelMethod ?? (options.chatTemplate != nil ? .exact : .topLogprobs) }

    public var contextLength: Int? { options.contextLength }
    public func tokenCount(_ text: String) async throws -> Int? { nil }
    public func promptTokenCount(_ prompt: Prompt) async throws -> Int? { nil }

    // MARK: - Requests

    /// What a cached answer was for: the server, the model, the endpoint and the whole request.
    struct CacheKey<Request: Codable & Equatable>: Codable, Equatable {
        var endpoint: String
        var model: String
        var kind: String
        var request: Request
    }

    /// The cached answer of `request`, or `compute`'s, cached.
    func cached<Request: Codable & Equatable, Value: Codable>(_ kind: String, _ request: Request,
                                                              _ compute: () async throws -> Value) async throws -> Value {
        let key = CacheKey(endpoint: options.baseURL, model: options.model, kind: kind, request: request)
        if let hit = cache?.read(key, as: Value.self) {
            await counters.add(cacheHits: 1)
            return hit
        }
        let value = try await compute()
        try cache?.write(key, value)
        return value
    }

    /// The chat messages of a prompt: an assistant prefix becomes a last, open assistant message.
    func messages(_ prompt: Prompt) -> [[String: Any]] {
        var out = prompt.messages.map { ["role": $0.role.rawValue, "content": $0.content] as [String: Any] }
        if !prompt.assistantPrefix.isEmpty { out.append(["role": "assistant", "content": prompt.assistantPrefix]) }
        return out
    }

    func chatBody(_ request: ChatRequest) -> [String: Any] {
        var body: [String: Any] = [
            "model": options.model, "messages": messages(request.prompt),
            "max_tokens": request.maxTokens, "temperature": request.temperature, "top_p": request.topP,
        ]
        if !request.prompt.assistantPrefix.isEmpty {
            body["continue_final_message"] = true
            body["add_generation_prompt"] = false
        }
        if let seed = request.seed { body["seed"] = seed }
        if !request.stop.isEmpty { body["stop"] = request.stop }
        if let k = request.logprobs {
            body["logprobs"] = true
            body["top_logprobs"] = k
        }
        return body
    }

    public func chat(_ request: ChatRequest) async throws -> ChatReply {
        try await cached("chat", request) {
            try await post("/chat/completions", chatBody(request)) { object in
            guard let choice = (object["choices"] as? [[String: Any]])?.first,
                  let message = choice["message"] as? [String: Any], let content = message["content"] as? String else {
                throw Malformed("no choices[0].message.content")
            }
            let usage = object["usage"] as? [String: Any] ?? [:]
            var logprobs: [TokenLogprob]?
            // a server that ignores `logprobs` answers without them: no log-probabilities, not a
            // malformed reply (label requests then sample)
            if request.logprobs != nil, let entries = (choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]] {
                logprobs = try entries.map(Self.tokenLogprob)
            }
            return ChatReply(text: content, finishReason: choice["finish_reason"] as? String ?? "stop",
                             promptTokens: usage["prompt_tokens"] as? Int ?? 0, completionTokens: usage["completion_tokens"] as? Int ?? 0,
                             model: object["model"] as? String ?? self.options.model, logprobs: logprobs)
            }
        }
    }

    /// A plain completion of raw prompt text (`/completions`, no chat template): for `themis
    /// generate --prompt` against a server. Cached like chats.
    public func complete(_ prompt: String, maxTokens: Int, temperature: Double, topP: Double, seed: Int? = nil,
                         stop: [String] = []) async throws -> ChatReply {
        struct Key: Codable, Equatable {
            var prompt: String, maxTokens: Int, temperature: Double, topP: Double, seed: Int?, stop: [String]
        }
        let key = Key(prompt: prompt, maxTokens: maxTokens, temperature: temperature, topP: topP, seed: seed, stop: stop)
        return try await cached("completion", key) {
            var body: [String: Any] = ["model": options.model, "prompt": prompt, "max_tokens": maxTokens,
                                       "temperature": temperature, "top_p": topP]
            if let seed { body["seed"] = seed }
            if !stop.isEmpty { body["stop"] = stop }
            return try await post("/completions", body) { object in
                guard let choice = (object["choices"] as? [[String: Any]])?.first, let text = choice["text"] as? String else {
                    throw Malformed("no choices[0].text")
                }
                let usage = object["usage"] as? [String: Any] ?? [:]
                return ChatReply(text: text, finishReason: choice["finish_reason"] as? String ?? "stop",
                                 promptTokens: usage["prompt_tokens"] as? Int ?? 0, completionTokens: usage["completion_tokens"] as? Int ?? 0,
                                 model: object["model"] as? String ?? self.options.model)
            }
        }
    }

    static func tokenLogprob(_ entry: [String: Any]) throws -> TokenLogprob {
        guard let token = entry["token"] as? String, let lp = (entry["logprob"] as? NSNumber)?.doubleValue else {
            throw Malformed("a logprobs entry without token and logprob")
        }
        let top = (entry["top_logprobs"] as? [[String: Any]] ?? []).compactMap { t -> TokenLogprob.Alternative? in
            guard let s = t["token"] as? String, let v = (t["logprob"] as? NSNumber)?.doubleValue else { return nil }
            return .init(token: s, logprob: v)
        }
        return TokenLogprob(token: token, logprob: lp, top: top)
    }

    // MARK: - Label probabilities

    public func labelProbabilities(_ request: LabelRequest) async throws -> LabelProbabilities {
        guard !request.candidates.isEmpty else { throw ClientError.unsupported("no candidates to compare") }
        let method = labelMethod
        if method == .sampled { return try await sampledLabel(request) }
        if method == .topLogprobs, let template = options.chatTemplate {
            return try await completionTopLogprobLabels(request, prompt: Self.render(request.prompt, template))
        }
        if method == .exact, let template = options.chatTemplate {
            return try await cached("labels-exact", request) {
                let prompt = Self.render(request.prompt, template)
                let scores = try await withThrowingTaskGroup(of: (Int, [Double]).self) { group in
                    for (i, c) in request.candidates.enumerated() {
                        group.addTask { (i, try await self.echoScores(prompt: prompt, continuation: c)) }
                    }
                    var out = [[Double]](repeating: [], count: request.candidates.count)
                    for try await (i, s) in group { out[i] = s }
                    return out
                }
                return LabelProbabilities(probabilities: LabelProbabilities.normalised(scores.map { $0.reduce(0, +) }), source: .exact,
                                          promptTokens: 0)
            }
        }
        if await !noLogprobs.isSet {
            do {
                return try await topLogprobLabels(request)
            } catch ClientError.rejected(let status, let message) where status == 400 && message.lowercased().contains("logprob") {
                await noLogprobs.set()
            }
        }
        return try await sampledLabel(request)
    }

    /// (b) the first answer token's top 20 alternatives, renormalised over the candidates there.
    func topLogprobLabels(_ request: LabelRequest) async throws -> LabelProbabilities {
        let chat = ChatRequest(prompt: request.prompt, maxTokens: 1, temperature: 0, topP: 1, logprobs: 20)
        let reply = try await self.chat(chat)
        guard let first = reply.logprobs?.first else { throw ClientError.rejected(status: 400, message: "the server returned no logprobs") }
        return try Self.labels(request, first, promptTokens: reply.promptTokens)
    }

    /// (b) with the chat template rendered here: the completions endpoint's first token and its
    /// top 20 alternatives (`logprobs: 20`, no echo). One request per label set where `exact`
    /// needs one per candidate, and the way to servers whose echo is slow (llama-cpp-python's
    /// sorts the whole vocabulary at every prompt position).
    func completionTopLogprobLabels(_ request: LabelRequest, prompt: String) async throws -> LabelProbabilities {
        struct Key: Codable, Equatable { var prompt: String; var candidates: [String] }
        return try await cached("labels-completion-top", Key(prompt: prompt, candidates: request.candidates)) {
            let body: [String: Any] = ["model": options.model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": 20]
            return try await post("/completions", body) { object in
                guard let choice = (object["choices"] as? [[String: Any]])?.first, let logprobs = choice["logprobs"] as? [String: Any],
                      let token = (logprobs["tokens"] as? [String])?.first,
                      let value = ((logprobs["token_logprobs"] as? [Any])?.first as? NSNumber)?.doubleValue else {
                    throw Malformed("no choices[0].logprobs with tokens and token_logprobs")
                }
                let top = ((logprobs["top_logprobs"] as? [Any])?.first as? [String: Any] ?? [:]).compactMap { k, v in
                    (v as? NSNumber).map { TokenLogprob.Alternative(token: k, logprob: $0.doubleValue) }
                }
                let promptTokens = (object["usage"] as? [String: Any])?["prompt_tokens"] as? Int ?? 0
                return try Self.labels(request, TokenLogprob(token: token, logprob: value, top: top), promptTokens: promptTokens)
            }
        }
    }

    /// The candidates' probabilities from one answer token and its alternatives: each candidate
    /// gets the log-probability of the longest alternative it starts with; those found are
    /// renormalised, the others are missing (probability 0).
    static func labels(_ request: LabelRequest, _ first: TokenLogprob, promptTokens: Int) throws -> LabelProbabilities {
        var found: [Int: Double] = [:]
        var alternatives = first.top
        if !alternatives.contains(where: { $0.token == first.token }) { alternatives.append(.init(token: first.token, logprob: first.logprob)) }
        /// The longest alternative that `candidate` starts with (the likeliest of equally long
        /// ones), comparing both after `normalise`.
        func firstToken(of candidate: String, _ normalise: (String) -> String) -> TokenLogprob.Alternative? {
            let c = normalise(candidate)
            return alternatives.filter { let t = normalise($0.token); return !t.isEmpty && c.hasPrefix(t) }
                .max { (normalise($0.token).count, $0.logprob) < (normalise($1.token).count, $1.logprob) }
        }
        let trim = { (s: String) in s.trimmingCharacters(in: .whitespaces) }
        for (i, c) in request.candidates.enumerated() {
            // the candidate's first token as written; a spaced variant (" B" for "B", another
            // continuation) only when the server shows no exact one
            if let best = firstToken(of: c, { $0 }) ?? firstToken(of: c, trim) {
                found[i] = best.logprob
            }
        }
        guard !found.isEmpty else {
            throw ClientError.badAnswer("none of the candidates is among the first token's top log-probabilities")
        }
        let scores = request.candidates.indices.map { found[$0] ?? -.infinity }
        let missing = request.candidates.indices.filter { found[$0] == nil }.map { request.candidates[$0] }
        return LabelProbabilities(probabilities: LabelProbabilities.normalised(scores), source: .topLogprobs,
                                  missing: missing, promptTokens: promptTokens)
    }

    /// (c) no log-probabilities: a greedy answer, and the candidate it starts with.
    func sampledLabel(_ request: LabelRequest) async throws -> LabelProbabilities {
        let longest = request.candidates.map(\.count).max() ?? 1
        let reply = try await chat(ChatRequest(prompt: request.prompt, maxTokens: longest + 8, temperature: 0, topP: 1))
        let text = reply.text.filter { !$0.isWhitespace }
        let matches = request.candidates.indices.filter { text.hasPrefix(request.candidates[$0].filter { !$0.isWhitespace }) }
        guard let chosen = matches.max(by: { request.candidates[$0].count < request.candidates[$1].count }) else {
            throw ClientError.badAnswer("the sampled answer '\(reply.text.prefix(40))' starts with none of \(request.candidates.joined(separator: ", "))")
        }
        return LabelProbabilities(probabilities: request.candidates.indices.map { $0 == chosen ? 1 : 0 }, source: .sampled,
                                  promptTokens: reply.promptTokens)
    }

    // MARK: - Continuation scoring

    public func scoreContinuation(_ continuation: String, after context: ScoringContext) async throws -> ContinuationScore {
        guard !continuation.isEmpty else { throw ClientError.unsupported("the continuation is empty") }
        let prompt: String
        switch context {
        case .prompt(let p):
            guard let template = options.chatTemplate else {
                throw ClientError.unsupported("scoring a continuation on \(options.baseURL) needs the served model's chat template")
            }
            prompt = Self.render(p, template)
        case .start:
            prompt = ""
        }
        struct Key: Codable, Equatable { var prompt: String; var continuation: String }
        return try await cached("score", Key(prompt: prompt, continuation: continuation)) {
            ContinuationScore(logprobs: try await echoScores(prompt: prompt, continuation: continuation))
        }
    }

    static func render(_ prompt: Prompt, _ template: ChatTemplate) -> String {
        template.renderPrompt(prompt.messages, assistantPrefix: prompt.assistantPrefix).text
    }

    /// The log-probabilities of the tokens of `continuation` when the server scores
    /// `prompt + continuation` (completions, `echo`, `logprobs`): the last prompt tokens whose
    /// text adds up to the continuation. One token is generated (servers differ on `max_tokens:
    /// 0`) and left out.
    func echoScores(prompt: String, continuation: String) async throws -> [Double] {
        let body: [String: Any] = ["model": options.model, "prompt": prompt + continuation, "echo": true, "logprobs": 0,
                                   "max_tokens": 1, "temperature": 0]
        return try await post("/completions", body) { object in try Self.continuationScores(object, continuation) }
    }

    static func continuationScores(_ object: [String: Any], _ continuation: String) throws -> [Double] {
        guard let choice = (object["choices"] as? [[String: Any]])?.first, let logprobs = choice["logprobs"] as? [String: Any],
              let tokens = logprobs["tokens"] as? [String], let values = logprobs["token_logprobs"] as? [Any], tokens.count == values.count else {
            throw Malformed("no choices[0].logprobs with tokens and token_logprobs")
        }
        let generated = (object["usage"] as? [String: Any])?["completion_tokens"] as? Int ?? 1
        guard generated <= tokens.count else { throw Malformed("more generated tokens than tokens") }
        var end = tokens.count - generated
        var text = ""
        var scores: [Double] = []
        let target = Array(continuation.utf8)
        while end > 0 && text.utf8.count < target.count {
            end -= 1
            text = tokens[end] + text
            guard let v = (values[end] as? NSNumber)?.doubleValue else {
                throw ClientError.unsupported("the server gave no log-probability for a token of the continuation")
            }
            scores.insert(v, at: 0)
        }
        guard Array(text.utf8) == target else {
            throw ClientError.unsupported("the server's tokens do not end with the continuation '\(continuation.prefix(20))' on a token boundary")
        }
        return scores
    }

    struct Malformed: Error { var reason: String; init(_ r: String) { reason = r } }

    /// POSTs `body` to `path` with the retry policy and reads the reply with `parse`; a reply it
    /// finds malformed is retried like a failed request.
    func post<T>(_ path: String, _ body: [String: Any], parse: ([String: Any]) throws -> T) async throws -> T {
        await slots.wait()
        defer { Task { await slots.signal() } }
        var last = ""
        for attempt in 0..<options.maxAttempts {
            if attempt > 0 {
                let ceiling = min(options.maxBackoff, options.initialBackoff * pow(2, Double(attempt - 1)))
                try await Task.sleep(nanoseconds: UInt64(Double.random(in: 0...ceiling) * 1e9))
                await counters.add(retries: 1)
            }
            await pacer?.next()
            await counters.add(attempts: 1)
            switch await attemptOnce(path, body) {
            case .success(let object):
                do { return try parse(object) } catch let error as Malformed { last = "malformed reply: \(error.reason)" }
            case .retry(let reason, let after):
                last = reason
                if let after { try await Task.sleep(nanoseconds: UInt64(min(after, options.maxBackoff) * 1e9)) }
            case .fail(let error):
                throw error
            }
        }
        throw ClientError.gaveUp(attempts: options.maxAttempts, last: last)
    }

    enum Outcome {
        case success([String: Any])
        case retry(String, after: Double?)
        case fail(ClientError)
    }

    private func attemptOnce(_ path: String, _ body: [String: Any]) async -> Outcome {
        var request = HTTPClientRequest(url: options.baseURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer " + apiKey) }
        guard let data = try? JSONSerialization.data(withJSONObject: body) else { return .fail(.unsupported("cannot encode the request")) }
        request.body = .bytes(ByteBuffer(bytes: data))
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await client.execute(request, timeout: .milliseconds(Int64(options.timeout * 1000)))
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .retry("timed out after \(options.timeout) s", after: nil)
        } catch {
            return .retry("connection failed: \(error)", after: nil)
        }
        let text = String(buffer: bytes)
        let status = Int(response.status.code)
        guard status == 200 else {
            let message = Self.errorMessage(text) ?? String(text.prefix(200))
            if status == 429 || status >= 500 {
                let after = response.headers.first(name: "Retry-After").flatMap(Double.init)
                return .retry("HTTP \(status): \(message)", after: after)
            }
            return .fail(.rejected(status: status, message: message))
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            return .retry("malformed JSON reply: \(text.prefix(120))", after: nil)
        }
        return .success(object)
    }

    static func errorMessage(_ text: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let error = object["error"] as? [String: Any] else { return nil }
        return error["message"] as? String
    }

    /// Attempts, retries and cache hits so far.
    public actor Counters {
        public private(set) var attempts = 0
        public private(set) var retries = 0
        public private(set) var cacheHits = 0
        func add(attempts a: Int = 0, retries r: Int = 0, cacheHits c: Int = 0) {
            attempts += a; retries += r; cacheHits += c
        }
    }

    actor Flag {
        private(set) var isSet = false
        func set() { isSet = true }
    }
}

/// A counting semaphore for tasks.
actor AsyncSemaphore {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { free = count }

    func wait() async {
        if free > 0 { free -= 1; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func signal() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}

/// Spaces request starts at least `1 / perSecond` apart.
actor Pacer {
    private let interval: Double
    private var nextStart = Date.distantPast

    init(perSecond: Double) { interval = 1 / max(perSecond, 1e-6) }

    func next() async {
        let now = Date()
        let start = max(now, nextStart)
        nextStart = start.addingTimeInterval(interval)
        let wait = start.timeIntervalSince(now)
        if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
    }
}

extension OpenAIModel {
    /// The model names a server lists (`GET /models`), with the options' key and timeout.
    public static func servedModels(_ options: OpenAIModelOptions) async throws -> [String] {
        var request = HTTPClientRequest(url: options.baseURL + "/models")
        if let env = options.apiKeyEnv, let key = ProcessInfo.processInfo.environment[env] {
            request.headers.add(name: "Authorization", value: "Bearer " + key)
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(options.timeout * 1000)))
            let body = try await response.body.collect(upTo: 8 << 20)
            try await client.shutdown()
            guard response.status.code == 200,
                  let object = try? JSONSerialization.jsonObject(with: Data(String(buffer: body).utf8)) as? [String: Any],
                  let data = object["data"] as? [[String: Any]] else {
                throw ClientError.rejected(status: Int(response.status.code), message: "GET /models: " + String(String(buffer: body).prefix(200)))
            }
            return data.compactMap { $0["id"] as? String }
        } catch {
            try? await client.shutdown()
            if let e = error as? ClientError { throw e }
            throw ClientError.gaveUp(attempts: 1, last: "GET \(options.baseURL)/models: \(error)")
        }
    }
}
