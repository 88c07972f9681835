import Foundation
import HTTPTypes
import Hummingbird
import JSONLines
import Logging
import NIOCore
import ThemisClient
import ThemisJudge
import ThemisModel

/// The OpenAI-compatible server: `/v1/models`, `/v1/chat/completions`, `/v1/completions`,
/// `/v1/judge`, `/health`, `/metrics`, over one `LocalModel` (continuous batching).
public final class ThemisServer: Sendable {
    public let model: LocalModel
    public let options: ServerOptions
    let metrics: ServerMetrics
    let judge: Judge
    let created = Int(Date().timeIntervalSince1970)

    /// `prefixCacheBytes`: memory for the keys and values of prompt starts the judge and the
    /// completions endpoint's scoring reuse (generations never start from them); `prefillChunk`:
    /// prompt tokens evaluated between two decode steps.
    public init(model: LanguageModel, judgeOptions: JudgeOptions, catalogue: ScenarioCatalogue, options: ServerOptions,
                prefixCacheBytes: Int = 256 << 20, prefillChunk: Int = 128) throws {
        metrics = ServerMetrics()
        self.options = options
        var local = LocalModelOptions()
        local.parallel = options.parallel
        local.queueLimit = options.queueLimit
        local.prefixCacheBytes = prefixCacheBytes
        local.prefillChunk = prefillChunk
        self.model = try LocalModel(model: model, name: options.modelID, options: local, observer: metrics)
        judge = Judge(client: self.model, catalogue: catalogue, options: judgeOptions)
    }

