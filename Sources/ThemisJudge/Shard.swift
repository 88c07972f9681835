import Foundation
import ThemisClient

/// One of `count` deterministic parts of an input (`--shard K/N`, K from 0): a record belongs to
/// the shard its id hashes to, so the N shards together hold every record exactly once, and
/// adding records to the input moves none of the others between shards.
///
/// K counts from 0 so that it is a Kubernetes Indexed Job's completion index or a Slurm array
/// task id as it is.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, (0..<count).contains(index) else {
            throw JudgeError.invalid("a shard is K/N with N >= 1 and 0 <= K < N (got \(index)/\(count))")
        }
        self.index = index
        self.count = count
    }

    /// Parses `K/N`.
    public init(_ spec: String) throws {
        let parts = spec.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let n = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
            throw JudgeError.invalid("a shard is K/N, e.g. 0/4 (got '\(spec)')")
        }
        try self.init(index: k, count: n)
    }

    /// The shard a record id falls in: FNV-1a of its UTF-8 bytes, modulo the count.
    public static func index(of id: String, count: Int) -> Int {
        Int(FNV1a.hash(id.utf8) % UInt64(max(count, 1)))
    }

    public func contains(id: String) -> Bool { Self.index(of: id, count: count) == index }

    public var description: String { "\(index)/\(count)" }
}
