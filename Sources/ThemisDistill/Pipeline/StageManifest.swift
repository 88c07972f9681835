import Foundation
import JSONLines
import ThemisClient

/// What a stage did, written beside its output when it completes (atomically).
public struct StageManifest: Codable, Sendable, Equatable {
    public var stage: String
    /// FNV-1a of the stage's configuration: a resumed run with another configuration is refused.
    public var configHash: String
    public var complete: Bool
    public var counts: [String: Int]
    /// Dropped records by reason.
    public var dropped: [String: Int]

    public init(stage: String, configHash: String, complete: Bool = false, counts: [String: Int] = [:], dropped: [String: Int] = [:]) {
        self.stage = stage
        self.configHash = configHash
        self.complete = complete
        self.counts = counts
        self.dropped = dropped
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try encoder.encode(self), to: URL(fileURLWithPath: path))
    }

    public static func read(_ path: String) -> StageManifest? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(StageManifest.self, from: data)
    }
}

/// Errors of the distillation pipeline.
public enum DistillError: Error, CustomStringConvertible, Sendable {
    case io(String)
    case badInput(String)
    case config(String)

    public var description: String {
        switch self {
        case .io(let s), .badInput(let s), .config(let s): return s
        }
    }
}
