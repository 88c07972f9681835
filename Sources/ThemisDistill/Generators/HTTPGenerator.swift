import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// How to reach an OpenAI-compatible endpoint and how hard to try.
public struct HTTPGeneratorOptions: Sendable {
    /// Up to `/v1`, e.g. `http://127.0.0.1:8080/v1`.
    public var baseURL: String
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

    public init(baseURL: String, model: String) {
        self.baseURL = baseURL
        self.model = model
    }
}

/// An OpenAI-compatible chat endpoint (another `themis serve`, or any such API) as a generator,
/// with a concurrency limit, a rate limit, retries with exponential backoff and jitter on 429,
/// 5xx, timeouts, dropped connections and malformed replies, and an on-disk answer cache.
public final class HTTPGenerator: TextGenerator, @unchecked Sendable {
    public let options: HTTPGeneratorOptions
    public var name: String { options.model }
    private let client: HTTPClient
    private let apiKey: String?
    private let slots: AsyncSemaphore
    private let pacer: Pacer?
    private let cache: AnswerCache?
    /// Attempts made and retries taken, for reports.
    public let counters = Counters()

    public init(options: HTTPGeneratorOptions) throws {
        self.options = options
        if let env = options.apiKeyEnv {
            guard let key = ProcessInfo.processInfo.environment[env], !key.isEmpty else {
                throw GeneratorError.local("the API key variable \(env) is not set")
            }
            apiKey = key
        } else {
            apiKey = nil
        }
        guard options.concurrency >= 1, options.maxAttempts >= 1 else {
            throw GeneratorError.local("concurrency and attempts must be at least 1")
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton)
        slots = AsyncSemaphore(options.concurrency)
        pacer = options.requestsPerSecond.map { Pacer(perSecond: $0) }
        cache = try options.cacheDirectory.map { try AnswerCache(directory: $0) }
    }

    /// Closes the connections; call before dropping the generator.
    public func shutdown() async throws { try await client.shutdown() }

    public func generate(_ spec: GenerationSpec) async throws -> GeneratedText {
        let key = CacheKey(endpoint: options.baseURL, model: options.model, spec: spec)
        if let cached = cache?.read(key) {
            await counters.add(cacheHits: 1)
            return cached
        }
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
            switch await attemptOnce(spec) {
            case .success(let answer):
                try cache?.write(key, answer)
                return answer
            case .retry(let reason, let after):
                last = reason
                if let after { try await Task.sleep(nanoseconds: UInt64(min(after, options.maxBackoff) * 1e9)) }
            case .fail(let error):
                throw error
            }
        }
        throw GeneratorError.gaveUp(attempts: options.maxAttempts, last: last)
    }

    enum Outcome {
        case success(GeneratedText)
        case retry(String, after: Double?)
        case fail(GeneratorError)
    }

    private func attemptOnce(_ spec: GenerationSpec) async -> Outcome {
        var body: [String: Any] = [
            "model": options.model, "messages": spec.messages.map { ["role": $0.role, "content": $0.content] },
            "max_tokens": spec.maxTokens, "temperature": spec.temperature, "top_p": spec.topP,
        ]
        if let seed = spec.seed { body["seed"] = seed }
        if !spec.stop.isEmpty { body["stop"] = spec.stop }
        var request = HTTPClientRequest(url: options.baseURL + "/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer " + apiKey) }
        guard let data = try? JSONSerialization.data(withJSONObject: body) else { return .fail(.local("cannot encode the request")) }
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
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let choice = (object["choices"] as? [[String: Any]])?.first,
              let content = (choice["message"] as? [String: Any])?["content"] as? String else {
            return .retry("malformed JSON reply: \(text.prefix(120))", after: nil)
        }
        let usage = object["usage"] as? [String: Any] ?? [:]
        return .success(GeneratedText(
            text: content, finishReason: choice["finish_reason"] as? String ?? "stop",
            promptTokens: usage["prompt_tokens"] as? Int ?? 0, completionTokens: usage["completion_tokens"] as? Int ?? 0,
            model: object["model"] as? String ?? options.model))
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
