import Foundation
import Testing
import ThemisJudge
import ThemisModel

/// Judge prompts compared with golden files (`Golden/*.txt`). To accept a deliberate change,
/// run with THEMIS_UPDATE_GOLDEN=1 and review the diff.
@Suite("judge prompts")
struct PromptTests {
    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    static let input = JudgeInput(
        instruction: "What is the boiling point of water at sea level, in degrees Celsius?",
        response: "Water boils at 100 degrees Celsius at sea level.",
        responseA: "It boils at 100 °C.",
        responseB: "About 90 degrees.",
        reference: "100 °C (212 °F) at standard atmospheric pressure.")

    func expectGolden(_ name: String, _ text: String) throws {
        let url = Self.goldenDirectory.appendingPathComponent(name + ".txt")
        if ProcessInfo.processInfo.environment["THEMIS_UPDATE_GOLDEN"] != nil {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let golden = try String(contentsOf: url, encoding: .utf8)
        #expect(text == golden, "prompt \(name) differs from Golden/\(name).txt")
    }

    func full(_ p: JudgePrompt) -> String { p.text + "\n<<answer starts>>\n" + p.verdictPrefix + "\n<<labels>> " + p.labels.joined(separator: " ") }

    @Test func singleAnswer() throws {
        let s = try #require(try ScenarioCatalogue.bundled().scenario(named: "close_qa"))
        var input = Self.input
        input.reference = nil
        try expectGolden("single", full(PromptBuilder.build(mode: .single, scenario: s, input: input)))
    }

    @Test func referenceGuided() throws {
        let s = try #require(try ScenarioCatalogue.bundled().scenario(named: "Close QA"))
        try expectGolden("reference", full(PromptBuilder.build(mode: .reference, scenario: s, input: Self.input)))
    }

    @Test func pairwiseWithEarlierTurns() throws {
        let s = try #require(try ScenarioCatalogue.bundled().scenario(named: "close_qa"))
        var input = Self.input
        input.conversation = [.user("Hi, I have a chemistry question."), .assistant("Sure, ask away.")]
        try expectGolden("pairwise", full(PromptBuilder.build(mode: .pairwise, scenario: s, input: input)))
    }

    @Test func customCriteriaAndTenPointScale() throws {
        let catalogue = try ScenarioCatalogue.load(Self.goldenDirectory.appendingPathComponent("custom-criteria.json").path)
        let s = try #require(catalogue.scenario(named: "haiku"))
        let input = JudgeInput(instruction: "Write a haiku about rain.", response: "Rain taps the window\nsoft drums on the sleeping street\npuddles hold the sky")
        let scale = try RatingScale(lower: 1, upper: 10)
        try expectGolden("custom-scale10", full(PromptBuilder.build(mode: .single, scenario: s, scale: scale, input: input)))
    }

    @Test func referenceTiersNameTheReference() throws {
        let s = try #require(try ScenarioCatalogue.bundled().scenarios.first)
        let single = PromptBuilder.build(mode: .single, scenario: s, input: Self.input)
        let reference = PromptBuilder.build(mode: .reference, scenario: s, input: Self.input)
        #expect(!single.text.contains("that of the reference answer"))
        #expect(!single.text.contains("[Reference Answer]"))
        #expect(reference.text.contains("Score 4: The response is acceptable: it meets the criteria overall with only a few minor issues. Its quality equals that of the reference answer."))
        #expect(reference.text.contains("better than the reference answer"))
        // the shared head holds no record data, so it can be reused across records
        #expect(!single.head.contains(Self.input.instruction))
        #expect(single.head == PromptBuilder.build(mode: .single, scenario: s, input: JudgeInput(instruction: "x", response: "y")).head)
    }

    @Test func bundledCatalogueHasTheTenScenarios() throws {
        let c = try ScenarioCatalogue.bundled()
        #expect(c.scenarios.map(\.id) == ["close_qa", "open_qa", "math_qa", "creative_writing", "professional_writing",
                                          "rewriting", "translation", "reading_comprehension", "role_playing", "programming"])
        for s in c.scenarios { #expect((6...10).contains(s.criteria.count), "\(s.id): \(s.criteria.count) criteria") }
    }

    @Test func badCatalogueIsAClearError() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-criteria-\(getpid()).json")
        try Data("{\"version\": 1, \"scenarios\": []}".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: JudgeError.self) { _ = try ScenarioCatalogue.load(url.path) }
    }
}
