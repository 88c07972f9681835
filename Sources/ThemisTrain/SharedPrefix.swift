/// How `LoRAEngine` runs a batch of samples over the tokens they begin with alike: a tree whose
/// nodes are shared beginnings (the judge prompt's rubric for every sample of a step; below it,
/// a pair's conversation for its two orders) and whose leaves are samples. A node's rows run
/// forward once before its items and backward once after them, with the key and value gradients
/// every sample below it sent to them.
public struct PrefixNode: Sendable, Equatable {
    /// What runs after a node's rows: a sample's own rows, or a deeper shared beginning.
    public indirect enum Item: Sendable, Equatable {
        case sample(Int)
        case node(PrefixNode)
    }

    /// Every sample below this node begins with the same `end` tokens; the node runs the rows
    /// from its parent's `end` up to this one (the root's `end` is 0: nothing shared by all).
    public var end: Int
    /// Run in this order; samples are indices into the batch.
    public var items: [Item]

    public init(end: Int, items: [Item]) {
        self.end = end
        self.items = items
    }

    /// Each sample on its own, in order.
    public static func flat(_ count: Int) -> PrefixNode { PrefixNode(end: 0, items: (0..<count).map { .sample($0) }) }

    /// Every sample below this node, in the order they run.
    public var samples: [Int] {
        items.flatMap { item -> [Int] in
            switch item {
            case .sample(let i): [i]
            case .node(let n): n.samples
            }
        }
    }

    /// Tokens this node and everything below it run, its parent's `end` tokens having run.
    public func tokensRun(lengths: [Int], after start: Int = 0) -> Int {
        items.reduce(end - start) { total, item in
            switch item {
            case .sample(let i): total + lengths[i] - end
            case .node(let n): total + n.tokensRun(lengths: lengths, after: end)
            }
        }
    }
}

public enum SharedPrefix {
    /// Shorter shared beginnings are not worth a node of their own.
    public static let minimumPrefix = 16

    /// The tree over which `samples` run in the fewest tokens: samples sorted by their tokens;
    /// at each level the sorted run split into consecutive groups, each either one sample or a
    /// node over the tokens all its members share (at least `minimumPrefix` more than its
    /// parent's, and never a trained row: a node's rows hold no loss). Without `enabled`, or for
    /// one sample, each sample on its own in order.
    public static func tree(_ samples: [TokenizedSample], enabled: Bool = true) -> PrefixNode {
        guard enabled, samples.count > 1 else { return .flat(samples.count) }
        let order = samples.indices.sorted { a, b in
            let x = samples[a].tokens, y = samples[b].tokens
            return x.lexicographicallyPrecedes(y) || (x == y && a < b)
        }
        var planner = Planner(samples: samples, order: order)
        return PrefixNode(end: 0, items: planner.items(0..<order.count, after: 0))
    }

    /// The dynamic programme behind `tree`: the cheapest split of a sorted run, given the tokens
    /// that ran before it, memoised by run and start.
    private struct Planner {
        let order: [Int]
        let lengths: [Int]
        // rows before a sample's first trained row may be shared (indexed in sorted order)
        let limits: [Int]
        // tokens shared by sorted neighbours i and i + 1
        let neighbours: [Int]
        struct Key: Hashable { let run: Range<Int>, start: Int }
        var memo: [Key: (cost: Int, items: [PrefixNode.Item])] = [:]

        init(samples: [TokenizedSample], order: [Int]) {
            self.order = order
            lengths = order.map { samples[$0].tokens.count }
            limits = order.map { i in samples[i].targets.map(\.row).min() ?? max(0, samples[i].tokens.count - 2) }
            neighbours = zip(order, order.dropFirst()).map { a, b in
                zip(samples[a].tokens, samples[b].tokens).prefix { $0 == $1 }.count
            }
        }

        mutating func items(_ run: Range<Int>, after start: Int) -> [PrefixNode.Item] { plan(run, after: start).items }

        mutating func plan(_ run: Range<Int>, after start: Int) -> (cost: Int, items: [PrefixNode.Item]) {
            let key = Key(run: run, start: start)
            if let known = memo[key] { return known }
            // best[j]: the cheapest way to run the run's first j members
            let k = run.count
            var best: [(cost: Int, items: [PrefixNode.Item])] = [(0, [])]
            for j in 1...k {
                let last = run.lowerBound + j - 1
                var choice = (cost: best[j - 1].cost + lengths[last] - start, items: best[j - 1].items + [.sample(order[last])])
                // a node over members i..<j (two or more): they share the smallest of their
                // neighbours' common beginnings and of their first trained rows
                var p = limits[last]
                for i in stride(from: j - 2, through: 0, by: -1) {
                    let first = run.lowerBound + i
                    p = min(p, limits[first], neighbours[first])
                    if p - start < minimumPrefix { break }  // a larger group shares no more
                    let inner = plan(first..<last + 1, after: p)
                    let cost = best[i].cost + p - start + inner.cost
                    if cost < choice.cost {
                        choice = (cost, best[i].items + [.node(PrefixNode(end: p, items: inner.items))])
                    }
                }
                best.append(choice)
            }
            memo[key] = best[k]
            return best[k]
        }
    }
}