    /// Serves until SIGTERM or SIGINT; requests in flight then finish before it returns.
    /// `onListening` gets the address and port once the socket is bound.
    public func run(onListening: @escaping @Sendable (String, Int) -> Void) async throws {
        let router = Router()
        router.add(middleware: APIMiddleware(server: self))
        router.get("/health") { _, _ in
            self.json(["status": "ok", "model": self.options.modelID, "queue_depth": await self.model.queueDepth])
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: self.metrics.render())))
        }
        router.get("/v1/models") { _, _ in
            self.json(["object": "list", "data": [["id": self.options.modelID, "object": "model", "created": self.created,
                                                   "owned_by": "themis"] as [String: Any]]])
        }
        router.post("/v1/chat/completions") { request, context in try await self.chat(request, context) }
        router.post("/v1/completions") { request, context in try await self.completion(request, context) }
        router.post("/v1/judge") { request, context in try await self.judgeEndpoint(request, context) }
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(options.idleTimeoutSeconds)))),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "themis"),
            onServerRunning: { channel in
                onListening(self.options.host, channel.localAddress?.port ?? self.options.port)
            },
            logger: Self.logger)
        do {
            try await app.runService()
        } catch {
            await model.shutdown()
            throw error
        }
        await model.shutdown()
    }

    // MARK: helpers

    /// Hummingbird's own log: warnings and errors only (the CLI prints what a user needs).
    static var logger: Logger {
        var logger = Logger(label: "themis-serve")
        logger.logLevel = .warning
        return logger
    }

    /// A JSON response; `closing`: the connection ends after it (see `collect`).
    func json(_ object: Any, status: HTTPResponse.Status = .ok, closing: Bool = false) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        var headers: HTTPFields = [.contentType: "application/json"]
        if closing { headers[.connection] = "close" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The body decoded strictly: a wrong type or a missing field names the field.
    func decode<T: Decodable>(_ type: T.Type, _ request: inout Request) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: options.maxBodyBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(status: 413, message: "the body is larger than \(options.maxBodyBytes) bytes", code: "body_too_large")
        } catch is NIOTooManyBytesError {
            throw APIError(status: 413, message: "the body is larger than \(options.maxBodyBytes) bytes", code: "body_too_large")
        } catch {
            // a malformed chunk size, a body cut short: the client's request, not the server
            throw APIError.badRequest("the request body could not be read: \(error)", code: "malformed_body")
        }
        return try Self.decodeBody(T.self, from: Data(buffer.readableBytesView))
    }

    /// A request body decoded strictly: UTF-8 text, valid JSON, the fields of `T`; every
    /// problem is a 400 `APIError` naming the field.
    static func decodeBody<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if let problem = APIError.encodingProblem(data) { throw APIError.badRequest(problem, code: "invalid_utf8") }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            // JSONDecoder reports a fraction (or a huge number) in an integer field as invalid JSON
            // with no field named: find the field, or say the body is not JSON
            if let object = try? JSONDecoder().decode(JSONObject.self, from: data) {
                for (key, value) in object.sorted(by: { $0.key < $1.key }) where Self.integerFields.contains(key) {
                    if case .double = value { throw APIError.badRequest("'\(key)' must be a whole number", param: key) }
                }
                throw APIError.badRequest("the body is JSON, but a number in it does not fit its field")
            }
            throw APIError.badRequest("the body is not valid JSON")
        } catch {
            throw APIError.decoding(error)
        }
    }

    /// The endpoints that take a JSON body.
    public enum BodyRoute: String, Sendable, CaseIterable { case chat, completions, judge }

    /// Decodes `body` as `route`'s request and, for a chat, looks for a judge request in its last
    /// message, as the endpoint does before any model work; throws the `APIError` it would answer.
    public static func validateBody(_ body: Data, for route: BodyRoute) throws {
        switch route {
        case .chat:
            let request = try decodeBody(ChatCompletionRequest.self, from: body)
            if let last = request.messages.last { _ = judgeRequest(in: last.content) }
        case .completions: _ = try decodeBody(CompletionRequest.self, from: body)
        case .judge: _ = try decodeBody(JudgeRequestBody.self, from: body)
        }
    }

    /// The request fields that hold whole numbers.
    static let integerFields: Set<String> = ["max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs", "logprobs"]

    /// Checks the sampling fields and builds the generation (`allowZero`: `max_tokens: 0`, an
    /// echo that only scores the prompt).
    func generationRequest(_ fields: some SamplingFields, prompt: [Int32], maxTokens given: Int?, logprobs: Int?,
                           allowZero: Bool = false) throws -> Generation {
        if let model = fields.model, model != options.modelID {
            throw APIError(status: 404, message: "the model '\(model)' does not exist; this server has '\(options.modelID)'",
                           param: "model", code: "model_not_found")
        }
        if let n = fields.n, n != 1 { throw APIError.badRequest("only n = 1 is supported", param: "n") }
        let maxTokens = given ?? options.defaultMaxTokens
        guard maxTokens >= (allowZero ? 0 : 1) else {
            throw APIError.badRequest("max_tokens must be at least \(allowZero ? 0 : 1)", param: "max_tokens")
        }
        guard maxTokens <= options.maxTokensLimit else {
            throw APIError.badRequest("max_tokens is \(maxTokens), above this server's limit of \(options.maxTokensLimit)", param: "max_tokens")
        }
        var sampling = SamplingParameters()
        sampling.temperature = Float(fields.temperature ?? 1.0)
        sampling.topP = Float(fields.top_p ?? 1.0)
        // OpenAI has no top-k or min-p: leave the distribution to temperature and top_p
        sampling.topK = 0
        sampling.minP = 0
        if let seed = fields.seed { sampling.seed = UInt64(bitPattern: Int64(seed)) }
        do {
            try sampling.validate()
        } catch {
            throw APIError.badRequest("\(error)", param: fields.temperature.map { _ in "temperature" } ?? "top_p")
        }
        if let k = logprobs, !(0...20).contains(k) { throw APIError.badRequest("top_logprobs must be between 0 and 20", param: "top_logprobs") }
        guard !prompt.isEmpty else { throw APIError.badRequest("the prompt is empty", param: "prompt") }
        let context = model.contextTokens
        guard prompt.count < context else {
            throw APIError.badRequest("the prompt has \(prompt.count) tokens but the context holds \(context)",
                                      param: "messages", code: "context_length_exceeded")
        }
        return Generation(prompt: prompt, maxTokens: maxTokens, sampling: sampling, stop: fields.stop?.values ?? [],
                          logprobs: logprobs)
    }

    func submit(_ request: Generation) async throws -> (AsyncStream<GenerationEvent>, GenerationHandle) {
        do {
            return try await model.submit(request)
        } catch .busy(let n) {
            throw APIError(status: 503, message: ClientError.busy(waiting: n).description, type: "server_error", code: "queue_full",
                           retryAfter: 1)
        } catch {
            throw APIError(status: 503, message: error.description, type: "server_error", code: "shutting_down")
        }
    }

    static func finishReason(_ reason: StopReason) -> String {
        switch reason {
        case .endOfGeneration, .stopString: return "stop"
        case .maxTokens, .contextFull: return "length"
        }
    }

    func tokenText(_ id: Int32) -> (String, [UInt8]) {
        model.tokenText(id)
    }

    /// A completed generation: its text, log-probabilities and usage.
    struct Collected {
        var text = ""
        var logprobs: [TokenChoice] = []
        var reason = StopReason.maxTokens
        var promptTokens = 0
        var completionTokens = 0
    }

    /// Waits for a whole generation; a client that disconnects meanwhile cancels it. Watching the
    /// connection reads it past this request, so the response must close it (`json(closing:)`).
    func collect(_ events: AsyncStream<GenerationEvent>, handle: GenerationHandle, request: Request) async throws -> Collected {
        let result = try await request.body.consumeWithInboundCloseHandler({ _ in
            var c = Collected()
            for await event in events {
                switch event {
                case .token(let text, let lp):
                    c.text += text
                    if let lp { c.logprobs.append(lp) }
                case .finished(let reason, let p, let n):
                    c.reason = reason; c.promptTokens = p; c.completionTokens = n
                case .failed(let error):
                    return Result<Collected, APIError>.failure(APIError(error))
                }
            }
            return .success(c)
        }, onInboundClosed: { handle.cancel() })
        return try result.get()
    }

    /// Server-sent events: one `data:` line per chunk, then `data: [DONE]`. A failed write (the
    /// client went away) cancels the generation.
    func stream(_ events: AsyncStream<GenerationEvent>, handle: GenerationHandle,
                chunks: @escaping @Sendable (GenerationEvent) -> [[String: Any]]) -> Response {
        let body = ResponseBody { writer in
            do {
                for await event in events {
                    for chunk in chunks(event) {
                        let data = try JSONSerialization.data(withJSONObject: chunk, options: [.sortedKeys, .withoutEscapingSlashes])
                        try await writer.write(ByteBuffer(string: "data: " + String(decoding: data, as: UTF8.self) + "\n\n"))
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                handle.cancel()
                throw error
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}

/// Authentication, request counting, and every error in OpenAI's JSON shape.
struct APIMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let server: ThemisServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        do {
            if let key = server.options.apiKey, path != "/health" {
                guard let header = request.headers[.authorization], !header.isEmpty else {
                    throw APIError(status: 401, message: "missing API key: send 'Authorization: Bearer <key>'", type: "authentication_error",
                                   code: "missing_api_key")
                }
                let given = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : ""
                guard Self.constantTimeEqual(given, key) else {
                    throw APIError(status: 401, message: "invalid API key", type: "authentication_error", code: "invalid_api_key")
                }
            }
            // counted once authenticated, by route: a stranger's paths never become labels
            server.metrics.request(ServerMetrics.route(path))
            let response = try await next(request, context)
            if response.status.code >= 400 { server.metrics.error(status: response.status.code) }
            return response
        } catch let error as APIError {
            return respond(error)
        } catch let error as HTTPError {
            let status = error.status.code
            let message = status == 404 ? "no route \(request.method) \(path)" : (error.body ?? error.status.reasonPhrase)
            return respond(APIError(status: status, message: message, type: status >= 500 ? "server_error" : "invalid_request_error"))
        } catch {
            return respond(APIError(status: 500, message: "\(error)", type: "server_error"))
        }
    }

    func respond(_ error: APIError) -> Response {
        server.metrics.error(status: error.status)
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retry = error.retryAfter { headers[.retryAfter] = String(retry) }
        return Response(status: .init(code: error.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: error.json)))
    }

    /// Compares every byte whatever the first difference, so the time taken says nothing about the key.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}
