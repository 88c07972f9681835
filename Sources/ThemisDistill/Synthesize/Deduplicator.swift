import Foundation

/// Drops near-duplicate texts (generated instructions): equal after normalisation, or word n-gram
/// Jaccard similarity at or above a threshold with a text kept earlier. Each drop names the kept
/// text it duplicates.
public struct Deduplicator: Sendable {
    /// Word n-grams compared (3: trigrams).
    public var n = 3
    /// Jaccard similarity at which a text counts as a duplicate.
    public var threshold = 0.7

    public init(n: Int = 3, threshold: Double = 0.7) {
        self.n = n
        self.threshold = threshold
    }

    /// Lower case, punctuation to spaces, runs of white space to one space.
    public static func normalise(_ text: String) -> String {
        let mapped = text.lowercased().unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? Character($0) : " " }
        return String(mapped).split(separator: " ").joined(separator: " ")
    }

    /// The set of word n-grams (the whole text when it has fewer than n words).
    public func shingles(_ normalised: String) -> Set<String> {
        let words = normalised.split(separator: " ")
        guard words.count >= n else { return [normalised] }
        return Set((0...(words.count - n)).map { words[$0..<($0 + n)].joined(separator: " ") })
    }

    public static func jaccard(_ a: Set<String>, _ b: Set<String>) -> Double {
        let union = a.union(b).count
        return union == 0 ? 1 : Double(a.intersection(b).count) / Double(union)
    }

    /// Keeps texts in order; a text is compared only with kept texts sharing one of its n-grams
    /// (an inverted index), so large sets stay cheap.
    public func filter(_ texts: [(id: String, text: String)]) -> (kept: [String], dropped: [(id: String, reason: String)]) {
        var kept: [String] = [], dropped: [(String, String)] = []
        var exact: [String: String] = [:]
        var keptShingles: [Set<String>] = []
        var index: [String: [Int]] = [:]
        for (id, text) in texts {
            let norm = Self.normalise(text)
            if let first = exact[norm] { dropped.append((id, "duplicate of \(first) (same text)")); continue }
            let s = shingles(norm)
            var candidates = Set<Int>()
            for g in s { for k in index[g, default: []] { candidates.insert(k) } }
            if let (k, similarity) = candidates.map({ ($0, Self.jaccard(s, keptShingles[$0])) }).max(by: { $0.1 < $1.1 }),
               similarity >= threshold {
                dropped.append((id, "duplicate of \(kept[k]) (Jaccard \(String(format: "%.2f", similarity)))"))
                continue
            }
            exact[norm] = id
            for g in s { index[g, default: []].append(kept.count) }
            kept.append(id)
            keptShingles.append(s)
        }
        return (kept, dropped)
    }
}
