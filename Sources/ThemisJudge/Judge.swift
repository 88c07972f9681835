import Foundation
import ThemisModel

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
    /// the next-token distribution after a forced verdict prefix).
    public var freeVerdict = false
    public var pairwiseResolve: PairwiseResolve = .tie
    /// Keep the keys and values of each scenario's shared prompt head and reuse them.
    public var reusePrefix = true
    /// Memory for the shared heads' keys and values; the least recently used go beyond it.
    public var prefixCacheBytes = 256 << 20
    /// Cut the middle of an over-long response (with a marker) instead of failing the record.
    public var truncate = false

    public init() {}
}

/// One judged pass (one order, for pairwise).
public struct Verdict: Sendable, Equatable {
    /// `4`, or `A` / `B` / `C`; nil when a free verdict could not be parsed.
    public var label: String?
    /// Probability of each label (forced-prefix mode), normalised over the allowed labels.
    public var distribution: [String: Double]
    public var status: VerdictParser.Status
    /// The answer text after the verdict prefix (free mode: the whole answer).
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

/// The Themis judge on a local model: scenario classification by label log-probabilities,
/// the paper's five-block prompts, verdict first.
public final class Judge {
    public let model: LanguageModel
    public let catalogue: ScenarioCatalogue
    public let options: JudgeOptions
    private let template: ChatTemplate
    /// The session in use; `pool` holds one per pass of a batch (their caches fill only as
    /// far as they are written).
    private var session: Session
    private var pool: [Session]
    private var heads: [[Int32]: PrefixSnapshot] = [:]
    /// Keys of `heads`, least recently used first.
    private var headOrder: [[Int32]] = []

    public init(model: LanguageModel, catalogue: ScenarioCatalogue, options: JudgeOptions) throws {
        self.model = model
        self.catalogue = catalogue
        self.options = options
        template = try model.chatTemplate()
        session = try model.makeSession()
        pool = [session]
    }

    /// Tokens evaluated and reused so far (prefill work saved by the shared heads).
    public private(set) var evaluatedTokens = 0
    public private(set) var reusedTokens = 0

    // MARK: - Prompts to tokens

    /// The chat-formatted tokens of `head + body`, answer started with `answerPrefix`, as the
    /// head's tokens and the rest's (always tokenized apart, so reuse changes no token).
    func tokens(head: String, body: String, answerPrefix: String) -> (head: [Int32], tail: [Int32]) {
        var rendered = template.renderPrompt([.user(head + body)])
        rendered.appendMessageText(answerPrefix)
        let bytes = Array(rendered.text.utf8)
        let headBytes = Array(head.utf8)
        // the user message's text starts with the head
        let start = rendered.contentRanges.first { r in
            r.count >= headBytes.count && Array(bytes[r.lowerBound..<(r.lowerBound + headBytes.count)]) == headBytes
        }!.lowerBound
        let (h, t) = rendered.split(atByte: start + headBytes.count)
        return (model.tokenizer.encode(h), model.tokenizer.encode(t, addBOS: false))
    }

    /// Evaluates `head + tail` and returns the logits after it, reusing the head's keys and
    /// values when it was seen before.
    func evaluate(head: [Int32], tail: [Int32]) throws -> (logits: [Float], reused: Int) {
        let total = head.count + tail.count
        guard total < session.contextLength else {
            throw JudgeError.tooLong(promptTokens: total, context: session.contextLength)
        }
        if options.reusePrefix && !head.isEmpty {
            let key = head
            if !session.tokens.starts(with: head) {
                if let snapshot = heads[key] {
                    try session.restore(snapshot)
                } else {
                    session.truncate(to: 0)
                    _ = try session.evaluate(head, outputs: 0..<0)
                    evaluatedTokens += head.count
                    heads[key] = try session.snapshot(count: head.count)
                    // keep the snapshots within their memory budget, dropping the least recent
                    let bytesPerToken = 2 * model.config.blockCount * model.config.kvWidth * 4
                    while !headOrder.isEmpty,
                          heads.values.reduce(0, { $0 + $1.tokens.count }) * bytesPerToken > options.prefixCacheBytes {
                        heads[headOrder.removeFirst()] = nil
                    }
                }
                headOrder.removeAll { $0 == key }
                headOrder.append(key)
            }
            let (logits, reused) = try session.evaluateReusing(head + tail)
            evaluatedTokens += total - reused
            reusedTokens += reused
            return (logits, reused)
        }
        session.truncate(to: 0)
        let logits = try session.evaluateLast(head + tail)
        evaluatedTokens += total
        return (logits, 0)
    }

