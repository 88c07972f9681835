import Foundation
import JSONLines
import ThemisJudge

/// A human-labelled set of judge records: a bundled benchmark (`llmbar-natural`, `mtbench-human`)
/// or a user's file in the judge's input format with a label field.
public struct JudgeBenchmark: Sendable {
    public var name: String
    public var summary: String
    /// The file the labels are read from (and, for a user's file, the records).
    public var labelsPath: String
    /// How the file's fields map onto the judge's (`--fields` syntax), e.g. LLMBar's `output_1`.
    public var fields: String?
    /// Labels are `1` / `2` rather than `A` / `B`.
    public var numericPairLabels: Bool
    /// Record transformation applied after reading (MT-Bench: the scenario from the question's category).
    var prepare: (@Sendable ([InputRecord]) throws -> [InputRecord])?

    /// The bundled benchmarks, copied from `shared/data` with their licences (`Resources/JudgeBenchmarks`).
    public static var builtIn: [JudgeBenchmark] {
        let llmbarFields = "instruction=input,response_a=output_1,response_b=output_2"
        return [
            JudgeBenchmark(
                name: "llmbar-natural", summary: "LLMBar Natural: 100 pairs with objective instruction-following labels (MIT)",
                labelsPath: resource("llmbar-natural.json"), fields: llmbarFields, numericPairLabels: true),
            JudgeBenchmark(
                name: "mtbench-human",
                summary: "MT-Bench expert majority votes, 200 pairs without ties (LLMBar's processing; CC-BY-4.0 / MIT)",
                labelsPath: resource("mtbench-human-llmbar.json"), fields: llmbarFields, numericPairLabels: true,
                prepare: { try addMTBenchScenarios($0) }),
        ]
    }

    /// A bundled benchmark by name, or a file read as one (labels `A`/`B`/`tie` or ratings;
    /// numeric pair labels when `numericPairLabels`).
    public static func resolve(_ nameOrPath: String, fields: String?, numericPairLabels: Bool) throws -> JudgeBenchmark {
        if let b = builtIn.first(where: { $0.name == nameOrPath }) { return b }
        guard FileManager.default.fileExists(atPath: nameOrPath) else {
            throw MetaEvalError.badOption(
                "'\(nameOrPath)' is neither a bundled benchmark (\(builtIn.map(\.name).joined(separator: ", "))) nor a file")
        }
        return JudgeBenchmark(name: URL(fileURLWithPath: nameOrPath).deletingPathExtension().lastPathComponent,
                              summary: nameOrPath, labelsPath: nameOrPath, fields: fields, numericPairLabels: numericPairLabels)
    }

    /// The records to judge.
    public func records() throws -> [InputRecord] {
        let records = try RecordReader.read(labelsPath)
        return try prepare?(records) ?? records
    }

    static func resource(_ name: String) -> String {
        Bundle.module.url(forResource: "JudgeBenchmarks", withExtension: nil)!.appendingPathComponent(name).path
    }

    /// MT-Bench categories in our scenarios. Reasoning puzzles have one right answer (closed QA);
    /// STEM and humanities questions ask for explanations (open QA).
    public static let mtBenchScenarios = [
        "writing": "creative_writing", "roleplay": "role_playing", "reasoning": "close_qa", "math": "math_qa",
        "coding": "programming", "extraction": "reading_comprehension", "stem": "open_qa", "humanities": "open_qa",
    ]

    /// Adds `category` and `scenario` to each MT-Bench pair by joining its input with the first
    /// turn of the MT-Bench questions.
    static func addMTBenchScenarios(_ records: [InputRecord]) throws -> [InputRecord] {
        var categoryOfTurn: [String: String] = [:]
        for q in try RecordReader.read(resource("mtbench-questions.jsonl")) {
            if let first = q.fields["turns"]?.array?.first?.string, let category = q.fields["category"]?.string {
                categoryOfTurn[first] = category
            }
        }
        return records.map { record in
            var r = record
            if let input = r.fields["input"]?.string, let category = categoryOfTurn[input] {
                r.fields["category"] = .string(category)
                r.fields["scenario"] = mtBenchScenarios[category].map(JSONValue.string)
            }
            return r
        }
    }
}
