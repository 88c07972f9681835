import Foundation
import ThemisClient

/// A graded record as selection sees it.
public struct Candidate: Sendable, Equatable {
    public var id: String
    public var scenario: String
    /// The teacher's rating (single and reference modes); nil for pairwise records.
    public var score: Int?
    public var ifd: Double?

    public init(id: String, scenario: String, score: Int?, ifd: Double? = nil) {
        self.id = id
        self.scenario = scenario
        self.score = score
        self.ifd = ifd
    }
}

/// How records are chosen (the paper's Section 5.1 and 4 Exp-4).
public enum SelectionStrategy: String, Sendable, CaseIterable {
    /// Uniformly at random (seeded).
    case random
    /// Drop IFD >= 1, then take the highest IFD.
    case ifd
    /// Drop records whose IFD is a z-score > 3 outlier within their scenario, then the highest IFD.
    case ifdZ = "ifd-z"
}

/// The selection stage's rules, applied in order: strategy filter, score balancing, scenario
/// targets, then the total.
public struct SelectionRules: Sendable {
    public var strategy: SelectionStrategy = .ifd
    /// No score may make up more than this share of the rated records kept (the paper's fix for an
    /// over-represented score 4).
    public var maxScoreShare: Double? = 0.4
    /// Records to keep per scenario at most.
    public var scenarioTargets: [String: Int] = [:]
    /// Records to keep in all at most.
    public var total: Int?
    public var zThreshold = 3.0
    public var seed: UInt64 = 1

    public init() {}
}

/// Chooses records; every record not chosen gets its reason.
public enum Selector {
    public struct Result: Sendable {
        public var kept: [Candidate]
        /// Dropped ids with their reason.
        public var dropped: [(id: String, reason: String)]
    }

    public static func select(_ records: [Candidate], rules: SelectionRules) -> Result {
        var dropped: [(String, String)] = []
        var pool = records
        var rng = SeededGenerator(seed: rules.seed)
        switch rules.strategy {
        case .random:
            pool.shuffle(using: &rng)
        case .ifd, .ifdZ:
            var keep: [Candidate] = []
            let outliers = rules.strategy == .ifdZ ? zOutliers(pool, threshold: rules.zThreshold) : []
            for r in pool {
                guard let ifd = r.ifd else { dropped.append((r.id, "no IFD score")); continue }
                if ifd >= 1 { dropped.append((r.id, "IFD \(String(format: "%.3f", ifd)) >= 1")); continue }
                if outliers.contains(r.id) { dropped.append((r.id, "IFD z-score above \(rules.zThreshold) in \(r.scenario)")); continue }
                keep.append(r)
            }
            // highest IFD first; ties by id, so the order never depends on the input's
            pool = keep.sorted { ($0.ifd!, $1.id) > ($1.ifd!, $0.id) }
        }
        pool = balance(pool, maxShare: rules.maxScoreShare, dropped: &dropped)
        if !rules.scenarioTargets.isEmpty {
            var taken: [String: Int] = [:]
            pool = pool.filter { r in
                guard let target = rules.scenarioTargets[r.scenario] else { return true }
                taken[r.scenario, default: 0] += 1
                if taken[r.scenario]! > target { dropped.append((r.id, "scenario \(r.scenario) target \(target) reached")); return false }
                return true
            }
        }
        if let total = rules.total, pool.count > total {
            for r in pool[total...] { dropped.append((r.id, "total \(total) reached")) }
            pool = Array(pool.prefix(total))
        }
        return Result(kept: pool, dropped: dropped)
    }

    /// Keeps records in order while no score exceeds `maxShare` of the rated records kept: the
    /// largest count allowed for each score is found so the final set satisfies the cap.
    static func balance(_ pool: [Candidate], maxShare: Double?, dropped: inout [(String, String)]) -> [Candidate] {
        guard let maxShare, maxShare < 1 else { return pool }
        var counts: [Int: Int] = [:]
        for r in pool { if let s = r.score { counts[s, default: 0] += 1 } }
        guard !counts.isEmpty else { return pool }
        // with fewer than 1/maxShare scores present no set can meet the cap: equal shares then
        let share = max(maxShare, 1 / Double(counts.count))
        // caps c_s with c_s <= share * Σ c: lower the largest counts until it holds
        var caps = counts
        while true {
            let total = caps.values.reduce(0, +)
            let limit = Int((share * Double(total) + 1e-9).rounded(.down))
            guard let (score, count) = caps.max(by: { ($0.value, -$0.key) < ($1.value, -$1.key) }), count > limit else { break }
            if count == 0 { break }
            caps[score] = count - 1
        }
        var taken: [Int: Int] = [:]
        return pool.filter { r in
            guard let s = r.score else { return true }
            taken[s, default: 0] += 1
            if taken[s]! > caps[s]! {
                dropped.append((r.id, "score \(s) above its \(Int((share * 100).rounded()))% share"))
                return false
            }
            return true
        }
    }

    /// Ids whose IFD z-score within their scenario exceeds `threshold` (population sd).
    static func zOutliers(_ pool: [Candidate], threshold: Double) -> Set<String> {
        var out = Set<String>()
        for (_, group) in Dictionary(grouping: pool.filter { $0.ifd != nil }, by: \.scenario) {
            let values = group.map { $0.ifd! }
            let mean = values.reduce(0, +) / Double(values.count)
            let sd = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
            guard sd > 0 else { continue }
            for r in group where abs(r.ifd! - mean) / sd > threshold { out.insert(r.id) }
        }
        return out
    }
}
