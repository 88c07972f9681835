import Foundation
import Synchronization
import ThemisClient

/// Counters and gauges for `GET /metrics`, in the Prometheus text format. Requests are counted
/// by route (unknown paths as one `other`), so the label set is fixed whatever clients send.
public final class ServerMetrics: LocalModelObserver, Sendable {
    /// The routes the server answers; every other path is `other`.
    static let routes: Set<String> = ["/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/judge"]

    private struct State {
        var requests: [String: Int] = [:]
        var errors: [Int: Int] = [:]
        var waiting = 0
        var active = 0
        var promptTotal = 0
        var generatedTotal = 0
        /// (time, prompt tokens, generated tokens) of recent work, for the per-second rates.
        var recent: [(Double, Int, Int)] = []
    }

    private let state = Mutex(State())
    private let window = 10.0
    private let start = Date()

    public init() {}

    private var now: Double { Date().timeIntervalSince(start) }

    /// The route label of a request path.
    static func route(_ path: String) -> String { routes.contains(path) ? path : "other" }

    func request(_ route: String) { state.withLock { $0.requests[route, default: 0] += 1 } }
    func error(status: Int) { state.withLock { $0.errors[status, default: 0] += 1 } }
    public func queueDepth(_ n: Int) { state.withLock { $0.waiting = n } }
    public func activeSequences(_ n: Int) { state.withLock { $0.active = n } }

    public func promptTokens(_ n: Int) {
        let t = now
        state.withLock {
            $0.promptTotal += n
            $0.recent.append((t, n, 0))
            Self.trim(&$0, before: t - window)
        }
    }

    public func generatedTokens(_ n: Int) {
        let t = now
        state.withLock {
            $0.generatedTotal += n
            $0.recent.append((t, 0, n))
            Self.trim(&$0, before: t - window)
        }
    }

    private static func trim(_ s: inout State, before cut: Double) {
        if let first = s.recent.firstIndex(where: { $0.0 >= cut }), first > 0 { s.recent.removeFirst(first) }
    }

    /// The exposition text.
    public func render() -> String {
        let t = now
        return state.withLock { s in
            Self.trim(&s, before: t - window)
            let span = min(window, max(t, 1e-3))
            let promptRate = Double(s.recent.reduce(0) { $0 + $1.1 }) / span
            let generatedRate = Double(s.recent.reduce(0) { $0 + $1.2 }) / span
            var out = ""
            out += "# HELP themis_requests_total Authenticated requests, by route.\n# TYPE themis_requests_total counter\n"
            for (k, v) in s.requests.sorted(by: { $0.key < $1.key }) { out += "themis_requests_total{endpoint=\"\(k)\"} \(v)\n" }
            out += "# HELP themis_errors_total Error responses, by HTTP status.\n# TYPE themis_errors_total counter\n"
            for (k, v) in s.errors.sorted(by: { $0.key < $1.key }) { out += "themis_errors_total{status=\"\(k)\"} \(v)\n" }
            out += "# HELP themis_queue_depth Requests waiting for a sequence slot.\n# TYPE themis_queue_depth gauge\nthemis_queue_depth \(s.waiting)\n"
            out += "# HELP themis_active_sequences Sequences being generated.\n# TYPE themis_active_sequences gauge\nthemis_active_sequences \(s.active)\n"
            out += "# HELP themis_prompt_tokens_total Prompt tokens evaluated.\n# TYPE themis_prompt_tokens_total counter\nthemis_prompt_tokens_total \(s.promptTotal)\n"
            out += "# HELP themis_generated_tokens_total Tokens generated.\n# TYPE themis_generated_tokens_total counter\nthemis_generated_tokens_total \(s.generatedTotal)\n"
            out += "# HELP themis_prompt_tokens_per_second Prompt tokens per second over the last 10 s.\n# TYPE themis_prompt_tokens_per_second gauge\n"
            out += "themis_prompt_tokens_per_second \(String(format: "%.3f", promptRate))\n"
            out += "# HELP themis_generated_tokens_per_second Generated tokens per second over the last 10 s.\n# TYPE themis_generated_tokens_per_second gauge\n"
            out += "themis_generated_tokens_per_second \(String(format: "%.3f", generatedRate))\n"
            return out
        }
    }
}
