import Foundation

/// Agreement of ratings with human labels.
public struct RatingMetrics: Sendable {
    public var n: Int
    public var mae: Double?
    public var agr: Double?
    public var accuracy: Double?
    public var pearson: Double?
    public var spearman: Double?
    public var kendall: Double?
    /// Why a metric is undefined, by metric name (`pearson`: "undefined: the labels are constant").
    public var notes: [String: String] = [:]
    public var meanLabel: Double?
    public var meanPrediction: Double?
    /// Counts by [label − lowest][prediction − lowest]; predictions rounded (expected scores).
    public var confusion: [[Int]]

    /// The metrics of (prediction, label) pairs; nil when there are none.
    public static func compute(_ pairs: [(Double, Double)], settings: MetricSettings) -> RatingMetrics? {
        guard !pairs.isEmpty else { return nil }
        let predicted = pairs.map(\.0), truth = pairs.map(\.1)
        let k = settings.scale.count
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        let lowest = Double(settings.scale.lowerBound), highest = Double(settings.scale.upperBound)
        for (p, y) in pairs {
            // bounded as doubles first: a prediction of 1e308 or a NaN must not reach Int()
            guard p.isFinite, y.isFinite, y >= lowest, y <= highest else { continue }
            let row = Int(y) - settings.scale.lowerBound
            let column = Int(min(max(p.rounded(), lowest), highest)) - settings.scale.lowerBound
            if (0..<k).contains(row) { confusion[row][column] += 1 }
        }
        var m = RatingMetrics(
            n: pairs.count, mae: Statistics.meanAbsoluteError(predicted, truth),
            agr: Statistics.agreement(predicted, truth, p: settings.agreementP, q: settings.agreementQ),
            accuracy: Statistics.accuracy(predicted.map { $0.rounded() }, truth),
            pearson: Statistics.pearson(predicted, truth), spearman: Statistics.spearman(predicted, truth),
            kendall: Statistics.kendall(predicted, truth, variant: settings.kendall),
            meanLabel: Statistics.mean(truth), meanPrediction: Statistics.mean(predicted), confusion: confusion)
        if let reason = Statistics.undefinedReason(predicted, truth) {
            for name in ["pearson", "spearman", "kendall"] { m.notes[name] = reason }
        }
        return m
    }

    /// Headline values by name, for the bootstrap and the aggregate.
    public var values: [String: Double?] {
        ["mae": mae, "agr": agr, "accuracy": accuracy, "pearson": pearson, "spearman": spearman, "kendall": kendall]
    }
}

/// Agreement of pairwise verdicts with human preferences.
public struct PairMetrics: Sendable {
    /// Judged and labelled pairs.
    public var n: Int
    /// Over all pairs; a tie is a class of its own.
    public var accuracyWithTies: Double?
    /// Over the pairs where neither the label nor the verdict is a tie (MT-Bench's "w/o tie").
    public var nWithoutTies: Int
    public var accuracyWithoutTies: Double?
    /// Pairs judged in both orders, and the fraction whose two verdicts agree.
    public var nBothOrders: Int
    public var positionConsistency: Double?
    /// Of the single-order verdicts that pick a response, the fraction picking the one shown first
    /// (0.5: no position bias).
    public var nOrderVerdicts: Int
    public var firstPositionPreference: Double?
    /// Of the non-tie verdicts on pairs of unequal length, the fraction picking the longer response.
    public var nLengthDecided: Int
    public var longerPreference: Double?
    /// Same, for the human labels: how much of the length preference the labels share.
    public var labelLongerPreference: Double?
    /// Counts by [label][verdict], in the order A, B, tie.
    public var confusion: [[Int]]
    /// (mean predicted probability of A, fraction labelled A, count) per fifth of [0, 1].
    public var calibration: [(predicted: Double, observed: Double, n: Int)]
    public var notes: [String: String] = [:]

