import ThemisClient

/// How a record is judged.
public enum JudgeMode: String, Sendable, CaseIterable, Codable {
    /// One response rated on the scale.
    case single
    /// One response rated against a reference answer (the reference is tier 4).
    case reference
    /// Two responses compared: A, B or a tie.
    case pairwise
}

/// The integer rating scale (1-5 by default, as in the paper).
public struct RatingScale: Sendable, Equatable, CustomStringConvertible {
    public let lower: Int
    public let upper: Int

    public init(lower: Int = 1, upper: Int = 5) throws {
        guard upper > lower, upper - lower <= 100 else {
            throw JudgeError.badRecord("a rating scale needs at least two values and at most 101, got \(lower)-\(upper)")
        }
        self.lower = lower
        self.upper = upper
    }

    public static let standard = try! RatingScale()

    public var values: ClosedRange<Int> { lower...upper }
    public var description: String { "\(lower)-\(upper)" }

    /// The values that fall in tier `tier` (0..<5) when the scale is cut into five bands.
    func band(_ tier: Int) -> ClosedRange<Int>? {
        let members = values.filter { ($0 - lower) * 5 / (upper - lower + 1) == tier }
        guard let first = members.first, let last = members.last else { return nil }
        return first...last
    }
}

/// What a record gives the judge.
public struct JudgeInput: Sendable, Equatable {
    public var instruction: String
    /// Earlier turns of the conversation, oldest first.
    public var conversation: [Message]
    public var response: String?
    public var responseA: String?
    public var responseB: String?
    public var reference: String?

    public init(instruction: String, conversation: [Message] = [], response: String? = nil,
                responseA: String? = nil, responseB: String? = nil, reference: String? = nil) {
        self.instruction = instruction
        self.conversation = conversation
        self.response = response
        self.responseA = responseA
        self.responseB = responseB
        self.reference = reference
    }
}

/// A judge prompt in the paper's five blocks. `head` (task with the scenario's ranked criteria,
/// and the grading tiers) is the same for every record of a scenario, mode and scale, so its
/// keys and values can be computed once; `body` (data, evaluation steps, output format) is the
/// record's own. The answer starts with `verdictPrefix`, and the verdict is one of `labels`.
public struct JudgePrompt: Sendable, Equatable {
    public var head: String
    public var body: String
    public var verdictPrefix: String
    /// Allowed verdicts as written between the double brackets (`1`...`5`, or `A`, `B`, `C`).
    public var labels: [String]

    /// The whole user message.
    public var text: String { head + body }
}

/// Builds judge prompts (our wording of the structure of the paper's Table 1).
public enum PromptBuilder {
    public static let ratingPrefix = "I believe the overall rating of this response is [["
    public static let pairwisePrefix = "After comparing the two responses, my verdict is [["

    public static func build(mode: JudgeMode, scenario: Scenario, scale: RatingScale = .standard,
                             input: JudgeInput) -> JudgePrompt {
        JudgePrompt(
            head: head(mode: mode, scenario: scenario, scale: scale),
            body: data(mode: mode, input: input) + "\n\n" + steps(mode: mode, scale: scale) + "\n\n" + output(mode: mode, scale: scale),
            verdictPrefix: mode == .pairwise ? pairwisePrefix : ratingPrefix,
            labels: mode == .pairwise ? ["A", "B", "C"] : scale.values.map(String.init))
    }

    /// Blocks 1 and 2, ending with a blank line.
    public static func head(mode: JudgeMode, scenario: Scenario, scale: RatingScale) -> String {
        var task: String
        if mode == .pairwise {
            task = "Please act as an impartial judge and compare two AI assistant responses, A and B, to the same user instruction, and decide which one is better."
        } else {
            task = "Please act as an impartial judge and evaluate the quality of an AI assistant's response to a user instruction."
        }
        task += " The instruction belongs to the scenario [\(scenario.name)]: \(scenario.description)"
        task += "\nA good response in this scenario meets the following criteria, listed in descending order of importance:"
        task += "\n[Criteria Begin]\n"
        task += scenario.criteria.enumerated().map { "\($0.offset + 1). \($0.element.name): \($0.element.definition)" }
            .joined(separator: "\n")
        task += "\n[Criteria End]"
        return task + "\n\n" + tiers(mode: mode, scale: scale) + "\n\n"
    }

