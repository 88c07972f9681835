import Foundation
import ThemisModel

/// The metrics of one set of items (all of them, one scenario, or one judging mode).
public struct GroupReport: Sendable {
    public var matched: Int
    /// Items by the prediction's parse status (`ok`, `no_label`, `error`, ...).
    public var status: [String: Int]
    public var ratings: RatingMetrics?
    /// The same metrics for the probability-weighted expected score, where present.
    public var expectedScore: RatingMetrics?
    public var pairs: PairMetrics?
    /// Against the other scenarios (see `Statistics.zValues`); only in `byScenario`.
    public var z: Double?

    init(_ items: [JudgedItem], settings: MetricSettings) {
        matched = items.count
        status = [:]
        for item in items { status[item.parseStatus, default: 0] += 1 }
        ratings = RatingMetrics.compute(items.compactMap(\.scoredRating), settings: settings)
        expectedScore = RatingMetrics.compute(items.compactMap { item in
            guard item.ok, let e = item.expectedScore, let y = item.label else { return nil }
            return (e, y)
        }, settings: settings)
        pairs = PairMetrics.compute(items)
    }

    /// The metric scenarios are compared on: Agr for ratings, accuracy (with ties) for pairs.
    public var headline: (name: String, value: Double)? {
        if let v = ratings?.agr { return ("agr", v) }
        if let v = pairs?.accuracyWithTies { return ("accuracy_with_ties", v) }
        return nil
    }
}

/// A bootstrap percentile interval.
public struct Interval: Sendable {
    public var low: Double
    public var high: Double
}

/// One metric in the aggregate: its value, the value a uniformly random judge is expected to
/// get, and the value rescaled so that random is 0 and perfect is 1.
public struct AggregateComponent: Sendable {
    public var group: String
    public var metric: String
    public var value: Double
    public var random: Double
    public var perfect: Double
    public var rescaled: Double
}

/// The paper's single number (Section 5): every metric rescaled linearly so that uniform random
/// guessing is 0 and a perfect judge is 1, then averaged.
public struct Aggregate: Sendable {
    public var score: Double?
    public var components: [AggregateComponent]
    public static let method = """
        Each metric m is rescaled to (m - r) / (b - r), where b is its perfect value (1; 0 for MAE) \
        and r its expected value under a judge that guesses uniformly: for ratings, each rating of the \
        scale with equal probability, r averaged over the observed labels (correlations: r = 0, \
        accuracy: r = 1/K); for pairs, A, B or tie with equal probability in each order (accuracy \
        with ties and position consistency: r = 1/3; accuracy without ties: r = 1/2). The score is \
        the mean of the rescaled metrics of every judging mode present.
        """
}

/// The whole meta-evaluation: overall, per scenario, per mode, intervals and the aggregate.
public struct MetaEvalReport: Sendable {
    public var data: JoinedData
    public var settings: MetricSettings
    public var overall: GroupReport
    public var byScenario: [String: GroupReport]
    /// Only when more than one judging mode is present.
    public var byMode: [String: GroupReport]
    /// Reference-guided minus single-answer Agr, overall (`all`) and per scenario, when both ran.
    public var referenceMinusSingle: [(scenario: String, single: Double, reference: Double, delta: Double)]
    /// Bootstrap 95% intervals of the overall metrics, by metric name.
    public var intervals: [String: Interval]
    public var bootstrapSamples: Int
    public var seed: UInt64
    public var aggregate: Aggregate
    /// Pearson's r between per-scenario Agr and mean human label (the paper's Figure 1).
    public var agrVersusMeanLabel: Double?
}

/// Options of a meta-evaluation.
public struct MetaEvalOptions: Sendable {
    public var metrics = MetricSettings()
    public var bootstrapSamples = 1000
    public var seed: UInt64 = 2025
    /// Metrics averaged into the aggregate (default: MAE and Agr for ratings, as in the paper;
    /// accuracy with ties and position consistency for pairs).
    public var aggregateMetrics = ["mae", "agr", "accuracy_with_ties", "position_consistency"]
    public static let aggregatable = ["mae", "agr", "accuracy", "pearson", "spearman", "kendall",
                                      "accuracy_with_ties", "accuracy_without_ties", "position_consistency"]

    public init() {}
}

