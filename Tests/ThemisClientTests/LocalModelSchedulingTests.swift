import CPUBackend
import Foundation
import Synchronization
import Testing
import ThemisClient
import ThemisModel

/// A long prompt (a judge's label scoring, a generation's prefill) goes in pieces with the other
/// sequences' decode steps in between: a short completion that arrives meanwhile finishes first,
/// and nobody's numbers change.
@Suite("local model: scheduling", .serialized)
struct LocalModelSchedulingTests {
    static let models = ProcessInfo.processInfo.environment["THEMIS_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
        ?? NSHomeDirectory() + "/.cache/themis/models"

    static func client(chunk: Int = 128) throws -> LocalModel {
        let model = try LanguageModel(path: models + "/SmolLM2-135M-Instruct.Q4_1.gguf", backend: CPUBackend(), contextLength: 2048)
        var options = LocalModelOptions()
        // every request evaluates its whole prompt, so the second run is no shortcut
        options.reusePrefix = false
        options.prefillChunk = chunk
        return try LocalModel(model: model, name: "smollm2", options: options)
    }

    static let longText = String(repeating: "The committee met on Tuesday to review the budget, the hiring plan and the roadmap. ", count: 80)
    static let judgeRequest = LabelRequest(prompt: .user(longText + "\nIs the text above repetitive? Answer Yes or No.", assistantPrefix: "Answer: "),
                                           candidates: ["Yes", "No"])
    static let longChat = ChatRequest.user(longText + "\nSummarise the text above.", maxTokens: 3, temperature: 0)
    static let shortChat = ChatRequest.user("Say hello.", maxTokens: 2, temperature: 0)

    @Test func aShortCompletionFinishesWhileLongPromptsGoIn() async throws {
        let client = try Self.client()
        let promptTokens = try client.tokens(Self.judgeRequest.prompt).count
        // the label prompt takes many pieces; the completion needs one piece and two decode steps
        #expect(promptTokens > 10 * 128, "the judge prompt has only \(promptTokens) tokens")

        let judgeAlone = try await client.labelProbabilities(Self.judgeRequest)
        let longAlone = try await client.chat(Self.longChat)
        let shortAlone = try await client.chat(Self.shortChat)

        let order = Order()
        let judge = Task {
            let p = try await client.labelProbabilities(Self.judgeRequest)
            order.append("judge")
            return p
        }
        // until the label prompt is going in (or is already done: then the order check fails)
        while await client.scoringRequests == 0, order.names.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        let long = Task {
            let r = try await client.chat(Self.longChat)
            order.append("long completion")
            return r
        }
        while await client.queueDepth + client.activeSequences == 0, order.names.count < 2 { try await Task.sleep(for: .milliseconds(1)) }
        let short = try await client.chat(Self.shortChat)
        order.append("short completion")
        let judgeTogether = try await judge.value
        let longTogether = try await long.value

        #expect(order.names.first == "short completion", "finished in the order \(order.names)")
        #expect(judgeTogether.probabilities == judgeAlone.probabilities)
        #expect(longTogether.text == longAlone.text)
        #expect(short.text == shortAlone.text)
        #expect(short.completionTokens == 2)
    }

    /// The order requests finished in.
    final class Order: Sendable {
        private let list = Mutex<[String]>([])
        func append(_ name: String) { list.withLock { $0.append(name) } }
        var names: [String] { list.withLock { $0 } }
    }

    /// Where the pieces fall and how much of the prompt came from the prefix cache does not change
    /// a number: no piece is small enough for the decode kernels, whose sums differ.
    @Test func piecesAndReuseGiveTheNumbersOfTheWholePrompt() async throws {
        let whole = try await Self.client(chunk: 4096).labelProbabilities(Self.judgeRequest)
        let pieces = try await Self.client(chunk: 37).labelProbabilities(Self.judgeRequest)
        #expect(pieces.probabilities == whole.probabilities)
        // with the prefix cache: a prompt sharing the long start goes first, so most is reused
        let model = try LanguageModel(path: Self.models + "/SmolLM2-135M-Instruct.Q4_1.gguf", backend: CPUBackend(), contextLength: 2048)
        let reusing = try LocalModel(model: model, name: "smollm2")
        _ = try await reusing.labelProbabilities(LabelRequest(prompt: .user(Self.longText + "\nIs the text above short?"), candidates: ["Yes", "No"]))
        for cut in [0, 1, 5, 9] {
            // a start shared up to a few tokens before the end (the rest is at least one full piece)
            let request = LabelRequest(prompt: .user(Self.longText + "\nIs the text above repetitive? Answer Yes or No." + String(repeating: " ok", count: cut),
                                                     assistantPrefix: "Answer: "), candidates: ["Yes", "No"])
            let alone = try await Self.client(chunk: 4096).labelProbabilities(request)
            _ = try await reusing.labelProbabilities(request)
            let again = try await reusing.labelProbabilities(request)
            #expect(again.reusedTokens > 0)
            #expect(again.probabilities == alone.probabilities, "\(cut) extra tokens")
        }
        let reused = try await reusing.labelProbabilities(Self.judgeRequest)
        #expect(reused.reusedTokens > 1000, "reused \(reused.reusedTokens)")
        #expect(reused.probabilities == whole.probabilities)
    }

    /// An echoed prompt (`/v1/completions` with `echo`) that shares its start with earlier ones
    /// gets the log-probabilities of a fresh echo.
    @Test func echoesAfterSimilarOnesGiveTheNumbersOfAFreshEcho() async throws {
        let model = try LanguageModel(path: Self.models + "/SmolLM2-135M-Instruct.Q4_1.gguf", backend: CPUBackend(), contextLength: 2048)
        let history = try LocalModel(model: model, name: "smollm2")
        let head = String(Self.longText.prefix(1500)) + "\nThe verdict is"
        _ = try await history.promptLogprobs(history.tokenizer.encode(head + " yes", parseSpecial: false, addBOS: false), top: 0)
        for tail in [" no", " yes, clearly", " yes", " no no no no no no no no no no no no"] {
            let prompt = history.tokenizer.encode(head + tail, parseSpecial: false, addBOS: false)
            let after = try await history.promptLogprobs(prompt, top: 0).map { $0?.logprob }
            let fresh = try await Self.client().promptLogprobs(prompt, top: 0).map { $0?.logprob }
            #expect(after == fresh, "'\(tail)': \(zip(after, fresh).filter { $0 != $1 }.count) of \(fresh.count) differ")
        }
    }
}
