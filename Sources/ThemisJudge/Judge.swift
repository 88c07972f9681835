import Foundation
import ThemisClient

/// Options of a judge run.
public struct JudgeOptions: Sendable {
    public enum Explain: String, Sendable, CaseIterable {
        case none, short, full
        /// Tokens generated after the verdict.
        public var tokens: Int { self == .none ? 0 : self == .short ? 96 : 384 }
    }
    public enum PairwiseResolve: String, Sendable, CaseIterable {
        /// Orders that disagree give a tie.
        case tie
        /// Orders that disagree are settled by the difference of the averaged probabilities.
        case probability
    }
    public var scale: RatingScale = .standard
    public var explain: Explain = .short
    /// Let the model write the verdict and parse it from the text (instead of reading it from
    /// the label probabilities after a forced verdict prefix).
    public var freeVerdict = false
    public var pairwiseResolve: PairwiseResolve = .tie
    /// Cut the middle of an over-long response (with a marker) instead of failing the record.
    public var truncate = false
    /// Tokens of explanation instead of `explain`'s (the distillation's teacher writes longer).
    public var explanationTokens: Int?

    /// Tokens generated after the verdict.
    public var maxExplanationTokens: Int { explanationTokens ?? explain.tokens }

    public init() {}
}

/// Where a verdict came from: the model's label probabilities (of one of the `LabelSource`s),
/// or its own text, parsed (`--free-verdict`).
public enum VerdictSource: String, Sendable, Codable {
    case exact, topLogprobs = "top_logprobs", sampled, parsed

    init(_ source: LabelSource) {
        switch source {
        case .exact: self = .exact
        case .topLogprobs: self = .topLogprobs
        case .sampled: self = .sampled
        }
    }
}

/// One judged pass (one order, for pairwise).
public struct Verdict: Sendable, Equatable {
    /// `4`, or `A` / `B` / `C`; nil when a free verdict could not be parsed.
    public var label: String?
    /// Probability of each label, normalised over the allowed labels (empty for free verdicts).
    public var distribution: [String: Double]
    public var source: VerdictSource
    /// Labels the source could not see (`top_logprobs`).
    public var missingLabels: [String]
    public var status: VerdictParser.Status
    /// The answer text after the verdict (free mode: the whole answer).
    public var explanation: String
    public var promptTokens: Int
    public var reusedTokens: Int
}

/// The judge result of a record.
public struct Judgement: Sendable {
    public var mode: JudgeMode
    public var scenario: Scenario
    /// Label probabilities of the classification when the scenario was classified.
    public var scenarioProbabilities: [String: Double]?
    /// Single and reference modes: the verdict, and `Σ p(k)·k` when a distribution is known.
    public var rating: Int?
    public var expectedScore: Double?
    /// Pairwise: `A`, `B` or `tie` after both orders; the verdicts by order (`ab`, `ba`, each
    /// already mapped back to the original A/B) and whether they agree.
    public var verdict: String?
    public var verdictsByOrder: [String: String]?
    public var consistent: Bool?
    public var passes: [Verdict]
    public var status: VerdictParser.Status
}

/// The Themis judge on any model client: scenario classification by label probabilities, the
/// paper's five-block prompts, verdict first (read from the label probabilities right after a
/// forced verdict prefix), then the explanation.
public struct Judge: Sendable {
    public let client: any ModelClient
    public let catalogue: ScenarioCatalogue
    public let options: JudgeOptions

    public init(client: any ModelClient, catalogue: ScenarioCatalogue, options: JudgeOptions) {
        self.client = client
        self.catalogue = catalogue
        self.options = options
    }