    public static func compute(_ items: [JudgedItem]) -> PairMetrics? {
        let scored = items.compactMap { item in item.scoredPair.map { (item, $0.verdict, $0.label) } }
        guard !scored.isEmpty else { return nil }
        let order = PairChoice.allCases
        var confusion = [[Int]](repeating: [0, 0, 0], count: 3)
        for (_, v, y) in scored { confusion[order.firstIndex(of: y)!][order.firstIndex(of: v)!] += 1 }
        let withoutTies = scored.filter { $0.1 != .tie && $0.2 != .tie }
        let bothOrders = scored.compactMap { s in s.0.verdictAB.flatMap { ab in s.0.verdictBA.map { (ab, $0) } } }
        var orderVerdicts = 0, first = 0
        for (ab, ba) in bothOrders {
            // in the first order A is shown first; in the second, B
            if ab != .tie { orderVerdicts += 1; if ab == .a { first += 1 } }
            if ba != .tie { orderVerdicts += 1; if ba == .b { first += 1 } }
        }
        let unequal = scored.filter { s in s.0.lengthA != nil && s.0.lengthA != s.0.lengthB }
        let lengthPairs = unequal.filter { $0.1 != .tie }
        func longer(_ item: JudgedItem) -> PairChoice { item.lengthA! > item.lengthB! ? .a : .b }
        let labelLength = unequal.filter { $0.2 != .tie }
        var m = PairMetrics(
            n: scored.count, accuracyWithTies: fraction(scored) { $0.1 == $0.2 },
            nWithoutTies: withoutTies.count, accuracyWithoutTies: fraction(withoutTies) { $0.1 == $0.2 },
            nBothOrders: bothOrders.count, positionConsistency: fraction(bothOrders) { $0.0 == $0.1 },
            nOrderVerdicts: orderVerdicts, firstPositionPreference: orderVerdicts > 0 ? Double(first) / Double(orderVerdicts) : nil,
            nLengthDecided: lengthPairs.count, longerPreference: fraction(lengthPairs) { $0.1 == longer($0.0) },
            labelLongerPreference: fraction(labelLength) { $0.2 == longer($0.0) },
            confusion: confusion, calibration: [])
        if bothOrders.isEmpty { m.notes["position_consistency"] = "undefined: no pair was judged in both orders" }
        if unequal.isEmpty {
            m.notes["longer_preference"] = "undefined: the records do not carry both responses (or they are equally long)"
        } else if lengthPairs.isEmpty {
            m.notes["longer_preference"] = "undefined: every verdict is a tie"
        }
        if withoutTies.isEmpty { m.notes["accuracy_without_ties"] = "undefined: every pair has a tie label or verdict" }
        let probable = scored.filter { $0.0.probabilityA?.isFinite == true && $0.2 != .tie }
        for bin in 0..<5 {
            let inBin = probable.filter { min(Int(min(max($0.0.probabilityA!, 0), 1) * 5), 4) == bin }
            guard !inBin.isEmpty else { continue }
            m.calibration.append((inBin.map { $0.0.probabilityA! }.reduce(0, +) / Double(inBin.count),
                                  Double(inBin.filter { $0.2 == .a }.count) / Double(inBin.count), inBin.count))
        }
        return m
    }

    static func fraction<T>(_ xs: [T], _ hit: (T) -> Bool) -> Double? {
        xs.isEmpty ? nil : Double(xs.filter(hit).count) / Double(xs.count)
    }

    public var values: [String: Double?] {
        ["accuracy_with_ties": accuracyWithTies, "accuracy_without_ties": accuracyWithoutTies,
         "position_consistency": positionConsistency]
    }
}

/// Settings every metric shares.
public struct MetricSettings: Sendable {
    /// Agr(p, q); the paper reports Agr(2, 2).
    public var agreementP = 2.0
    public var agreementQ = 2.0
    public var kendall: Statistics.KendallVariant = .b
    public var scale: ClosedRange<Int> = 1...5

    public init() {}
}