    static func tiers(mode: JudgeMode, scale: RatingScale) -> String {
        if mode == .pairwise {
            return """
                [Verdict Options Begin]
                [[A]]: response A meets the criteria better than response B.
                [[B]]: response B meets the criteria better than response A.
                [[C]]: a tie: both are about equally good or equally poor.
                Judge the content, not the order of the responses or their length.
                [Verdict Options End]
                """
        }
        var texts = [
            "The response has serious flaws, deviates completely from the instruction or is unusable.",
            "Parts of the response are usable, but overall it falls short of the instruction's needs.",
            "The response has both strengths and weaknesses; the strengths outweigh the weaknesses.",
            "The response is acceptable: it meets the criteria overall with only a few minor issues.",
            "The response is excellent: it strictly meets every criterion.",
        ]
        if mode == .reference {
            texts[3] += " Its quality equals that of the reference answer."
            texts[4] += " It is better than the reference answer."
        }
        var lines = ["[Grading Tiers Begin]", "Give an integer score from \(scale.lower) to \(scale.upper):"]
        for tier in 0..<5 {
            guard let band = scale.band(tier) else { continue }
            let label = band.count == 1 ? "Score \(band.lowerBound)" : "Scores \(band.lowerBound)-\(band.upperBound)"
            lines.append("\(label): \(texts[tier])")
        }
        lines.append("[Grading Tiers End]")
        return lines.joined(separator: "\n")
    }

    /// Block 3: the record, between `***` separators.
    static func data(mode: JudgeMode, input: JudgeInput) -> String {
        var parts: [String] = []
        if !input.conversation.isEmpty {
            let turns = input.conversation.map { "\($0.role == .user ? "User" : $0.role == .assistant ? "Assistant" : "System"): \($0.content)" }
            parts.append("[Earlier Turns]:\n" + turns.joined(separator: "\n"))
        }
        parts.append("[User Instruction]: \(input.instruction)")
        switch mode {
        case .pairwise:
            parts.append("[Response A]: \(input.responseA ?? "")")
            parts.append("[Response B]: \(input.responseB ?? "")")
        case .single, .reference:
            if mode == .reference, let reference = input.reference { parts.append("[Reference Answer]: \(reference)") }
            parts.append("[Response]: \(input.response ?? "")")
        }
        return "[Data Begin]\n***\n" + parts.joined(separator: "\n***\n") + "\n***\n[Data End]"
    }

    /// Block 4: the evaluation steps.
    static func steps(mode: JudgeMode, scale: RatingScale) -> String {
        let subject = mode == .pairwise ? "both responses" : "the response"
        let last = mode == .pairwise
            ? "4. Score each selected criterion for each response from \(scale.lower) to \(scale.upper), weigh them, and decide which response is better overall, or a tie."
            : "4. Score each selected criterion from \(scale.lower) to \(scale.upper) and give an overall score by weighing these scores."
        return """
            [Evaluation Steps Begin]
            1. Recall the criteria above and read \(subject) carefully.
            2. Choose the criteria that matter most for this instruction, both those met well and those met poorly.
            3. Add any other criteria this instruction needs that the list does not cover.
            \(last)
            [Evaluation Steps End]
            """
    }

    /// Block 5: the output format, verdict first.
    static func output(mode: JudgeMode, scale: RatingScale) -> String {
        if mode == .pairwise {
            return """
                [Output Format Begin]
                Keep the double square brackets. Begin with the sentence "\(pairwisePrefix)X]]", where X is A, B or C (a tie). Then list the strengths and the shortcomings of each response, one point per line, each with its score in double square brackets, like [[\(scale.upper)]].
                [Output Format End]
                """
        }
        return """
            [Output Format Begin]
            Keep the double square brackets. Begin with the sentence "\(ratingPrefix)N]]", where N is an integer from \(scale.lower) to \(scale.upper). Then write "Strengths:" and "Shortcomings:", each followed by numbered points naming a criterion, explaining it, and ending with that criterion's score in double square brackets, like [[\(scale.upper)]].
            [Output Format End]
            """
    }

    /// The scenario-classification prompt: the scenarios as lettered options.
    public static func classification(catalogue: ScenarioCatalogue, instruction: String) -> (head: String, body: String, labels: [String]) {
        let letters = catalogue.scenarios.indices.map { String(UnicodeScalar(UInt8(65 + $0))) }
        var head = "Classify the user instruction below into exactly one of these scenarios:\n"
        for (letter, s) in zip(letters, catalogue.scenarios) { head += "\(letter). \(s.name): \(s.description)\n" }
        head += "\n"
        let body = "[User Instruction]: \(instruction)\n\nAnswer with the letter of the scenario only."
        return (head, body, letters)
    }
}
