import Foundation

/// The statistics of the meta-evaluation, each checked against scipy (`scripts/metric-reference.py`).
/// A statistic that is undefined for its input (a constant series, fewer than two points) is
/// `nil`, never NaN; `Statistics.undefinedReason` says why.
public enum Statistics {
    /// Arithmetic mean; nil when empty.
    public static func mean(_ x: [Double]) -> Double? {
        x.isEmpty ? nil : x.reduce(0, +) / Double(x.count)
    }

    /// Sample standard deviation (n − 1 in the denominator); nil for fewer than two values.
    public static func sampleStandardDeviation(_ x: [Double]) -> Double? {
        guard x.count > 1, let m = mean(x) else { return nil }
        return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
    }

    /// Mean absolute error between predictions and labels.
    public static func meanAbsoluteError(_ predicted: [Double], _ truth: [Double]) -> Double? {
        mean(zip(predicted, truth).map { abs($0 - $1) })
    }

    /// The paper's agreement of one prediction: 1/(|ŷ−y|+1)^q when |ŷ−y| < p, else 0.
    /// Agr(1, q) is exact accuracy; Agr(2, 2) gives 1 for exact, 0.25 for off by one.
    public static func agreement(_ predicted: Double, _ truth: Double, p: Double, q: Double) -> Double {
        let d = abs(predicted - truth)
        return d < p ? 1 / Foundation.pow(d + 1, q) : 0
    }

    /// Agr(p, q): the mean agreement over all pairs.
    public static func agreement(_ predicted: [Double], _ truth: [Double], p: Double, q: Double) -> Double? {
        mean(zip(predicted, truth).map { agreement($0, $1, p: p, q: q) })
    }

    /// Fraction of exactly equal pairs.
    public static func accuracy(_ predicted: [Double], _ truth: [Double]) -> Double? {
        mean(zip(predicted, truth).map { $0 == $1 ? 1 : 0 })
    }

    /// Pearson's r (scipy.stats.pearsonr); nil when either series is constant or n < 2.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double? {
        guard x.count == y.count, x.count >= 2, let mx = mean(x), let my = mean(y) else { return nil }
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices {
            let dx = x[i] - mx, dy = y[i] - my
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy
        }
        guard sxx > 0, syy > 0 else { return nil }
        return max(-1, min(1, sxy / (sxx.squareRoot() * syy.squareRoot())))
    }

    /// Ranks from 1, ties given the average of the ranks they span (scipy.stats.rankdata).
    public static func averageRanks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var ranks = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = rank }
            i = j + 1
        }
        return ranks
    }

    /// Spearman's ρ: Pearson's r of the average ranks (scipy.stats.spearmanr).
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        pearson(averageRanks(x), averageRanks(y))
    }

    /// Kendall's tau variants (scipy.stats.kendalltau `variant`).
    public enum KendallVariant: String, Sendable, CaseIterable {
        /// Adjusted for ties in either series: S / sqrt((n0 − n1)(n0 − n2)).
        case b
        /// Stuart's tau-c for rectangular tables: 2S / (n² (m − 1) / m), m = min(distinct x, distinct y).
        case c
    }

    /// Kendall's tau in O(n log n): pairs are counted by walking x in order and querying a
    /// Fenwick tree over the ranks of y, so a bootstrap over thousands of items stays cheap.
    public static func kendall(_ x: [Double], _ y: [Double], variant: KendallVariant = .b) -> Double? {
        let n = x.count
        guard n == y.count, n >= 2 else { return nil }
        let yValues = Array(Set(y)).sorted()
        let yRank = Dictionary(uniqueKeysWithValues: yValues.enumerated().map { ($1, $0 + 1) })
        let order = x.indices.sorted { x[$0] < x[$1] || (x[$0] == x[$1] && y[$0] < y[$1]) }
        var tree = [Int](repeating: 0, count: yValues.count + 1)
        func countAtMost(_ r: Int) -> Int {
            var r = r, s = 0
            while r > 0 { s += tree[r]; r -= r & -r }
            return s
        }
        var s = 0, inserted = 0, i = 0
        var xTies = 0, distinctX = 0
        while i < n {
            var j = i
            while j + 1 < n && x[order[j + 1]] == x[order[i]] { j += 1 }
            for k in i...j {
                let r = yRank[y[order[k]]]!
                let below = countAtMost(r - 1), above = inserted - countAtMost(r)
                s += below - above
            }
            for k in i...j {
                var r = yRank[y[order[k]]]!
                while r < tree.count { tree[r] += 1; r += r & -r }
            }
            inserted += j - i + 1
            let t = j - i + 1
            xTies += t * (t - 1) / 2
            distinctX += 1
            i = j + 1
        }
        var yCounts: [Double: Int] = [:]
        for v in y { yCounts[v, default: 0] += 1 }
        let yTies = yCounts.values.reduce(0) { $0 + $1 * ($1 - 1) / 2 }
        let n0 = n * (n - 1) / 2
        switch variant {
        case .b:
            let denominator = Double(n0 - xTies) * Double(n0 - yTies)
            guard denominator > 0 else { return nil }
            return Double(s) / denominator.squareRoot()
        case .c:
            let m = Double(min(distinctX, yValues.count))
            guard m > 1 else { return nil }
            return 2 * Double(s) / (Double(n) * Double(n) * (m - 1) / m)
        }
    }

    /// Why a correlation of these series is undefined, for the report; nil when it is defined.
    public static func undefinedReason(_ x: [Double], _ y: [Double]) -> String? {
        if x.count < 2 { return "undefined: fewer than two items" }
        if Set(x).count < 2 && Set(y).count < 2 { return "undefined: both series are constant" }
        if Set(x).count < 2 { return "undefined: the predictions are constant" }
        if Set(y).count < 2 { return "undefined: the labels are constant" }
        return nil
    }

    /// The q-quantile of sorted values with linear interpolation (numpy's default).
    public static func quantile(sorted x: [Double], _ q: Double) -> Double? {
        guard !x.isEmpty else { return nil }
        let position = q * Double(x.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(lower + 1, x.count - 1)
        return x[lower] + (x[upper] - x[lower]) * (position - Double(lower))
    }

    /// z-values of each value against all of them: (v − mean) / sample sd. The paper's Table 4
    /// standardises the rows it shows (every scenario and the overall row); `zValues` over those
    /// nine Alignbench rows gives its column to the printed three decimals.
    public static func zValues(_ values: [Double]) -> [Double]? {
        guard let m = mean(values), let sd = sampleStandardDeviation(values), sd > 0 else { return nil }
        return values.map { ($0 - m) / sd }
    }
}