    /// Label probabilities after the current session state, normalised over `labels`: from the
    /// next-token logits when each label is a token of its own, else each label scored with
    /// its closing text (`10]]`) as a continuation.
    func distribution(labels: [String], closing: String, logits: [Float]) throws -> [String: Double] {
        let single = labels.map { model.tokenizer.encode($0, parseSpecial: false, addBOS: false) }
        let scores: [Double]
        if single.allSatisfy({ $0.count == 1 }) && Set(single.map { $0[0] }).count == labels.count {
            // every label is one token of its own: the next-token distribution decides
            scores = single.map { Double(logits[Int($0[0])]) }
        } else {
            let candidates = labels.map { model.tokenizer.encode($0 + closing, parseSpecial: false, addBOS: false) }
            scores = try session.scoreContinuations(candidates, lastLogits: logits)
        }
        let top = scores.max() ?? 0
        let weights = scores.map { exp($0 - top) }
        let total = weights.reduce(0, +)
        return Dictionary(uniqueKeysWithValues: zip(labels, weights.map { $0 / total }))
    }

    // MARK: - Classification

    /// The scenario of `instruction` by comparing the log-probabilities of the scenario letters.
    public func classify(_ instruction: String) throws -> (Scenario, [String: Double]) {
        let prompt = PromptBuilder.classification(catalogue: catalogue, instruction: instruction)
        let (head, tail) = tokens(head: prompt.head, body: prompt.body, answerPrefix: "")
        let (logits, _) = try evaluate(head: head, tail: tail)
        let letters = try distribution(labels: prompt.labels, closing: "", logits: logits)
        var byID: [String: Double] = [:]
        for (i, s) in catalogue.scenarios.enumerated() { byID[s.id] = letters[prompt.labels[i]] }
        let best = catalogue.scenarios.max { byID[$0.id]! < byID[$1.id]! }!
        return (best, byID)
    }

    // MARK: - Judging

    /// A pass whose prompt is evaluated and verdict read, waiting for its explanation.
    struct PendingPass {
        var session: Session
        var verdict: Verdict
        /// Tokens to append before generating (the chosen label and "]]"), or the logits to
        /// start from (free mode).
        var append: [Int32]
        var logits: [Float]
        var maxTokens: Int
        var mode: JudgeMode
    }

    /// Prompt and verdict of one pass in the current session.
    func prepare(mode: JudgeMode, scenario: Scenario, input: JudgeInput) throws -> PendingPass {
        var input = input
        var prompt = PromptBuilder.build(mode: mode, scenario: scenario, scale: options.scale, input: input)
        let prefix = options.freeVerdict ? "" : prompt.verdictPrefix
        var (head, tail) = tokens(head: prompt.head, body: prompt.body, answerPrefix: prefix)
        let room = session.contextLength - 1 - (options.freeVerdict ? 256 : 8) - options.explain.tokens
        if head.count + tail.count > room {
            guard options.truncate else {
                throw JudgeError.tooLong(promptTokens: head.count + tail.count, context: session.contextLength)
            }
            input = try truncated(input, mode: mode, excess: head.count + tail.count - room)
            prompt = PromptBuilder.build(mode: mode, scenario: scenario, scale: options.scale, input: input)
            (head, tail) = tokens(head: prompt.head, body: prompt.body, answerPrefix: prefix)
        }
        let (logits, reused) = try evaluate(head: head, tail: tail)
        let promptTokens = head.count + tail.count
        if options.freeVerdict {
            let verdict = Verdict(label: nil, distribution: [:], status: .missing, explanation: "",
                                  promptTokens: promptTokens, reusedTokens: reused)
            return PendingPass(session: session, verdict: verdict, append: [], logits: logits,
                               maxTokens: max(256, options.explain.tokens), mode: mode)
        }
        let probabilities = try distribution(labels: prompt.labels, closing: "]]", logits: logits)
        let label = prompt.labels.max { probabilities[$0]! < probabilities[$1]! }!
        let chosen = model.tokenizer.encode(label + "]]", parseSpecial: false, addBOS: false)
        let verdict = Verdict(label: label, distribution: probabilities, status: .ok, explanation: "",
                              promptTokens: promptTokens, reusedTokens: reused)
        return PendingPass(session: session, verdict: verdict, append: chosen, logits: [],
                           maxTokens: options.explain.tokens, mode: mode)
    }

