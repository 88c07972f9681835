import ArgumentParser
import Foundation
import ThemisClient
import ThemisJudge

extension JudgeMode: ExpressibleByArgument {}
extension JudgeOptions.Explain: ExpressibleByArgument {}
extension JudgeOptions.PairwiseResolve: ExpressibleByArgument {}

/// How the judge grades (shared by `judge` and `eval-judge`); `--explain` stays with each
/// command because their defaults differ.
struct JudgeSettings: ParsableArguments {
    @Option(help: "Scenario catalogue JSON (default: the bundled one).") var criteria: String?
    @Option(help: "Rating scale, e.g. 1-10 (default 1-5).") var scale = "1-5"
    @Flag(name: .customLong("free-verdict"), help: "Let the model write the verdict and parse it from its text.")
    var freeVerdict = false
    @Option(name: .customLong("pairwise-resolve"), help: "When the two orders disagree: tie, or probability.")
    var pairwiseResolve: JudgeOptions.PairwiseResolve = .tie
    @Flag(name: .customLong("no-prefix-reuse"), help: "Prefill every prompt whole (for measuring the reuse).")
    var noPrefixReuse = false
    @Option(name: .customLong("prefix-cache-mib"), help: "Memory for the reused prompt heads' keys and values (MiB).")
    var prefixCacheMiB = 256
    @Option(name: .customLong("prefill-chunk"),
            help: "Prompt tokens evaluated at a time; other requests' decode steps run between the pieces (smaller: a short request waits less beside a long one).")
    var prefillChunk = 128
    @Flag(help: "Cut the middle of a response that does not fit the context, with a marker.") var truncate = false
    @Option(help: "Records judged together (their explanations are decoded in shared forward passes).")
    var batch = 4

    func validate() throws {
        if batch < 1 || batch > 32 { throw ValidationError("--batch must be between 1 and 32") }
        if prefixCacheMiB < 0 { throw ValidationError("--prefix-cache-mib must be >= 0") }
        if prefillChunk < 1 || prefillChunk > 4096 { throw ValidationError("--prefill-chunk must be between 1 and 4096") }
    }

    /// The rating scale of `--scale`.
    func ratingScale() throws -> RatingScale {
        let parts = scale.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 2 else { throw ValidationError("--scale takes LOW-HIGH, e.g. 1-10") }
        return try RatingScale(lower: parts[0], upper: parts[1])
    }

    func options(explain: JudgeOptions.Explain) throws -> JudgeOptions {
        var options = JudgeOptions()
        options.scale = try ratingScale()
        options.explain = explain
        options.freeVerdict = freeVerdict
        options.pairwiseResolve = pairwiseResolve
        options.truncate = truncate
        return options
    }

    /// A local judge model: every pass of a batch decodes together, prompt starts are reused.
    var localOptions: LocalModelOptions {
        var o = LocalModelOptions()
        o.parallel = 2 * batch
        o.reusePrefix = !noPrefixReuse
        o.prefixCacheBytes = prefixCacheMiB << 20
        o.prefillChunk = prefillChunk
        return o
    }

    /// What the CLI adds to a failed record's error.
    static func hint(_ error: any Error) -> String? {
        switch error {
        case JudgeError.tooLong, ClientError.tooLong: return "use --truncate or a larger --ctx-size"
        case ClientError.gaveUp(_, let last) where last.hasPrefix("timed out"):
            return "a larger --request-timeout or a smaller --concurrency may help; --resume judges failed records again"
        case ClientError.gaveUp: return "--resume judges failed records again"
        default: return nil
        }
    }

    func catalogue() throws -> ScenarioCatalogue {
        try criteria.map(ScenarioCatalogue.load) ?? ScenarioCatalogue.bundled()
    }
}
