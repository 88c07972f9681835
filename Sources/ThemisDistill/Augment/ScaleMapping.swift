/// The paper's mapping of 1-5 ratings onto other scales (Section 5, guideline 2c), so one graded
/// set teaches several rating scales.
public enum RatingScaleMapping: String, Sendable, CaseIterable {
    /// 4 and 5 are good (1), 1-3 are not (0).
    case binary = "0-1"
    /// 1-2 low, 3 middle, 4-5 high.
    case three = "1-3"
    /// Linear: 1 + (s - 1) · 9/4, rounded half up (1, 3, 6, 8, 10).
    case ten = "1-10"

    public var range: ClosedRange<Int> {
        switch self {
        case .binary: return 0...1
        case .three: return 1...3
        case .ten: return 1...10
        }
    }

    /// The rating on this scale of a 1-5 rating; nil outside 1-5.
    public func map(_ score: Int) -> Int? {
        guard (1...5).contains(score) else { return nil }
        switch self {
        case .binary: return score >= 4 ? 1 : 0
        case .three: return score <= 2 ? 1 : score == 3 ? 2 : 3
        case .ten: return Int((1 + Double(score - 1) * 9 / 4 + 0.5).rounded(.down))
        }
    }
}
