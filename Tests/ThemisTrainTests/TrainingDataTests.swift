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
}
