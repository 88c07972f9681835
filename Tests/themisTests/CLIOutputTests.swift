import Foundation
import Testing

@Suite("command line: output", .serialized)
struct CLIOutputTests {
    @Test func tokenizePrintsLlamaCppIDs() throws {
        // the first tokenize case of the SmolLM2 reference recording
        let o = try CLI.run(["tokenize", "--model", CLI.smollm, "Hello world! 123"])
        #expect(o.status == 0, "stderr: \(o.stderr)")
        let ids = try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [Int]
        let reference = try referenceIDs(for: "Hello world! 123")
        #expect(ids == reference)
    }

    @Test func tokenizeSpecialParsesControlTokens() throws {
        let plain = try CLI.run(["tokenize", "--model", CLI.smollm, "<|im_start|>"])
        let special = try CLI.run(["tokenize", "--model", CLI.smollm, "--special", "<|im_start|>"])
        #expect(special.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[1]")
        #expect(plain.stdout != special.stdout)
    }

    @Test func generateJSON() throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--device", "cpu", "--temperature", "0",
                             "--chat", "What is the capital of France? Answer in one sentence.", "--json"])
        #expect(o.status == 0, "stderr: \(o.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
        #expect(object["text"] as? String == "The capital of France is Paris.")
        #expect((object["token_ids"] as? [Int])?.prefix(3) == [504, 3575, 282])
        #expect((object["prompt_tokens"] as? Int) == 42)
        #expect((object["tokens_per_second"] as? Double).map { $0 > 0 } == true)
    }

    @Test func generateStreamsText() throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--device", "cpu", "--temperature", "0",
                             "--max-tokens", "8", "--prompt", "The three primary colors are"])
        #expect(o.status == 0, "stderr: \(o.stderr)")
        #expect(!o.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    @Test func devicesListsTheCPU() throws {
        let o = try CLI.run(["devices"])
        #expect(o.status == 0)
        #expect(o.stdout.contains("cpu\tcpu"))
        #expect(o.stdout.contains("auto -> cpu"))
    }

    @Test func benchModelJSON() throws {
        let o = try CLI.run(["bench", "model", "--model", CLI.smollm, "--device", "cpu", "--pp", "32", "--tg", "8",
                             "--reps", "1", "--json"])
        #expect(o.status == 0, "stderr: \(o.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
        #expect((object["pp32"] as? Double).map { $0 > 0 } == true)
        #expect((object["tg8"] as? Double).map { $0 > 0 } == true)
        #expect((object["peak_rss_bytes"] as? Int).map { $0 > 0 } == true)
    }

    func referenceIDs(for text: String) throws -> [Int] {
        let url = CLI.root.deletingLastPathComponent()
            .appendingPathComponent("shared/reference/smollm2-135m-instruct-q4_1.llamacpp.json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try #require(json["cases"] as? [[String: Any]])
        let c = try #require(cases.first { ($0["text"] as? String) == text })
        return try #require(c["ids"] as? [Int])
    }
}
