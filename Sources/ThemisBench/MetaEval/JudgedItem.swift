import Foundation
import JSONLines
import ThemisJudge

/// A pairwise verdict or label.
public enum PairChoice: String, Sendable, CaseIterable {
    case a = "A", b = "B", tie

    /// `A`, `B`, `tie` in any case (also `C`, the judge prompt's tie label); `1`, `2`, `0` only
    /// when numeric labels are allowed (LLMBar writes 1 and 2).
    init?(label: JSONValue, numeric: Bool) {
        let text = (label.text ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        switch text {
        case "a": self = .a
        case "b": self = .b
        case "tie", "c": self = .tie
        case "1" where numeric: self = .a
        case "2" where numeric: self = .b
        case "0" where numeric: self = .tie
        default: return nil
        }
    }
}

/// One prediction joined with its human label.
public struct JudgedItem: Sendable {
    public enum Kind: Sendable { case rating, pair }

    public var id: String
    /// The predictions file it came from.
    public var source: String
    /// `single`, `reference` or `pairwise`.
    public var mode: String
    public var scenario: String
    public var kind: Kind
    /// The prediction's `status` (`ok` or `error`) and `parse_status`.
    public var ok: Bool
    public var parseStatus: String

    // ratings
    public var rating: Double?
    public var expectedScore: Double?
    public var label: Double?

    // pairs
    public var verdict: PairChoice?
    /// The verdicts of the original order (A shown first) and the swapped one, mapped back to A/B.
    public var verdictAB: PairChoice?
    public var verdictBA: PairChoice?
    public var pairLabel: PairChoice?
    /// The judge's probability that A is the better response, averaged over both orders.
    public var probabilityA: Double?
    /// Characters of each response, when the records carry them.
    public var lengthA: Int?
    public var lengthB: Int?

    /// Rated and labelled: the item enters the rating metrics.
    var scoredRating: (prediction: Double, label: Double)? {
        guard ok, kind == .rating, let rating, let label else { return nil }
        return (rating, label)
    }

    /// Judged and labelled: the item enters the pair metrics.
    var scoredPair: (verdict: PairChoice, label: PairChoice)? {
        guard ok, kind == .pair, let verdict, let pairLabel else { return nil }
        return (verdict, pairLabel)
    }
}

/// How predictions and labels are read and joined.
public struct JoinOptions: Sendable {
    /// The field both files are joined on; a record without it is known as `line-N`, as the
    /// judge names records without an id.
    public var key = "id"
    public var labelField = "label"
    /// The rating scale; a label or rating outside it is an error for that item.
    public var scale: ClosedRange<Int> = 1...5
    /// Pair labels written `1` / `2` / `0` (A / B / tie), as in LLMBar.
    public var numericPairLabels = false

    public init() {}
}

/// The predictions joined with their labels, and everything that could not be joined.
public struct JoinedData: Sendable {
    public var items: [JudgedItem] = []
    public var predictionsRead = 0
    public var labelsRead = 0
    /// Predictions with no label record (or a record without the label field).
    public var unmatchedPredictions: [String] = []
    /// Label records no prediction refers to.
    public var unmatchedLabels: [String] = []
    /// One line per unreadable line, duplicate key or invalid label, in file order.
    public var problems: [String] = []
    public var malformedLines = 0
    public var invalidLabels = 0
    public var duplicateKeys = 0

    public var matched: Int { items.count }
}

/// Reads judge output (`themis judge` records) and human labels, and joins them.
public enum MetaEvalInput {
    /// Joins each predictions file with the labels file, or with the label field of the
    /// predictions themselves when `labels` is nil.
    public static func join(predictions: [String], labels: String?, options: JoinOptions) throws -> JoinedData {
        var data = JoinedData()
        var labelRecords: [String: JSONObject] = [:]
        var labelOrder: [String] = []
        if let labels {
            let records = try readKeyed(labels, key: options.key, into: &data)
            data.labelsRead = records.read
            for (key, record) in records.unique {
                labelRecords[key] = record.fields
                labelOrder.append(key)
            }
        }
        var used = Set<String>()
        for path in predictions {
            let records = try readKeyed(path, key: options.key, into: &data)
            data.predictionsRead += records.read
            for (key, record) in records.unique {
                let labelRecord = labels == nil ? record.fields : labelRecords[key]
                if labelRecord != nil { used.insert(key) }
                guard let labelRecord, let label = labelRecord[options.labelField], !label.isNull else {
                    data.unmatchedPredictions.append(key)
                    continue
                }
                do {
                    data.items.append(try item(record.fields, label: label, labelRecord: labelRecord, key: key, source: path, options: options))
                } catch {
                    data.invalidLabels += 1
                    data.problems.append("\(path) line \(record.line) (\(key)): \(error)")
                }
            }
        }
        data.unmatchedLabels = labelOrder.filter { !used.contains($0) }
        return data
    }

