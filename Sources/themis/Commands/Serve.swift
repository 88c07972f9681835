import ArgumentParser
import Foundation
import ThemisJudge
import ThemisServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model and the judge over an OpenAI-compatible HTTP API, with continuous batching.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Address to listen on (only loopback unless told otherwise).") var host = "127.0.0.1"
    @Option(help: "Port (0: any free one; the chosen port is printed).") var port = 8080
    @Option(help: "Sequences generated together; up to 8 keeps every answer equal to a lone request's.") var parallel = 8
    @Option(help: "Requests that may wait for a slot; beyond it the answer is 503 with Retry-After.") var queue = 64
    @Option(name: .customLong("api-key-env"), help: "Environment variable holding the bearer key clients must send.")
    var apiKeyEnv: String?
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted.") var maxBodyBytes = 1 << 20
    @Option(name: .customLong("max-tokens-limit"), help: "Largest max_tokens accepted.") var maxTokensLimit = 2048
    @Option(help: "The model id clients name (default: the --model name).") var name: String?
    @Option(name: .customLong("idle-timeout"), help: "Seconds a connection may stay open with no request in progress.")
    var idleTimeout = 60
    @OptionGroup var judgeSettings: JudgeSettings
    @Option(help: "Judge explanations: none, short, full.") var explain: JudgeOptions.Explain = .short
    @Flag(name: .customLong("q8-decode"),
          help: "CPU: round activations to 8 bits, as themis generate does (faster for one stream, and for prompts on CPUs with VNNI; batched steps then read the weights once per sequence).")
    var q8Decode = false

    func validate() throws {
        if parallel < 1 || parallel > 64 { throw ValidationError("--parallel must be between 1 and 64") }
        if queue < 0 { throw ValidationError("--queue must be >= 0") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be between 0 and 65535") }
        if maxBodyBytes < 1024 { throw ValidationError("--max-body-bytes must be at least 1024") }
        if maxTokensLimit < 1 || maxTokensLimit > 1 << 20 { throw ValidationError("--max-tokens-limit must be between 1 and 1048576") }
        if maxBodyBytes > 1 << 30 { throw ValidationError("--max-body-bytes must be at most 1073741824") }
        if queue > 1 << 16 { throw ValidationError("--queue must be at most 65536") }
        if idleTimeout < 1 || idleTimeout > 86_400 { throw ValidationError("--idle-timeout must be between 1 and 86400 seconds") }
    }

    func run() async throws {
        do {
            var options = ServerOptions()
            options.host = host
            options.port = port
            options.parallel = parallel
            options.queueLimit = queue
            options.maxBodyBytes = maxBodyBytes
            options.maxTokensLimit = maxTokensLimit
            options.idleTimeoutSeconds = idleTimeout
            options.defaultMaxTokens = min(256, maxTokensLimit)
            if let env = apiKeyEnv {
                guard let key = ProcessInfo.processInfo.environment[env], !key.isEmpty else {
                    throw ValidationError("--api-key-env \(env): the variable is not set or empty")
                }
                options.apiKey = key
            }
            var id = name ?? URL(fileURLWithPath: modelOptions.model).lastPathComponent
            if id.hasSuffix(".gguf") { id.removeLast(5) }
            options.modelID = id
            // f32 decode activations by default: a batched step reads each weight row once for
            // every sequence, and every answer equals `themis generate --exact-decode`'s
            var modelOptions = self.modelOptions
            modelOptions.exactDecode = !q8Decode
            let model = try modelOptions.load()
            let server = try ThemisServer(model: model, judgeOptions: judgeSettings.options(explain: explain),
                                          catalogue: judgeSettings.catalogue(), options: options,
                                          prefixCacheBytes: judgeSettings.prefixCacheMiB << 20,
                                          prefillChunk: judgeSettings.prefillChunk)
            let banner = "themis: serving \(id) (parallel \(options.parallel), context \(model.contextLength)) on"
            try await server.run { host, port in printError("\(banner) http://\(host):\(port)") }
            printError("themis: stopped")
        } catch {
            exitWithError(error)
        }
    }
}