    static func probabilities(_ labels: [String], _ p: LabelProbabilities) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(labels, p.probabilities))
    }

    // MARK: - Classification

    /// The scenario of `instruction` by comparing the probabilities of the scenario letters.
    public func classify(_ instruction: String) async throws -> (Scenario, [String: Double]) {
        let prompt = PromptBuilder.classification(catalogue: catalogue, instruction: instruction)
        let p = try await client.labelProbabilities(LabelRequest(prompt: .user(prompt.head + prompt.body), candidates: prompt.labels))
        var byID: [String: Double] = [:]
        for (i, s) in catalogue.scenarios.enumerated() { byID[s.id] = p.probabilities[i] }
        let best = zip(catalogue.scenarios, p.probabilities).max { $0.1 < $1.1 }!.0
        return (best, byID)
    }

    // MARK: - Judging

    /// One pass: the prompt fitted to the context, the verdict, then its explanation.
    public func pass(mode: JudgeMode, scenario: Scenario, input: JudgeInput) async throws -> Verdict {
        let prompt = try await fitted(mode: mode, scenario: scenario, input: input)
        let message = Prompt.user(prompt.text)
        if options.freeVerdict {
            let reply = try await client.chat(ChatRequest(prompt: message, maxTokens: max(256, options.maxExplanationTokens), temperature: 0))
            let parsed = mode == .pairwise ? VerdictParser.pairwise(reply.text) : VerdictParser.rating(reply.text, scale: options.scale)
            return Verdict(label: parsed.value, distribution: [:], source: .parsed, missingLabels: [], status: parsed.status,
                           explanation: reply.text, promptTokens: reply.promptTokens, reusedTokens: 0)
        }
        let request = LabelRequest(prompt: Prompt(messages: [.user(prompt.text)], assistantPrefix: prompt.verdictPrefix),
                                   candidates: prompt.labels.map { $0 + "]]" })
        let p = try await client.labelProbabilities(request)
        let distribution = Self.probabilities(prompt.labels, p)
        let label = zip(prompt.labels, p.probabilities).max { $0.1 < $1.1 }!.0
        var verdict = Verdict(label: label, distribution: distribution, source: VerdictSource(p.source),
                              missingLabels: p.missing.map { String($0.dropLast(2)) }, status: .ok, explanation: "",
                              promptTokens: p.promptTokens, reusedTokens: p.reusedTokens)
        if options.maxExplanationTokens > 0 {
            let follow = Prompt(messages: [.user(prompt.text)], assistantPrefix: prompt.verdictPrefix + label + "]]")
            verdict.explanation = try await client.chat(ChatRequest(prompt: follow, maxTokens: options.maxExplanationTokens, temperature: 0)).text
        }
        return verdict
    }

    /// The prompt of a pass; when it does not fit the context (and the client can count tokens),
    /// the middle of the longest response is cut (`truncate`) or the record fails.
    func fitted(mode: JudgeMode, scenario: Scenario, input: JudgeInput) async throws -> JudgePrompt {
        var input = input
        var prompt = PromptBuilder.build(mode: mode, scenario: scenario, scale: options.scale, input: input)
        guard let context = client.contextLength else { return prompt }
        let room = context - 1 - (options.freeVerdict ? 256 : 8) - options.maxExplanationTokens
        for _ in 0..<4 {
            let full = Prompt(messages: [.user(prompt.text)], assistantPrefix: options.freeVerdict ? "" : prompt.verdictPrefix)
            guard let count = try await client.promptTokenCount(full) else { return prompt }
            if count <= room { return prompt }
            guard options.truncate else { throw JudgeError.tooLong(promptTokens: count, context: context) }
            input = try await truncated(input, mode: mode, excess: count - room)
            prompt = PromptBuilder.build(mode: mode, scenario: scenario, scale: options.scale, input: input)
        }
        throw JudgeError.badRecord("the record does not fit the context even with its response cut")
    }

    /// The input with the middle of its response(s) cut by about `excess` tokens.
    func truncated(_ input: JudgeInput, mode: JudgeMode, excess: Int) async throws -> JudgeInput {
        var input = input
        let marker = "\n[... middle of the response cut to fit the context ...]\n"
        func cut(_ text: String?, by tokens: Int) async throws -> String? {
            guard let text, let count = try await client.tokenCount(text), count > 0 else { return text }
            let keepTokens = count - tokens - 16
            guard keepTokens >= 32 else {
                throw JudgeError.badRecord("the record does not fit the context even with its response cut (\(count) response tokens, \(tokens) too many)")
            }
            // characters in proportion to tokens; a second round cuts more if this was not enough
            let characters = Array(text)
            let keep = characters.count * keepTokens / count
            return String(characters.prefix(keep / 2)) + marker + String(characters.suffix(keep - keep / 2))
        }
        if mode == .pairwise {
            let half = (excess + 1) / 2
            input.responseA = try await cut(input.responseA, by: half)
            input.responseB = try await cut(input.responseB, by: half)
        } else {
            input.response = try await cut(input.response, by: excess)
        }
        return input
    }

    /// Judges one record. `scenario` nil: classified from the instruction.
    public func judge(_ input: JudgeInput, mode: JudgeMode, scenario given: Scenario?) async throws -> Judgement {
        let scenario: Scenario
        var probabilities: [String: Double]?
        if let given { scenario = given } else { (scenario, probabilities) = try await classify(input.instruction) }
        var passes: [Verdict]
        if mode == .pairwise {
            var swapped = input
            swapped.responseA = input.responseB
            swapped.responseB = input.responseA
            async let first = pass(mode: mode, scenario: scenario, input: input)
            async let second = pass(mode: mode, scenario: scenario, input: swapped)
            passes = try await [first, second]
        } else {
            passes = [try await pass(mode: mode, scenario: scenario, input: input)]
        }
        return combine(passes, mode: mode, scenario: scenario, probabilities: probabilities)
    }

    /// Judges several records at once: their passes run concurrently, so a local model decodes
    /// their explanations in shared forward passes and a remote one gets parallel requests.
    public func judge(batch items: [(input: JudgeInput, mode: JudgeMode, scenario: Scenario?)]) async -> [Result<Judgement, any Error>] {
        await withTaskGroup(of: (Int, Result<Judgement, any Error>).self) { group in
            for (i, item) in items.enumerated() {
                group.addTask {
                    do { return (i, .success(try await judge(item.input, mode: item.mode, scenario: item.scenario))) } catch {
                        return (i, .failure(error))
                    }
                }
            }
            var out = [Result<Judgement, any Error>?](repeating: nil, count: items.count)
            for await (i, r) in group { out[i] = r }
            return out.map { $0! }
        }
    }

    /// The judgement of a record from its passes (pairwise: the original order, then swapped).
    func combine(_ passes: [Verdict], mode: JudgeMode, scenario: Scenario, probabilities: [String: Double]?) -> Judgement {
        switch mode {
        case .single, .reference:
            let v = passes[0]
            // summed in label order: a dictionary's order differs between runs, and so would the last digit
            let expected = v.distribution.isEmpty ? nil
                : v.distribution.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }.reduce(0.0) { $0 + $1.value * Double(Int($1.key) ?? 0) }
            return Judgement(mode: mode, scenario: scenario, scenarioProbabilities: probabilities,
                             rating: v.label.flatMap(Int.init), expectedScore: expected, verdict: nil,
                             verdictsByOrder: nil, consistent: nil, passes: [v], status: v.status)
        case .pairwise:
            let first = passes[0], second = passes[1]
            func name(_ label: String?, swapped: Bool) -> String? {
                switch label {
                case "A": return swapped ? "B" : "A"
                case "B": return swapped ? "A" : "B"
                case "C": return "tie"
                default: return nil
                }
            }
            let ab = name(first.label, swapped: false), ba = name(second.label, swapped: true)
            let status: VerdictParser.Status = first.status != .ok ? first.status : second.status
            var final: String?
            if let ab, let ba {
                if ab == ba {
                    final = ab
                } else if options.pairwiseResolve == .probability, !first.distribution.isEmpty {
                    let pA = (first.distribution["A", default: 0] + second.distribution["B", default: 0]) / 2
                    let pB = (first.distribution["B", default: 0] + second.distribution["A", default: 0]) / 2
                    final = pA > pB ? "A" : pB > pA ? "B" : "tie"
                } else {
                    final = "tie"
                }
            }
            var orders: [String: String] = [:]
            if let ab { orders["ab"] = ab }
            if let ba { orders["ba"] = ba }
            return Judgement(mode: mode, scenario: scenario, scenarioProbabilities: probabilities, rating: nil,
                             expectedScore: nil, verdict: final, verdictsByOrder: orders,
                             consistent: ab != nil && ba != nil ? ab == ba : nil, passes: [first, second], status: status)
        }
    }
}
