import CPUBackend
import Foundation
import Testing
import ThemisDistill
import ThemisModel
import ThemisTrain

/// Export samples into weighted targets: the prompt untrained, answer tokens weighted by the
/// kind of span they fall in, the end of the turn trained as format.
@Suite("training data")
struct TrainingDataTests {
    @Test func spansBecomeTokenWeights() throws {
        let file = try GGUFFile(path: TrainTestSupport.smolLM2)
        let tokenizer = try Tokenizer(gguf: file)
        let template = try ChatTemplate(gguf: file)
        let verdict = "After comparing the two responses, my verdict is [[B]]"
        let answer = verdict + "\nResponse B names the right city; A does not."
        let record = ExportSample.OpenAI(
            messages: [.init(role: "user", content: "Which is right? A: Lyon. B: Paris."), .init(role: "assistant", content: answer)],
            spans: [.init(start: 0, end: verdict.utf16.count, kind: "score"),
                    .init(start: verdict.utf16.count, end: answer.utf16.count, kind: "explanation")],
            metadata: .init(id: "t", scenario: "close_qa", mode: "pairwise", augmentation: "original"))
        let sample = try TrainingData.sample(record, tokenizer: tokenizer, template: template,
                                             weights: ObjectiveWeights(score: 2, explanation: 0.5), maxTokens: 4096)
        let prompt = template.tokens([.user("Which is right? A: Lyon. B: Paris.")], tokenizer: tokenizer)
        #expect(Array(sample.tokens.prefix(prompt.count)) == prompt)
        let answerIDs = tokenizer.encodeContinuation(answer)
        #expect(Array(sample.tokens[prompt.count..<prompt.count + answerIDs.count]) == answerIDs)
        // ChatML: <|im_end|> ends the answer and is trained
        #expect(sample.tokens.last == tokenizer.id(of: "<|im_end|>"))
        #expect(sample.targets.map(\.row) == Array(prompt.count - 1..<sample.tokens.count - 1))
        let verdictTokens = tokenizer.encodeContinuation(verdict).count
        let weights = sample.targets.map(\.weight)
        #expect(weights.prefix(verdictTokens).allSatisfy { $0 == 2 })
        #expect(weights.dropFirst(verdictTokens).dropLast().allSatisfy { $0 == 0.5 })
        #expect(weights.last == 2)
        // an explanation weight of 0 trains the verdict and the end only
        let scoreOnly = try TrainingData.sample(record, tokenizer: tokenizer, template: template,
                                                weights: ObjectiveWeights(score: 1, explanation: 0), maxTokens: 4096)
        #expect(scoreOnly.targets.count == verdictTokens + 1)
    }

