import Foundation
import JSONLines

/// One line of `themis judge` output (and the `judgement` the server returns): the verdict of
/// one input record, or why it failed, plus the input fields kept with `--keep-fields`.
///
/// Rating fields are written for single and reference modes, pair fields for pairwise (`null`
/// where no verdict came out); an error record carries `id`, `status` and `error` alone.
public struct JudgeRecord: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable { case ok, error }

    public var id: String
    public var status: Status
    public var error: String?
    public var parseStatus: VerdictParser.Status?
    public var mode: JudgeMode?
    public var scenario: String?
    /// `given` (the record named it) or `classified`.
    public var scenarioSource: String?
    public var scenarioProbabilities: [String: Double]?
    /// Prompt tokens of each pass.
    public var promptTokens: [Int]?
    public var verdictSource: VerdictSource?
    public var missingLabels: [String]?
    public var explanation: String?
    // single and reference modes
    public var rating: Int?
    public var expectedScore: Double?
    public var distribution: [String: Double]?
    // pairwise
    public var verdict: String?
    public var verdictsByOrder: [String: String]?
    public var consistent: Bool?
    public var distributionsByOrder: [[String: Double]]?
    /// Input fields copied as they were (`--keep-fields`); a kept field never replaces one above.
    public var kept: JSONObject = [:]

    /// An error record.
    public init(id: String, error: String, kept: JSONObject = [:]) {
        self.id = id
        self.status = .error
        self.error = error
        self.kept = kept
    }

    enum Key: String, CodingKey, CaseIterable {
        case id, status, error, mode, scenario, explanation, rating, distribution, verdict, consistent
        case parseStatus = "parse_status", scenarioSource = "scenario_source"
        case scenarioProbabilities = "scenario_probabilities", promptTokens = "prompt_tokens"
        case verdictSource = "verdict_source", missingLabels = "missing_labels", expectedScore = "expected_score"
        case verdictsByOrder = "verdicts_by_order", distributionsByOrder = "distributions_by_order"
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        id = try c.decode(String.self, forKey: .id)
        status = try c.decode(Status.self, forKey: .status)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        parseStatus = try c.decodeIfPresent(VerdictParser.Status.self, forKey: .parseStatus)
        mode = try c.decodeIfPresent(JudgeMode.self, forKey: .mode)
        scenario = try c.decodeIfPresent(String.self, forKey: .scenario)
        scenarioSource = try c.decodeIfPresent(String.self, forKey: .scenarioSource)
        scenarioProbabilities = try c.decodeIfPresent([String: Double].self, forKey: .scenarioProbabilities)
        promptTokens = try c.decodeIfPresent([Int].self, forKey: .promptTokens)
        verdictSource = try c.decodeIfPresent(VerdictSource.self, forKey: .verdictSource)
        missingLabels = try c.decodeIfPresent([String].self, forKey: .missingLabels)
        explanation = try c.decodeIfPresent(String.self, forKey: .explanation)
        rating = try c.decodeIfPresent(Int.self, forKey: .rating)
        expectedScore = try c.decodeIfPresent(Double.self, forKey: .expectedScore)
        distribution = try c.decodeIfPresent([String: Double].self, forKey: .distribution)
        verdict = try c.decodeIfPresent(String.self, forKey: .verdict)
        verdictsByOrder = try c.decodeIfPresent([String: String].self, forKey: .verdictsByOrder)
        consistent = try c.decodeIfPresent(Bool.self, forKey: .consistent)
        distributionsByOrder = try c.decodeIfPresent([[String: Double]].self, forKey: .distributionsByOrder)
        let known = Set(Key.allCases.map(\.rawValue))
        let all = try decoder.container(keyedBy: AnyKey.self)
        for key in all.allKeys where !known.contains(key.stringValue) {
            kept[key.stringValue] = try all.decode(JSONValue.self, forKey: key)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var all = encoder.container(keyedBy: AnyKey.self)
        let known = Set(Key.allCases.map(\.rawValue))
        for (key, value) in kept where !known.contains(key) { try all.encode(value, forKey: AnyKey(key)) }
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(id, forKey: .id)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(error, forKey: .error)
        guard let mode else { return }
        try c.encode(mode, forKey: .mode)
        try c.encodeIfPresent(parseStatus, forKey: .parseStatus)
        try c.encodeIfPresent(scenario, forKey: .scenario)
        try c.encodeIfPresent(scenarioSource, forKey: .scenarioSource)
        try c.encodeIfPresent(scenarioProbabilities, forKey: .scenarioProbabilities)
        try c.encodeIfPresent(promptTokens, forKey: .promptTokens)
        try c.encodeIfPresent(verdictSource, forKey: .verdictSource)
        try c.encodeIfPresent(missingLabels, forKey: .missingLabels)
        try c.encodeIfPresent(explanation, forKey: .explanation)
        if mode == .pairwise {
            try c.encode(verdict, forKey: .verdict)
            try c.encode(verdictsByOrder ?? [:], forKey: .verdictsByOrder)
            try c.encode(consistent, forKey: .consistent)
            try c.encodeIfPresent(distributionsByOrder, forKey: .distributionsByOrder)
        } else {
            try c.encode(rating, forKey: .rating)
            try c.encodeIfPresent(expectedScore.flatMap { $0.isFinite ? $0 : nil }, forKey: .expectedScore)
            try c.encodeIfPresent(distribution, forKey: .distribution)
        }
    }

    /// The record as one JSON line's bytes (sorted keys, no newline).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }
}
