import Foundation

/// Least-squares regression of the overall score on per-criterion scores (with an intercept),
/// used when criteria are dropped from a prompt at random: the overall score is re-derived from
/// the criteria that remain (the paper's Section 5, guideline 2b).
public struct OverallScoreRegression: Sendable {
    /// Intercept first, then one weight per criterion, in `criteria` order.
    public let weights: [Double]
    public let criteria: [String]

    /// Fits on records that have every criterion in `criteria` and an overall score; nil when
    /// the system is singular (too few records, or a criterion that never varies).
    public static func fit(_ records: [(criteria: [String: Double], overall: Double)], criteria: [String]) -> OverallScoreRegression? {
        let rows = records.compactMap { r -> ([Double], Double)? in
            let xs = criteria.compactMap { r.criteria[$0] }
            return xs.count == criteria.count ? ([1] + xs, r.overall) : nil
        }
        let p = criteria.count + 1
        guard rows.count >= p else { return nil }
        // normal equations (XᵀX) w = Xᵀy, solved by Gaussian elimination with partial pivoting
        var a = [[Double]](repeating: [Double](repeating: 0, count: p + 1), count: p)
        for (x, y) in rows {
            for i in 0..<p {
                for j in 0..<p { a[i][j] += x[i] * x[j] }
                a[i][p] += x[i] * y
            }
        }
        for col in 0..<p {
            let pivot = (col..<p).max { abs(a[$0][col]) < abs(a[$1][col]) }!
            guard abs(a[pivot][col]) > 1e-9 else { return nil }
            a.swapAt(col, pivot)
            for row in 0..<p where row != col {
                let f = a[row][col] / a[col][col]
                for j in col...p { a[row][j] -= f * a[col][j] }
            }
        }
        return OverallScoreRegression(weights: (0..<p).map { a[$0][p] / a[$0][$0] }, criteria: criteria)
    }

    /// The predicted overall score (unrounded); nil when a criterion is missing.
    public func predict(_ scores: [String: Double]) -> Double? {
        var y = weights[0]
        for (i, c) in criteria.enumerated() {
            guard let v = scores[c] else { return nil }
            y += weights[i + 1] * v
        }
        return y
    }

    /// The prediction rounded and clamped onto `scale`.
    public func rating(_ scores: [String: Double], scale: ClosedRange<Int>) -> Int? {
        predict(scores).map { min(max(Int($0.rounded()), scale.lowerBound), scale.upperBound) }
    }

    /// Mean absolute error of the rounded predictions on held-out records.
    public func meanAbsoluteError(_ records: [(criteria: [String: Double], overall: Double)], scale: ClosedRange<Int>) -> Double? {
        let errors = records.compactMap { r in rating(r.criteria, scale: scale).map { abs(Double($0) - r.overall) } }
        return errors.isEmpty ? nil : errors.reduce(0, +) / Double(errors.count)
    }
}
