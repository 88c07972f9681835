import Foundation
import JSONLines
import ThemisClient

/// One input record as read: its 1-based line (or array position) and its fields, or why it
/// could not be read.
public struct InputRecord: Sendable {
    public var line: Int
    public var fields: JSONObject
    public var readError: String?

    public init(line: Int, fields: JSONObject, readError: String? = nil) {
        self.line = line
        self.fields = fields
        self.readError = readError
    }
}

/// Reads judge input: JSON Lines (LF or CRLF, with or without a byte-order mark), or one JSON
/// array of objects (LLMBar's files). An unreadable line becomes a record with its `readError`.
public enum RecordReader {
    public static func read(_ path: String) throws -> [InputRecord] {
        try JSONLReader.read(path, as: JSONObject.self).map { line in
            switch line.value {
            case .success(let fields): InputRecord(line: line.line, fields: fields)
            case .failure(.badLine(_, let reason)):
                InputRecord(line: line.line, fields: [:], readError: "line \(line.line): not a JSON object (\(reason))")
            case .failure(let error): InputRecord(line: line.line, fields: [:], readError: "\(error)")
            }
        }
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

    func value(_ field: String, in record: JSONObject) -> JSONValue? { record[source(of: field)] }

    func string(_ field: String, in record: JSONObject) throws -> String? {
        guard let v = value(field, in: record), !v.isNull else { return nil }
        if let s = v.string { return s }
        if field == "id", let text = v.text { return text }
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
    public func process(_ records: [InputRecord]) async -> [JudgeRecord] {
        func kept(_ record: InputRecord) -> JSONObject {
            record.fields.filter { keepFields.contains($0.key) }
        }
        var outs: [JudgeRecord?] = Array(repeating: nil, count: records.count)
        var parsed: [(index: Int, input: JudgeInput, mode: JudgeMode, scenario: Scenario?)] = []
        for (i, record) in records.enumerated() {
            if let error = record.readError {
                outs[i] = JudgeRecord(id: id(of: record), error: error)
                continue
            }
            do {
                let (input, recordMode, scenario) = try parse(record)
                parsed.append((i, input, recordMode, scenario))
            } catch {
                outs[i] = JudgeRecord(id: id(of: record), error: "line \(record.line): \(describe(error))", kept: kept(record))
            }
        }
        let results = await judge.judge(batch: parsed.map { ($0.input, $0.mode, $0.scenario) })
        for (p, result) in zip(parsed, results) {
            let record = records[p.index]
            switch result {
            case .failure(let error):
                outs[p.index] = JudgeRecord(id: id(of: record), error: "line \(record.line): \(describe(error))", kept: kept(record))
            case .success(let j):
                var out = j.record(id: id(of: record), scenarioGiven: p.scenario != nil)
                out.kept = kept(record)
                if j.status != .ok { out.error = "line \(record.line): verdict \(j.status.rawValue)" }
                outs[p.index] = out
            }
        }
        return outs.enumerated().map { i, out in
            out ?? JudgeRecord(id: id(of: records[i]), error: "line \(records[i].line): not judged")
        }
    }

    /// The judge input, mode and given scenario of a record.
    func parse(_ record: InputRecord) throws -> (JudgeInput, JudgeMode, Scenario?) {
        let r = record.fields
        guard let instruction = try fields.string("instruction", in: r), !instruction.isEmpty else {
            throw JudgeError.badRecord("no '\(fields.source(of: "instruction"))' field")
        }
        var conversation: [Message] = []
        if let turns = fields.value("conversation", in: r), !turns.isNull {
            guard let list = turns.array?.compactMap(\.object), list.count == turns.array?.count else {
                throw JudgeError.badRecord("'\(fields.source(of: "conversation"))' must be a list of {role, content}")
            }
            for t in list {
                guard let role = t["role"]?.string.flatMap(Role.init(rawValue:)), let content = t["content"]?.string else {
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
    public mutating func add(_ out: JudgeRecord, label: JSONValue?) {
        count += 1
        if out.status != .ok { failed += 1 }
        if let s = out.parseStatus { parseStatus[s.rawValue, default: 0] += 1 }
        if let r = out.rating { ratings[r, default: 0] += 1 }
        if let c = out.consistent { pairs += 1; if c { consistentPairs += 1 } }
        guard let text = label?.text?.lowercased(), out.status == .ok else { return }
        if let verdict = out.verdict {
            let expected = ["1": "a", "a": "a", "2": "b", "b": "b", "0": "tie", "tie": "tie", "c": "tie"][text]
            if let expected { labelled += 1; if expected == verdict.lowercased() { correct += 1 } }
        } else if let rating = out.rating, let human = Int(text) {
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
    /// The output record of a judgement, as `themis judge` writes it and the server returns it.
    public func record(id: String, scenarioGiven: Bool) -> JudgeRecord {
        var out = JudgeRecord(id: id, error: "")
        out.status = status == .ok ? .ok : .error
        out.error = status == .ok ? nil : "verdict \(status.rawValue)"
        out.parseStatus = status
        out.mode = mode
        out.scenario = scenario.id
        out.scenarioSource = scenarioGiven ? "given" : "classified"
        out.scenarioProbabilities = scenarioProbabilities
        out.promptTokens = passes.map(\.promptTokens)
        out.verdictSource = passes[0].source
        let missing = Set(passes.flatMap(\.missingLabels))
        if !missing.isEmpty { out.missingLabels = missing.sorted() }
        out.explanation = passes[0].explanation
        if mode == .pairwise {
            out.verdict = verdict
            out.verdictsByOrder = verdictsByOrder ?? [:]
            out.consistent = consistent
            if !passes[0].distribution.isEmpty { out.distributionsByOrder = passes.map(\.distribution) }
        } else {
            out.rating = rating
            out.expectedScore = expectedScore
            if !passes[0].distribution.isEmpty { out.distribution = passes[0].distribution }
        }
        return out
    }
}
