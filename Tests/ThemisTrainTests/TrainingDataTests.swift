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

    /// Grouping a step's samples by the tokens they begin with: two prompt families, a sample
    /// whose answer starts early (the prefix stops at its first trained row), a loner; every
    /// sample in one group, each group's members sharing its prefix; fewer tokens run.
    @Test func samplesAreGroupedByTheirSharedBeginning() {
        func sample(_ id: String, _ head: [Int32], _ tail: [Int32], firstTarget: Int? = nil) -> TokenizedSample {
            let tokens = head + tail
            let first = firstTarget ?? tokens.count - 3
            return TokenizedSample(id: id, tokens: tokens, targets: (first..<tokens.count - 1).map { .init(row: $0, weight: 1) })
        }
        let a = [Int32](1...40), b = [Int32](1...10) + [Int32](500...529)
        let samples = [
            sample("a1", a, [7, 8, 9, 10]), sample("b1", b, [3, 4, 5]), sample("a2", a, [7, 8, 1, 2, 3]),
            sample("lone", [900, 901, 902], [1, 2, 3, 4]), sample("b2", b, [9, 9, 9, 9]),
            sample("a3", a, [6, 6, 6], firstTarget: 30),
        ]
        let groups = SharedPrefix.groups(samples)
        #expect(groups.flatMap(\.members).sorted() == Array(samples.indices))
        var byFirst: [String: SampleGroup] = [:]
        for g in groups { byFirst[samples[g.members[0]].id] = g }
        let run = groups.reduce(0) { total, g in
            total + g.prefix + g.members.reduce(0) { $0 + samples[$1].tokens.count - g.prefix }
        }
        for g in groups {
            let first = samples[g.members[0]].tokens
            for m in g.members {
                #expect(Array(samples[m].tokens.prefix(g.prefix)) == Array(first.prefix(g.prefix)))
                #expect(samples[m].targets.allSatisfy { $0.row >= g.prefix })
            }
            #expect(g.members.count == 1 ? g.prefix == 0 : g.prefix >= SharedPrefix.minimumPrefix)
        }
        // a1, a2 share 42 tokens; with a3 (trained from row 30) the three share 30: fewer in all
        let aGroup = groups.first { g in g.members.contains(0) }!
        #expect(Set(aGroup.members) == [0, 2, 5] && aGroup.prefix == 30)
        let bGroup = groups.first { g in g.members.contains(1) }!
        #expect(Set(bGroup.members) == [1, 4] && bGroup.prefix == 40)
        #expect(groups.contains { $0.members == [3] && $0.prefix == 0 })
        #expect(run < samples.reduce(0) { $0 + $1.tokens.count })
        #expect(SharedPrefix.groups(samples, enabled: false) == samples.indices.map { SampleGroup(members: [$0], prefix: 0) })
    }
}
