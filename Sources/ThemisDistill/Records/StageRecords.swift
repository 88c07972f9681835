import Foundation
import ThemisJudge

// The records of the stage files. Field names on disk are snake_case, as the YAML keys are; a
// hand-edited line that does not decode is an error for that line (a failed item of the next
// stage, with its line number), never a crash.

/// An instruction written by the synthesize stage (`synthesize.jsonl`, `instructions.jsonl`).
public struct InstructionRecord: Codable, Sendable, Equatable {
    public var id: String
    public var scenario: String
    /// `reference` (reference-based questioning) or `quiz` (role-playing quiz).
    public var method: String
    public var instruction: String
    public var generator: String
    public var passageID: String?
    /// Why the instruction was dropped (invalid); only in `synthesize.jsonl`.
    public var dropped: String?

    enum CodingKeys: String, CodingKey {
        case id, scenario, method, instruction, generator, dropped
        case passageID = "passage_id"
    }
}

/// One generator's answer to an instruction (`respond.jsonl`).
public struct ResponseRecord: Codable, Sendable, Equatable {
    public var id: String
    public var instructionID: String
    public var scenario: String
    public var instruction: String
    public var generator: String
    public var response: String
    public var finishReason: String?
    public var model: String?

    enum CodingKeys: String, CodingKey {
        case id, scenario, instruction, generator, response, model
        case instructionID = "instruction_id", finishReason = "finish_reason"
    }
}

/// What the teacher grades: one response (single, reference) or one ordered pair (pairwise).
public struct GradeTask: Codable, Sendable, Equatable {
    public var instructionID: String
    public var scenario: String
    public var instruction: String
    public var mode: JudgeMode
    /// Pairwise: `ab` or `ba`.
    public var order: String?
    public var responseID: String?
    public var response: String?
    public var responder: String?
    public var reference: String?
    public var responseA: String?
    public var responseB: String?
    public var responderA: String?
    public var responderB: String?

    enum CodingKeys: String, CodingKey {
        case scenario, instruction, mode, order, response, responder, reference
        case instructionID = "instruction_id", responseID = "response_id", responseA = "response_a"
        case responseB = "response_b", responderA = "responder_a", responderB = "responder_b"
    }
}

/// A graded sample: the task, the judge prompt and the teacher's judgement (`grade.jsonl`), later
/// with its IFD (`select.jsonl`) and how it was augmented (`augment.jsonl`).
public struct GradedRecord: Codable, Sendable, Equatable {
    public var id: String
    public var task: GradeTask
    public var prompt: String
    /// The training target: verdict sentence and explanation.
    public var judgement: String
    public var teacher: String
    public var verdictSource: VerdictSource
    public var verdictProbabilities: [String: Double]
    /// Pairwise: `A`, `B` or `C`.
    public var verdict: String?
    /// Single and reference: the rating.
    public var score: Int?
    public var criteriaScores: [String: Int]?
    public var ifd: Double?
    /// `original`, `scale 1-10`, `criteria 2/4`, `paraphrased criteria`.
    public var augmentation: String?

    enum CodingKeys: String, CodingKey {
        case id, prompt, judgement, teacher, verdict, score, ifd, augmentation
        case verdictSource = "verdict_source", verdictProbabilities = "verdict_probabilities", criteriaScores = "criteria_scores"
    }

    public init(id: String, task: GradeTask, prompt: String, judgement: String, teacher: String, verdictSource: VerdictSource,
                verdictProbabilities: [String: Double]) {
        self.id = id
        self.task = task
        self.prompt = prompt
        self.judgement = judgement
        self.teacher = teacher
        self.verdictSource = verdictSource
        self.verdictProbabilities = verdictProbabilities
    }

    // the task's fields sit beside the record's own in one JSON object
    public init(from decoder: any Decoder) throws {
        task = try GradeTask(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        prompt = try c.decode(String.self, forKey: .prompt)
        judgement = try c.decode(String.self, forKey: .judgement)
        teacher = try c.decode(String.self, forKey: .teacher)
        verdictSource = try c.decode(VerdictSource.self, forKey: .verdictSource)
        verdictProbabilities = try c.decode([String: Double].self, forKey: .verdictProbabilities)
        verdict = try c.decodeIfPresent(String.self, forKey: .verdict)
        score = try c.decodeIfPresent(Int.self, forKey: .score)
        criteriaScores = try c.decodeIfPresent([String: Int].self, forKey: .criteriaScores)
        ifd = try c.decodeIfPresent(Double.self, forKey: .ifd)
        augmentation = try c.decodeIfPresent(String.self, forKey: .augmentation)
    }

    public func encode(to encoder: any Encoder) throws {
        try task.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(prompt, forKey: .prompt)
        try c.encode(judgement, forKey: .judgement)
        try c.encode(teacher, forKey: .teacher)
        try c.encode(verdictSource, forKey: .verdictSource)
        try c.encode(verdictProbabilities, forKey: .verdictProbabilities)
        try c.encodeIfPresent(verdict, forKey: .verdict)
        try c.encodeIfPresent(score, forKey: .score)
        try c.encodeIfPresent(criteriaScores, forKey: .criteriaScores)
        try c.encodeIfPresent(ifd.flatMap { $0.isFinite ? $0 : nil }, forKey: .ifd)
        try c.encodeIfPresent(augmentation, forKey: .augmentation)
    }
}

/// The IFD of one graded sample (`ifd.jsonl`; its id is `ifd-` + the sample's).
public struct IFDRecord: Codable, Sendable, Equatable {
    public var id: String
    public var ifd: Double
    public var conditioned: Double
    public var unconditioned: Double
    public var answerTokens: Int

    enum CodingKeys: String, CodingKey {
        case id, ifd, conditioned, unconditioned
        case answerTokens = "answer_tokens"
    }
}

/// A passage for reference-based questioning, as read from a JSON Lines passages file.
struct PassageLine: Decodable, Sendable {
    var id: String?
    var text: String
}
