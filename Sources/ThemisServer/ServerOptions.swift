/// How `themis serve` listens and what it accepts.
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    /// 0: any free port (the one chosen is reported when listening).
    public var port = 8080
    /// Sequences generated together (continuous batching).
    public var parallel = 8
    /// Requests that may wait for a slot; more get 503 with Retry-After.
    public var queueLimit = 64
    public var maxBodyBytes = 1 << 20
    /// The largest `max_tokens` accepted, and the default when a request gives none.
    public var maxTokensLimit = 2048
    public var defaultMaxTokens = 256
    /// Bearer key every request but `/health` must carry; nil: no key.
    public var apiKey: String?
    /// The id `/v1/models` lists and requests may name.
    public var modelID = "themis"
    /// Seconds a connection may stay open with no request in progress before it is closed.
    public var idleTimeoutSeconds = 60

    public init() {}
}
