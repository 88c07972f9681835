import Foundation
import ThemisClient

/// One input record as read: its 1-based line (or array position) and its fields, or why it
/// could not be read.
public struct InputRecord {
    public var line: Int
    public var fields: [String: Any]
    public var readError: String?
}

/// Reads judge input: JSON Lines, or one JSON array of objects (LLMBar's files).
public enum RecordReader {
    public static func read(_ path: String) throws -> [InputRecord] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JudgeError.badRecord("cannot read input file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        if text.drop(while: { $0.isWhitespace }).first == "[" {
            guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
                throw JudgeError.badRecord("\(path) starts with '[' but is not a JSON array")
            }
            return array.enumerated().map { i, item in
                if let object = item as? [String: Any] { return InputRecord(line: i + 1, fields: object) }
                return InputRecord(line: i + 1, fields: [:], readError: "item \(i + 1) is not a JSON object")
            }
        }
        var records: [InputRecord] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                records.append(InputRecord(line: i + 1, fields: [:], readError: "line \(i + 1) is not a JSON object"))
                continue
            }
            records.append(InputRecord(line: i + 1, fields: object))
        }
        return records
    }
}

/// Which input field holds each native field (`instruction=input,response_a=output_1`).
public struct FieldMap: Sendable {
    public static let native = ["id", "instruction", "conversation", "response", "response_a", "response_b", "reference", "scenario"]
    private var sources: [String: String] = [:]

    public init(_ spec: String?) throws {
        guard let spec, !spec.isEmpty else { return }
        for pair in spec.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[1].isEmpty else { throw JudgeError.badRecord("--fields: '\(pair)' is not native=source") }
            guard Self.native.contains(parts[0]) else {
                throw JudgeError.badRecord("--fields: '\(parts[0])' is not a native field (\(Self.native.joined(separator: ", ")))")
            }
            sources[parts[0]] = parts[1]
        }
    }

    public func source(of field: String) -> String { sources[field] ?? field }

    func value(_ field: String, in record: [String: Any]) -> Any? { record[source(of: field)] }

    func string(_ field: String, in record: [String: Any]) throws -> String? {
        guard let v = value(field, in: record), !(v is NSNull) else { return nil }
        if let s = v as? String { return s }
        if let n = v as? NSNumber, field == "id" { return n.stringValue }
        throw JudgeError.badRecord("field '\(source(of: field))' is not a string")
    }
}

/// Runs the judge over records and builds the output records (JSON objects other tools read).
public struct BatchJudge: Sendable {
    public let judge: Judge
    public let fields: FieldMap
    public let mode: JudgeMode?
    public let keepFields: [String]
    /// Words added to a failed record's error (the CLI names its flags here).
    public var hint: @Sendable (any Error) -> String? = { _ in nil }

    public init(judge: Judge, fields: FieldMap, mode: JudgeMode?, keepFields: [String]) {
        self.judge = judge
        self.fields = fields
        self.mode = mode
        self.keepFields = keepFields
    }

    func describe(_ error: any Error) -> String {
        hint(error).map { "\(error) (\($0))" } ?? "\(error)"
    }

    /// The id a record is known by: its id field, else `line-N`.
    public func id(of record: InputRecord) -> String {
        (try? fields.string("id", in: record.fields)).flatMap { $0 } ?? "line-\(record.line)"
    }

    /// The output records of several input records, judged as one batch (their explanations are
    /// decoded together); failures become error records.
    public func process(_ records: [InputRecord]) async -> [[String: Any]] {
        var outs: [[String: Any]] = records.map { record in
            var out: [String: Any] = ["id": id(of: record)]
            for name in keepFields { if let v = record.fields[name] { out[name] = v } }
            return out
        }
        var parsed: [(index: Int, input: JudgeInput, mode: JudgeMode, scenario: Scenario?)] = []
        for (i, record) in records.enumerated() {
            do {
                if let error = record.readError { throw JudgeError.badRecord(error) }
                let (input, recordMode, scenario) = try parse(record)
                parsed.append((i, input, recordMode, scenario))
            } catch {
                outs[i]["status"] = "error"
                outs[i]["error"] = "line \(record.line): \(describe(error))"
            }
        }
        let results = await judge.judge(batch: parsed.map { ($0.input, $0.mode, $0.scenario) })
        for (p, result) in zip(parsed, results) {
            let line = records[p.index].line
            switch result {
            case .failure(let error):
                outs[p.index]["status"] = "error"
                outs[p.index]["error"] = "line \(line): \(describe(error))"
            case .success(let j):
                outs[p.index].merge(j.record(scenarioGiven: p.scenario != nil)) { $1 }
                if j.status != .ok { outs[p.index]["error"] = "line \(line): verdict \(j.status.rawValue)" }
            }
        }
        return outs
    }

