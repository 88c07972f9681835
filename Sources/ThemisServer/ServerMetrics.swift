import Foundation
import ThemisClient

/// Counters and gauges for `GET /metrics`, in the Prometheus text format.
public final class ServerMetrics: LocalModelObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: Int] = [:]
    private var errors: [Int: Int] = [:]
    private var waiting = 0
    private var active = 0
    private var promptTotal = 0
    private var generatedTotal = 0
    /// (time, prompt tokens, generated tokens) of recent work, for the per-second rates.
    private var recent: [(Double, Int, Int)] = []
    private let window = 10.0
    private let start = Date()

    public init() {}

    private var now: Double { Date().timeIntervalSince(start) }

    func request(_ endpoint: String) { lock.withLock { requests[endpoint, default: 0] += 1 } }
    func error(status: Int) { lock.withLock { errors[status, default: 0] += 1 } }
    public func queueDepth(_ n: Int) { lock.withLock { waiting = n } }
    public func activeSequences(_ n: Int) { lock.withLock { active = n } }

    public func promptTokens(_ n: Int) {
        lock.withLock {
            promptTotal += n
            recent.append((now, n, 0))
            trim()
        }
    }

    public func generatedTokens(_ n: Int) {
        lock.withLock {
            generatedTotal += n
            recent.append((now, 0, n))
            trim()
        }
    }

    private func trim() {
        let cut = now - window
        if let first = recent.firstIndex(where: { $0.0 >= cut }), first > 0 { recent.removeFirst(first) }
    }

    /// The exposition text.
    public func render() -> String {
        lock.withLock {
            trim()
            let span = min(window, max(now, 1e-3))
            let promptRate = Double(recent.reduce(0) { $0 + $1.1 }) / span
            let generatedRate = Double(recent.reduce(0) { $0 + $1.2 }) / span
            var out = ""
            out += "# HELP themis_requests_total Requests received, by endpoint.\n# TYPE themis_requests_total counter\n"
            for (k, v) in requests.sorted(by: { $0.key < $1.key }) { out += "themis_requests_total{endpoint=\"\(k)\"} \(v)\n" }
            out += "# HELP themis_errors_total Error responses, by HTTP status.\n# TYPE themis_errors_total counter\n"
            for (k, v) in errors.sorted(by: { $0.key < $1.key }) { out += "themis_errors_total{status=\"\(k)\"} \(v)\n" }
            out += "# HELP themis_queue_depth Requests waiting for a sequence slot.\n# TYPE themis_queue_depth gauge\nthemis_queue_depth \(waiting)\n"
            out += "# HELP themis_active_sequences Sequences being generated.\n# TYPE themis_active_sequences gauge\nthemis_active_sequences \(active)\n"
            out += "# HELP themis_prompt_tokens_total Prompt tokens evaluated.\n# TYPE themis_prompt_tokens_total counter\nthemis_prompt_tokens_total \(promptTotal)\n"
            out += "# HELP themis_generated_tokens_total Tokens generated.\n# TYPE themis_generated_tokens_total counter\nthemis_generated_tokens_total \(generatedTotal)\n"
            out += "# HELP themis_prompt_tokens_per_second Prompt tokens per second over the last 10 s.\n# TYPE themis_prompt_tokens_per_second gauge\n"
            out += "themis_prompt_tokens_per_second \(String(format: "%.3f", promptRate))\n"
            out += "# HELP themis_generated_tokens_per_second Generated tokens per second over the last 10 s.\n# TYPE themis_generated_tokens_per_second gauge\n"
            out += "themis_generated_tokens_per_second \(String(format: "%.3f", generatedRate))\n"
            return out
        }
    }
}
