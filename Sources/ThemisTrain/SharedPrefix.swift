/// Samples that run together over the tokens they all begin with (`LoRAEngine`'s groups).
public struct SampleGroup: Sendable, Equatable {
    /// Indices into the grouped samples, in the order they run.
    public var members: [Int]
    /// Tokens the members share and that run once (0: each runs whole).
    public var prefix: Int

    public init(members: [Int], prefix: Int) {
        self.members = members
        self.prefix = prefix
    }
}

public enum SharedPrefix {
    /// Shorter shared beginnings are not worth a group.
    public static let minimumPrefix = 16

    /// Groups `samples` so that the tokens run are fewest: samples sorted by their tokens, split
    /// into runs of neighbours, each run sharing the tokens all its members begin with (up to
    /// the first trained row of any of them: a prefix holds no loss). Without `enabled`, each
    /// sample alone, in order.
    public static func groups(_ samples: [TokenizedSample], enabled: Bool = true) -> [SampleGroup] {
        guard enabled, samples.count > 1 else { return samples.indices.map { SampleGroup(members: [$0], prefix: 0) } }
        let order = samples.indices.sorted { a, b in
            let x = samples[a].tokens, y = samples[b].tokens
            return x.lexicographicallyPrecedes(y) || (x == y && a < b)
        }
        let firstTarget = samples.map { s in s.targets.map(\.row).min() ?? max(0, s.tokens.count - 2) }
        // in sorted order the tokens shared by a run are the smallest of its neighbours' shares
        let neighbours = zip(order, order.dropFirst()).map { a, b in
            zip(samples[a].tokens, samples[b].tokens).prefix { $0 == $1 }.count
        }
        // best[i]: the fewest tokens to run the first i sorted samples; cut[i]: where its last run starts
        let k = order.count
        var total = [0]  // tokens of the first i sorted samples
        for i in order { total.append(total.last! + samples[i].tokens.count) }
        var best = [Int](repeating: .max, count: k + 1), cut = [Int](repeating: 0, count: k + 1), prefixOf = cut
        best[0] = 0
        for end in 1...k {
            var shared = Int.max, limit = Int.max
            for begin in stride(from: end - 1, through: 0, by: -1) {
                limit = min(limit, firstTarget[order[begin]])
                if begin < end - 1 { shared = min(shared, neighbours[begin]) }
                let p = begin == end - 1 ? 0 : min(shared, limit)
                if begin < end - 1 && p < minimumPrefix { break }
                let cost = best[begin] + p + total[end] - total[begin] - (end - begin) * p
                if cost < best[end] { (best[end], cut[end], prefixOf[end]) = (cost, begin, p) }
            }
        }
        var groups: [SampleGroup] = []
        var end = k
        while end > 0 {
            groups.append(SampleGroup(members: Array(order[cut[end]..<end]), prefix: prefixOf[end]))
            end = cut[end]
        }
        return groups.reversed()
    }
}