    /// The judge input, mode and given scenario of a record.
    func parse(_ record: InputRecord) throws -> (JudgeInput, JudgeMode, Scenario?) {
        let r = record.fields
        guard let instruction = try fields.string("instruction", in: r), !instruction.isEmpty else {
            throw JudgeError.badRecord("no '\(fields.source(of: "instruction"))' field")
        }
        var conversation: [Message] = []
        if let turns = fields.value("conversation", in: r), !(turns is NSNull) {
            guard let list = turns as? [[String: Any]] else {
                throw JudgeError.badRecord("'\(fields.source(of: "conversation"))' must be a list of {role, content}")
            }
            for t in list {
                guard let role = (t["role"] as? String).flatMap(Role.init(rawValue:)), let content = t["content"] as? String else {
                    throw JudgeError.badRecord("a conversation turn needs a role (system, user, assistant) and a content")
                }
                conversation.append(Message(role: role, content: content))
            }
        }
        let input = JudgeInput(
            instruction: instruction, conversation: conversation, response: try fields.string("response", in: r),
            responseA: try fields.string("response_a", in: r), responseB: try fields.string("response_b", in: r),
            reference: try fields.string("reference", in: r))
        let recordMode: JudgeMode
        if let mode {
            recordMode = mode
        } else if input.responseA != nil || input.responseB != nil {
            recordMode = .pairwise
        } else {
            recordMode = input.reference != nil ? .reference : .single
        }
        switch recordMode {
        case .pairwise:
            guard input.responseA != nil, input.responseB != nil else {
                throw JudgeError.badRecord("pairwise needs '\(fields.source(of: "response_a"))' and '\(fields.source(of: "response_b"))'")
            }
        case .reference:
            guard input.reference != nil else { throw JudgeError.badRecord("reference mode needs '\(fields.source(of: "reference"))'") }
            fallthrough
        case .single:
            guard input.response != nil else { throw JudgeError.badRecord("no '\(fields.source(of: "response"))' field") }
        }
        var scenario: Scenario?
        if let name = try fields.string("scenario", in: r), !name.isEmpty {
            guard let s = judge.catalogue.scenario(named: name) else {
                throw JudgeError.badRecord("unknown scenario '\(name)' (known: \(judge.catalogue.scenarios.map(\.id).joined(separator: ", ")))")
            }
            scenario = s
        }
        return (input, recordMode, scenario)
    }
}

/// Counts for the end-of-run summary.
public struct JudgeSummary {
    public var count = 0, failed = 0
    public var ratings: [Int: Int] = [:]
    public var parseStatus: [String: Int] = [:]
    public var pairs = 0, consistentPairs = 0
    public var labelled = 0, correct = 0
    public var seconds = 0.0

    public init() {}

    /// Adds an output record; `label` is the human label of the record if there is one.
    public mutating func add(_ out: [String: Any], label: Any?) {
        count += 1
        if out["status"] as? String != "ok" { failed += 1 }
        if let s = out["parse_status"] as? String { parseStatus[s, default: 0] += 1 }
        if let r = out["rating"] as? Int { ratings[r, default: 0] += 1 }
        if let c = out["consistent"] as? Bool { pairs += 1; if c { consistentPairs += 1 } }
        guard let label, out["status"] as? String == "ok" else { return }
        let text = "\(label)".lowercased()
        if let verdict = out["verdict"] as? String {
            let expected = ["1": "a", "a": "a", "2": "b", "b": "b", "0": "tie", "tie": "tie", "c": "tie"][text]
            if let expected { labelled += 1; if expected == verdict.lowercased() { correct += 1 } }
        } else if let rating = out["rating"] as? Int, let human = Int(text) {
            labelled += 1
            if human == rating { correct += 1 }
        }
    }

    public var lines: [String] {
        var l = ["judged \(count) records in \(String(format: "%.1f", seconds)) s (\(String(format: "%.2f", seconds > 0 ? Double(count) / seconds : 0)) items/s); \(failed) failed"]
        if !ratings.isEmpty {
            l.append("ratings: " + ratings.keys.sorted().map { "\($0): \(ratings[$0]!)" }.joined(separator: ", "))
        }
        if !parseStatus.isEmpty {
            l.append("verdict status: " + parseStatus.keys.sorted().map { "\($0): \(parseStatus[$0]!)" }.joined(separator: ", "))
        }
        if pairs > 0 {
            l.append("pairwise consistency: \(consistentPairs)/\(pairs) (\(String(format: "%.1f", 100 * Double(consistentPairs) / Double(pairs)))%)")
        }
        if labelled > 0 {
            l.append("agreement with labels: \(correct)/\(labelled) (\(String(format: "%.1f", 100 * Double(correct) / Double(labelled)))%)")
        }
        return l
    }
}

extension Judgement {
    /// The output fields of a judgement, as `themis judge` writes them and the server returns them.
    public func record(scenarioGiven: Bool) -> [String: Any] {
        var out: [String: Any] = [:]
        out["status"] = status == .ok ? "ok" : "error"
        if status != .ok { out["error"] = "verdict \(status.rawValue)" }
        out["parse_status"] = status.rawValue
        out["mode"] = mode.rawValue
        out["scenario"] = scenario.id
        out["scenario_source"] = scenarioGiven ? "given" : "classified"
        if let p = scenarioProbabilities { out["scenario_probabilities"] = p }
        out["prompt_tokens"] = passes.map(\.promptTokens)
        out["verdict_source"] = passes[0].source.rawValue
        let missing = Set(passes.flatMap(\.missingLabels))
        if !missing.isEmpty { out["missing_labels"] = missing.sorted() }
        out["explanation"] = passes[0].explanation
        if mode == .pairwise {
            out["verdict"] = verdict ?? NSNull()
            out["verdicts_by_order"] = verdictsByOrder ?? [:]
            out["consistent"] = consistent ?? NSNull()
            if !passes[0].distribution.isEmpty { out["distributions_by_order"] = passes.map(\.distribution) }
        } else {
            out["rating"] = rating ?? NSNull()
            if let e = expectedScore { out["expected_score"] = e }
            if !passes[0].distribution.isEmpty { out["distribution"] = passes[0].distribution }
        }
        return out
    }
}