    /// The explanations (free mode: whole answers, then parsed) of several passes, decoded
    /// greedily together: one forward pass per step for all of them.
    func finish(_ passes: [PendingPass]) throws -> [Verdict] {
        var verdicts = passes.map(\.verdict)
        var active = passes.indices.filter { passes[$0].maxTokens > 0 }
        var logits = passes.map(\.logits)
        let toAppend = active.filter { !passes[$0].append.isEmpty }
        if !toAppend.isEmpty {
            let out = try Session.evaluateLast(toAppend.map { passes[$0].session }, appending: toAppend.map { passes[$0].append })
            for (j, i) in toAppend.enumerated() { logits[i] = out[j] }
        }
        var decoders = passes.map { _ in StreamingDecoder(tokenizer: model.tokenizer) }
        var texts = passes.map { _ in "" }
        var counts = passes.map { _ in 0 }
        while !active.isEmpty {
            var next: [Int] = []
            var ids: [[Int32]] = []
            for i in active {
                let id = Sampler.argmax(logits[i])
                if model.tokenizer.isEndOfGeneration(id) { continue }
                texts[i] += decoders[i].append(id)
                counts[i] += 1
                let s = passes[i].session
                if counts[i] >= passes[i].maxTokens || s.tokens.count + 1 >= s.contextLength { continue }
                next.append(i)
                ids.append([id])
            }
            if next.isEmpty { break }
            let out = try Session.evaluateLast(next.map { passes[$0].session }, appending: ids)
            for (j, i) in next.enumerated() { logits[i] = out[j] }
            active = next
        }
        for i in passes.indices {
            texts[i] += decoders[i].finish()
            verdicts[i].explanation = texts[i]
            if options.freeVerdict {
                let parsed = passes[i].mode == .pairwise
                    ? VerdictParser.pairwise(texts[i]) : VerdictParser.rating(texts[i], scale: options.scale)
                verdicts[i].label = parsed.value
                verdicts[i].status = parsed.status
            }
        }
        return verdicts
    }

    /// The input with the middle of its longest response cut by about `excess` tokens.
    func truncated(_ input: JudgeInput, mode: JudgeMode, excess: Int) throws -> JudgeInput {
        var input = input
        let marker = "\n[... middle of the response cut to fit the context ...]\n"
        func cut(_ text: String?, by tokens: Int) throws -> String? {
            guard let text else { return nil }
            let ids = model.tokenizer.encode(text, parseSpecial: false, addBOS: false)
            let keep = ids.count - tokens - 16
            guard keep >= 32 else {
                throw JudgeError.badRecord("the record does not fit the context even with its response cut (\(ids.count) response tokens, \(tokens) too many)")
            }
            return model.tokenizer.decode(Array(ids.prefix(keep / 2))) + marker + model.tokenizer.decode(Array(ids.suffix(keep - keep / 2)))
        }
        if mode == .pairwise {
            let half = (excess + 1) / 2
            input.responseA = try cut(input.responseA, by: half)
            input.responseB = try cut(input.responseB, by: half)
        } else {
            input.response = try cut(input.response, by: excess)
        }
        return input
    }

    /// Judges one record. `scenario` nil: classified from the instruction.
    public func judge(_ input: JudgeInput, mode: JudgeMode, scenario given: Scenario?) throws -> Judgement {
        try judge(batch: [(input, mode, given)])[0].get()
    }

    /// Judges several records: each prompt is evaluated on its own (with its shared head reused),
    /// then all explanations are decoded together, one forward pass per token for the batch.
    public func judge(batch items: [(input: JudgeInput, mode: JudgeMode, scenario: Scenario?)]) -> [Result<Judgement, any Error>] {
        var results = [Result<Judgement, any Error>?](repeating: nil, count: items.count)
        var scenarios: [(Scenario, [String: Double]?)?] = items.map { _ in nil }
        var pending: [(item: Int, pass: PendingPass)] = []
        for (i, item) in items.enumerated() {
            do {
                session = pool[0]
                let scenario: Scenario
                var probabilities: [String: Double]?
                if let given = item.scenario { scenario = given } else {
                    let (s, p) = try classify(item.input.instruction)
                    scenario = s
                    probabilities = p
                }
                scenarios[i] = (scenario, probabilities)
                var inputs = [item.input]
                if item.mode == .pairwise {
                    var swapped = item.input
                    swapped.responseA = item.input.responseB
                    swapped.responseB = item.input.responseA
                    inputs.append(swapped)
                }
                var mine: [(Int, PendingPass)] = []
                for input in inputs {
                    let slot = pending.count + mine.count
                    if slot == pool.count { pool.append(try model.makeSession(contextLength: pool[0].contextLength)) }
                    session = pool[slot]
                    mine.append((i, try prepare(mode: item.mode, scenario: scenario, input: input)))
                }
                pending += mine
            } catch {
                results[i] = .failure(error)
            }
        }
        session = pool[0]
        let verdicts: [Verdict]
        do {
            verdicts = try finish(pending.map(\.pass))
        } catch {
            for p in pending { results[p.item] = .failure(error) }
            return results.map { $0! }
        }
        for i in items.indices where results[i] == nil {
            let passes = zip(pending, verdicts).filter { $0.0.item == i }.map(\.1)
            results[i] = .success(combine(passes, mode: items[i].mode, scenario: scenarios[i]!.0, probabilities: scenarios[i]!.1))
        }
        return results.map { $0! }
    }

    /// The judgement of a record from its passes (pairwise: the original order, then swapped).
    func combine(_ passes: [Verdict], mode: JudgeMode, scenario: Scenario, probabilities: [String: Double]?) -> Judgement {
        switch mode {
        case .single, .reference:
            let v = passes[0]
            let expected = v.distribution.isEmpty ? nil
                : v.distribution.reduce(0.0) { $0 + $1.value * Double(Int($1.key)!) }
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