public enum MetaEvaluation {
    /// Evaluates joined data. Throws `nothingMatched` when no prediction has a label.
    public static func evaluate(_ data: JoinedData, options: MetaEvalOptions) throws -> MetaEvalReport {
        guard data.matched > 0 else {
            throw MetaEvalError.nothingMatched(
                "no prediction could be matched with a label (\(data.predictionsRead) predictions, \(data.labelsRead) label records, "
                    + "\(data.unmatchedPredictions.count) predictions without a label)")
        }
        let settings = options.metrics
        let overall = GroupReport(data.items, settings: settings)
        var byScenario = Dictionary(grouping: data.items, by: \.scenario).mapValues { GroupReport($0, settings: settings) }
        // z over the rows of the per-scenario table: the scenarios and the overall row
        let names = byScenario.keys.sorted().filter { byScenario[$0]!.headline != nil }
        if let overallValue = overall.headline?.value,
           let z = Statistics.zValues([overallValue] + names.map { byScenario[$0]!.headline!.value }) {
            for (name, value) in zip(names, z.dropFirst()) { byScenario[name]!.z = value }
        }
        let modes = Dictionary(grouping: data.items, by: \.mode)
        let byMode = modes.count > 1 ? modes.mapValues { GroupReport($0, settings: settings) } : [:]
        var delta: [(String, Double, Double, Double)] = []
        if let single = modes["single"], let reference = modes["reference"] {
            let s = Dictionary(grouping: single, by: \.scenario), r = Dictionary(grouping: reference, by: \.scenario)
            func agr(_ items: [JudgedItem]) -> Double? { RatingMetrics.compute(items.compactMap(\.scoredRating), settings: settings)?.agr }
            if let a = agr(single), let b = agr(reference) { delta.append(("all", a, b, b - a)) }
            for name in Set(s.keys).intersection(r.keys).sorted() {
                if let a = agr(s[name]!), let b = agr(r[name]!) { delta.append((name, a, b, b - a)) }
            }
        }
        let groups = byMode.isEmpty ? [(data.items.first!.mode, data.items)] : modes.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let aggregate = self.aggregate(groups.map { ($0.0, $0.1) }, options: options)
        let rated = names.compactMap { name -> (Double, Double)? in
            guard let r = byScenario[name]!.ratings, let agr = r.agr, let y = r.meanLabel else { return nil }
            return (agr, y)
        }
        return MetaEvalReport(
            data: data, settings: settings, overall: overall, byScenario: byScenario, byMode: byMode,
            referenceMinusSingle: delta, intervals: bootstrap(data.items, options: options),
            bootstrapSamples: options.bootstrapSamples, seed: options.seed, aggregate: aggregate,
            agrVersusMeanLabel: rated.count > 2 ? Statistics.pearson(rated.map(\.0), rated.map(\.1)) : nil)
    }

    /// Percentile intervals of the overall metrics over resamples of the items (seeded).
    static func bootstrap(_ items: [JudgedItem], options: MetaEvalOptions) -> [String: Interval] {
        guard options.bootstrapSamples > 0 else { return [:] }
        // seeded, so a report's intervals are the same on every run
        var rng = SeededGenerator(seed: options.seed)
        var samples: [String: [Double]] = [:]
        let rated = items.compactMap(\.scoredRating)
        let pairs = items.filter { $0.scoredPair != nil }
        for _ in 0..<options.bootstrapSamples {
            if !rated.isEmpty {
                let resample = (0..<rated.count).map { _ in rated[Int(rng.next() % UInt64(rated.count))] }
                for (name, value) in RatingMetrics.compute(resample, settings: options.metrics)!.values {
                    if let value { samples[name, default: []].append(value) }
                }
            }
            if !pairs.isEmpty {
                let resample = (0..<pairs.count).map { _ in pairs[Int(rng.next() % UInt64(pairs.count))] }
                for (name, value) in PairMetrics.compute(resample)!.values {
                    if let value { samples[name, default: []].append(value) }
                }
            }
        }
        var intervals: [String: Interval] = [:]
        for (name, values) in samples where values.count * 10 >= options.bootstrapSamples * 9 {
            // a metric undefined in over a tenth of the resamples gets no interval
            let sorted = values.sorted()
            intervals[name] = Interval(low: Statistics.quantile(sorted: sorted, 0.025)!, high: Statistics.quantile(sorted: sorted, 0.975)!)
        }
        return intervals
    }

    /// The rescaled metrics of each judging mode, averaged.
    static func aggregate(_ groups: [(String, [JudgedItem])], options: MetaEvalOptions) -> Aggregate {
        var components: [AggregateComponent] = []
        let scale = options.metrics.scale
        let k = Double(scale.count)
        for (name, items) in groups {
            let rated = items.compactMap(\.scoredRating)
            if let m = RatingMetrics.compute(rated, settings: options.metrics) {
                let labels = rated.map(\.1)
                func expectedUnderRandom(_ f: (Double, Double) -> Double) -> Double {
                    labels.map { y in scale.map { f(Double($0), y) }.reduce(0, +) / k }.reduce(0, +) / Double(labels.count)
                }
                let random: [String: (Double, Double)] = [
                    "mae": (expectedUnderRandom { abs($0 - $1) }, 0),
                    "agr": (expectedUnderRandom { Statistics.agreement($0, $1, p: options.metrics.agreementP, q: options.metrics.agreementQ) }, 1),
                    "accuracy": (1 / k, 1), "pearson": (0, 1), "spearman": (0, 1), "kendall": (0, 1),
                ]
                for metric in options.aggregateMetrics {
                    guard let (r, best) = random[metric], let value = m.values[metric] ?? nil, r != best else { continue }
                    components.append(AggregateComponent(group: name, metric: metric, value: value, random: r, perfect: best,
                                                         rescaled: (value - r) / (best - r)))
                }
            }
            if let m = PairMetrics.compute(items) {
                let random: [String: Double] = ["accuracy_with_ties": 1.0 / 3, "accuracy_without_ties": 0.5, "position_consistency": 1.0 / 3]
                for metric in options.aggregateMetrics {
                    guard let r = random[metric], let value = m.values[metric] ?? nil else { continue }
                    components.append(AggregateComponent(group: name, metric: metric, value: value, random: r, perfect: 1,
                                                         rescaled: (value - r) / (1 - r)))
                }
            }
        }
        return Aggregate(score: Statistics.mean(components.map(\.rescaled)), components: components)
    }
}