    /// Planning a step's samples over the tokens they begin with: two prompt families, a sample
    /// whose answer starts early (its node stops at its first trained row), a loner, and a family
    /// of two pairs (a shared rubric, each pair's conversation below it): every sample once, each
    /// node's samples sharing its tokens, nodes at least `minimumPrefix` deeper than their
    /// parents; fewer tokens run.
    @Test func samplesAreGroupedByTheirSharedBeginning() {
        func sample(_ id: String, _ head: [Int32], _ tail: [Int32], firstTarget: Int? = nil) -> TokenizedSample {
            let tokens = head + tail
            let first = firstTarget ?? tokens.count - 3
            return TokenizedSample(id: id, tokens: tokens, targets: (first..<tokens.count - 1).map { .init(row: $0, weight: 1) })
        }
        let a = [Int32](1...40), b = [Int32](1...10) + [Int32](500...529)
        let rubric = [Int32](1000..<1020), x = rubric + [Int32](2000..<2020), y = rubric + [Int32](3000..<3020)
        let samples = [
            sample("a1", a, [7, 8, 9, 10]), sample("b1", b, [3, 4, 5]), sample("a2", a, [7, 8, 1, 2, 3]),
            sample("lone", [900, 901, 902], [1, 2, 3, 4]), sample("b2", b, [9, 9, 9, 9]),
            sample("a3", a, [6, 6, 6], firstTarget: 30),
            sample("x#ab", x, [1, 2, 3]), sample("y#ab", y, [4, 5, 6]), sample("x#ba", x, [3, 2, 1]), sample("y#ba", y, [6, 5, 4]),
        ]
        let plan = SharedPrefix.tree(samples)
        #expect(plan.end == 0 && plan.samples.sorted() == Array(samples.indices))
        var found: [(end: Int, samples: Set<Int>)] = []
        func visit(_ node: PrefixNode, parent: Int) {
            for case .node(let child) in node.items {
                let below = child.samples
                found.append((child.end, Set(below)))
                #expect(child.end >= parent + SharedPrefix.minimumPrefix)
                for m in below {
                    #expect(Array(samples[m].tokens.prefix(child.end)) == Array(samples[below[0]].tokens.prefix(child.end)))
                    #expect(samples[m].targets.allSatisfy { $0.row >= child.end })
                }
                visit(child, parent: child.end)
            }
        }
        visit(plan, parent: 0)
        // a1, a2 share 42 tokens; with a3 (trained from row 30) the three share 30: fewer in all
        #expect(found.contains { $0 == (30, [0, 2, 5]) }, "\(found)")
        #expect(found.contains { $0 == (40, [1, 4]) }, "\(found)")
        // the rubric for the four, each pair's conversation for its two orders
        #expect(found.contains { $0 == (20, [6, 7, 8, 9]) } && found.contains { $0 == (40, [6, 8]) }
                && found.contains { $0 == (40, [7, 9]) }, "\(found)")
        #expect(found.count == 5 && plan.items.contains(.sample(3)))
        let lengths = samples.map(\.tokens.count)
        #expect(plan.tokensRun(lengths: lengths) == 30 + 14 + 15 + 13 + 40 + 3 + 4 + 7 + 20 + 2 * (20 + 3 + 3))
        #expect(SharedPrefix.tree(samples, enabled: false) == .flat(samples.count))
        #expect(PrefixNode.flat(samples.count).tokensRun(lengths: lengths) == lengths.reduce(0, +))
    }
    /// With `pairsTogether` every step of an even batch holds both orders of its pairs (two
    /// samples whose other order is missing fill a step between them); without it, the seeded
    /// shuffle splits pairs. Every sample once per epoch either way.
    @Test func bothOrdersOfAPairShareAStep() throws {
        let model = try LanguageModel(path: TrainTestSupport.tinyLlama, backend: CPUBackend(threads: 1, roundDecodeActivations: false), contextLength: 64)
        var samples: [TokenizedSample] = []
        for p in 0..<15 {
            for order in p == 4 || p == 9 ? ["ab"] : ["ab", "ba"] {
                samples.append(TokenizedSample(id: "p\(p)#\(order)", tokens: [1, 2, Int32(p + 3)], targets: [.init(row: 1, weight: 1)]))
            }
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("themis-pairs-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for together in [true, false] {
            var settings = TrainSettings()
            settings.batch = 4
            settings.pairsTogether = together
            let trainer = try Trainer(model: model, settings: settings, train: samples, eval: [], directory: dir)
            let steps = (0..<trainer.totalSteps).map { trainer.samples(forStep: $0).map(\.sample) }
            #expect(steps.count == 7)
            let epoch = steps.flatMap { $0 }.prefix(samples.count)
            #expect(Set(epoch.map(\.id)) == Set(samples.map(\.id)))
            let whole = steps.dropLast().map { step in
                Dictionary(grouping: step, by: \.pair).values.allSatisfy { $0.count == 2 || ["p4", "p9"].contains($0[0].pair) }
            }
            if together { #expect(whole.allSatisfy { $0 }, "\(steps.map { $0.map(\.id) })") } else { #expect(whole.contains(false)) }
        }
    }
}