    /// The readable records of a file by key, the first of each key; malformed lines and
    /// duplicate keys are counted and described in `data`.
    static func readKeyed(_ path: String, key: String, into data: inout JoinedData) throws
        -> (read: Int, unique: [(String, InputRecord)]) {
        var seen = Set<String>(), unique: [(String, InputRecord)] = [], read = 0
        for record in try RecordReader.read(path) {
            if let error = record.readError {
                data.malformedLines += 1
                data.problems.append("\(path): \(error)")
                continue
            }
            read += 1
            let value = keyValue(record, key)
            guard seen.insert(value).inserted else {
                data.duplicateKeys += 1
                data.problems.append("\(path) line \(record.line): duplicate \(key) '\(value)' (the first is used)")
                continue
            }
            unique.append((value, record))
        }
        return (read, unique)
    }

    static func keyValue(_ record: InputRecord, _ key: String) -> String {
        record.fields[key]?.text ?? "line-\(record.line)"
    }

    /// A finite number, or a string holding one (labels are written either way).
    static func number(_ value: JSONValue?) -> Double? {
        if let d = value?.double { return d }
        guard let s = value?.string, let d = Double(s.trimmingCharacters(in: .whitespaces)), d.isFinite else { return nil }
        return d
    }

    static func item(_ p: JSONObject, label: JSONValue, labelRecord: JSONObject, key: String, source: String,
                     options: JoinOptions) throws -> JudgedItem {
        // an error record may carry no mode: then the label's form decides
        let isNumber = label.double != nil
        let pairLike = p["verdict"] != nil || p["verdicts_by_order"] != nil
            || (!isNumber && PairChoice(label: label, numeric: false) != nil) || options.numericPairLabels
        let mode = p["mode"]?.string ?? (pairLike ? "pairwise" : "single")
        let scenario = labelRecord["scenario"]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? p["scenario"]?.string ?? "unknown"
        let ok = (p["status"]?.string ?? "ok") == "ok"
        var item = JudgedItem(id: key, source: source, mode: mode, scenario: scenario, kind: mode == "pairwise" ? .pair : .rating,
                              ok: ok, parseStatus: p["parse_status"]?.string ?? (ok ? "ok" : "error"))
        switch item.kind {
        case .pair:
            guard let choice = PairChoice(label: label, numeric: options.numericPairLabels) else {
                let hint = !options.numericPairLabels && ["0", "1", "2"].contains(label.text ?? "")
                    ? " (numeric pair labels need --numeric-pair-labels)" : ""
                throw MetaEvalError.invalidLabel("pair label '\(label.text ?? "\(label)")' is not A, B or tie\(hint)")
            }
            item.pairLabel = choice
            item.verdict = p["verdict"].flatMap { PairChoice(label: $0, numeric: false) }
            let orders = p["verdicts_by_order"]?.object ?? [:]
            item.verdictAB = orders["ab"].flatMap { PairChoice(label: $0, numeric: false) }
            item.verdictBA = orders["ba"].flatMap { PairChoice(label: $0, numeric: false) }
            if let d = p["distributions_by_order"]?.array?.compactMap(\.object), d.count == 2,
               let a1 = number(d[0]["A"]), let b1 = number(d[0]["B"]), let a2 = number(d[1]["A"]), let b2 = number(d[1]["B"]) {
                // the second pass shows B first, so its "A" is the original B
                let pA = (a1 + b2) / 2, pB = (b1 + a2) / 2
                if pA + pB > 0 { item.probabilityA = pA / (pA + pB) }
            }
            for fields in [labelRecord, p] where item.lengthA == nil {
                for (a, b) in [("response_a", "response_b"), ("output_1", "output_2")] {
                    if let ra = fields[a]?.string, let rb = fields[b]?.string {
                        item.lengthA = ra.count; item.lengthB = rb.count
                        break
                    }
                }
            }
        case .rating:
            // compared as numbers before any conversion: a label of 1e300 is outside the scale, not a trap
            let low = Double(options.scale.lowerBound), high = Double(options.scale.upperBound)
            guard let value = number(label), value == value.rounded() else {
                throw MetaEvalError.invalidLabel("rating label '\(label.text ?? "\(label)")' is not an integer")
            }
            guard value >= low && value <= high else {
                throw MetaEvalError.invalidLabel("label \(label.text ?? "\(value)") is outside the scale \(options.scale.lowerBound)-\(options.scale.upperBound)")
            }
            item.label = value
            if let r = number(p["rating"]) {
                guard r >= low && r <= high else {
                    throw MetaEvalError.invalidLabel("rating \(p["rating"]?.text ?? "\(r)") is outside the scale \(options.scale.lowerBound)-\(options.scale.upperBound)")
                }
                item.rating = r
            }
            item.expectedScore = number(p["expected_score"])
        }
        if item.ok && item.rating == nil && item.verdict == nil {
            item.ok = false
            item.parseStatus = "no verdict"
        }
        return item
    }
}

/// Errors of the meta-evaluation.
public enum MetaEvalError: Error, CustomStringConvertible {
    case invalidLabel(String)
    case nothingMatched(String)
    case badOption(String)

    public var description: String {
        switch self {
        case .invalidLabel(let s), .nothingMatched(let s), .badOption(let s): return s
        }
    }
}
