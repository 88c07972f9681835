import Foundation
import Hummingbird
import NIOCore
import Testing
import ThemisClient
import ThemisTestSupport

/// The OpenAI-compatible client against a real loopback server made to misbehave.
@Suite("model clients: OpenAI-compatible server faults", .serialized)
struct OpenAIModelTests {
    actor Hits {
        var counts: [String: Int] = [:]
        func hit(_ path: String) -> Int { counts[path, default: 0] += 1; return counts[path, default: 0] }
    }

    static let ok = #"{"model": "teacher", "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}"#

    static func response(_ status: HTTPResponse.Status, _ body: String, retryAfter: String? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = retryAfter }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Runs `body` with the misbehaving server's base URL.
    static func withServer(_ body: @Sendable (String, Hits) async throws -> Void) async throws {
        let hits = Hits()
        let router = Router()
        router.post("/flaky/chat/completions") { _, _ in
            await hits.hit("flaky") <= 2 ? response(.internalServerError, #"{"error": {"message": "overloaded"}}"#) : response(.ok, ok)
        }
        router.post("/busy/chat/completions") { _, _ in
            await hits.hit("busy") == 1 ? response(.tooManyRequests, #"{"error": {"message": "slow down"}}"#, retryAfter: "0") : response(.ok, ok)
        }
        router.post("/down/chat/completions") { _, _ in
            _ = await hits.hit("down")
            return response(.badGateway, #"{"error": {"message": "upstream gone"}}"#)
        }
        router.post("/slow/chat/completions") { _, _ in
            _ = await hits.hit("slow")
            try await Task.sleep(nanoseconds: 2_000_000_000)
            return response(.ok, ok)
        }
        router.post("/garbled/chat/completions") { _, _ in
            _ = await hits.hit("garbled")
            return response(.ok, "{\"choices\": [ {\"message\": ")
        }
        router.post("/refuse/chat/completions") { _, _ in
            _ = await hits.hit("refuse")
            return response(.badRequest, #"{"error": {"message": "bad field 'messages'"}}"#)
        }
        let (ports, portSource) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in portSource.yield(channel.localAddress?.port ?? 0) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var iterator = ports.makeAsyncIterator()
            let reported = await iterator.next()
            let port = try #require(reported, "the server never reported its port")
            try await body("http://127.0.0.1:\(port)", hits)
            group.cancelAll()
        }
    }

    /// A loopback answer takes milliseconds; the default limit only stops a hang, however loaded the cores.
    static func generator(_ base: String, _ path: String, attempts: Int = 3, timeout: Double = Budget.limit(measured: 1), cache: String? = nil) throws -> OpenAIModel {
        var o = OpenAIModelOptions(baseURL: base + "/" + path, model: "teacher")
        o.maxAttempts = attempts
        o.initialBackoff = 0.01
        o.maxBackoff = 0.05
        o.timeout = timeout
        o.cacheDirectory = cache
        return try OpenAIModel(options: o)
    }

    @Test func retriesThenSucceedsOrRecordsWhy() async throws {
        try await Self.withServer { base, hits in
            let spec = ChatRequest.user("Grade this.", maxTokens: 8, temperature: 0)

            let flaky = try Self.generator(base, "flaky")
            #expect(try await flaky.chat(spec).text == "fine")
            #expect(await hits.counts["flaky"] == 3)
            #expect(await flaky.counters.retries == 2)
            try await flaky.shutdown()

            let busy = try Self.generator(base, "busy")
            #expect(try await busy.chat(spec).text == "fine")
            try await busy.shutdown()

            for (path, reason) in [("down", "HTTP 502: upstream gone"), ("garbled", "malformed JSON reply"), ("slow", "timed out")] {
                let g = try Self.generator(base, path, timeout: path == "slow" ? 0.5 : Budget.limit(measured: 1))
                do {
                    _ = try await g.chat(spec)
                    Issue.record("\(path) succeeded")
                } catch let error as ClientError {
                    guard case .gaveUp(let attempts, let last) = error else { Issue.record("\(path): \(error)"); continue }
                    #expect(attempts == 3 && last.contains(reason), "\(path): \(last)")
                }
                #expect(await hits.counts[path] == 3, "\(path) attempts")
                try await g.shutdown()
            }

            let refuse = try Self.generator(base, "refuse")
            await #expect(throws: ClientError.rejected(status: 400, message: "bad field 'messages'")) { try await refuse.chat(spec) }
            #expect(await hits.counts["refuse"] == 1, "a 400 is not retried")
            try await refuse.shutdown()
        }
    }

    @Test func answersAreCachedByRequest() async throws {
        let cache = NSTemporaryDirectory() + "themis-cache-\(UUID().uuidString)"
        try await Self.withServer { base, hits in
            let g = try Self.generator(base, "busy", cache: cache)
            let spec = ChatRequest.user("Same question.", maxTokens: 8, temperature: 0)
            _ = try await g.chat(spec)
            let before = await hits.counts["busy"]
            #expect(try await g.chat(spec).text == "fine")
            #expect(await hits.counts["busy"] == before, "the second answer came from the cache")
            _ = try await g.chat(ChatRequest.user("Another question.", maxTokens: 8, temperature: 0))
            let beforeCount = try #require(before)
            #expect(await hits.counts["busy"] == beforeCount + 1)
            #expect(await g.counters.cacheHits == 1)
            try await g.shutdown()
        }
    }
}
