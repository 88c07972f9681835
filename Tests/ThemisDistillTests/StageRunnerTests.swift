import Foundation
import Testing
import ThemisDistill

/// The stage runner: ordered output under concurrency, failures recorded with their reason,
/// resumption of cut items, configuration changes refused.
@Suite("distillation: stage runner")
struct StageRunnerTests {
    static func directory() -> String { NSTemporaryDirectory() + "themis-stage-\(UUID().uuidString)" }

    static let items = (0..<20).map { WorkItem(id: "item-\($0)", payload: ["n": $0]) }

    /// Items finish out of order (later ones sooner); every fifth fails.
    static func work(_ item: WorkItem) async -> ItemOutcome {
        guard let n = item.payload["n"] as? Int else { return .failed("no number n in the payload of \(item.id)") }
        try? await Task.sleep(nanoseconds: UInt64((20 - n) * 2_000_000))
        if n % 5 == 4 { return .failed("teacher gave up: HTTP 503") }
        return .records((0..<(n % 3 + 1)).map { ["id": "\(item.id)-\($0)", "value": n * 10 + $0] })
    }

    @Test func recordsInItemOrderWithFailuresKept() async throws {
        let dir = Self.directory()
        let runner = StageRunner(stage: "demo", directory: dir, configHash: "a", concurrency: 6)
        let manifest = try await runner.run(Self.items, work: Self.work)
        let lines = try JSONLReader.read(runner.outputPath)
        let itemIDs = try lines.map { line in try #require(line["item"] as? String, "a line without its item: \(line)") }
        let numbered = try itemIDs.map { id in (id: id, n: try #require(Int(id.dropFirst(5)), "item id \(id) is not item-<n>")) }
        #expect(itemIDs == numbered.sorted { $0.n < $1.n }.map(\.id))
        let failed = lines.filter { $0["failed"] != nil }
        #expect(failed.count == 4 && failed.allSatisfy { $0["failed"] as? String == "teacher gave up: HTTP 503" })
        #expect(manifest.complete && manifest.counts["failed"] == 4 && manifest.dropped["teacher gave up: HTTP 503"] == 4)
        #expect(try StageRunner.records(runner.outputPath).count == lines.count - 4)
        // another configuration in the same directory is refused
        let other = StageRunner(stage: "demo", directory: dir, configHash: "b", concurrency: 1)
        await #expect(throws: DistillError.self) { try await other.run(Self.items, work: Self.work) }
    }

    @Test func aCutOutputResumesToTheSameFile() async throws {
        let whole = Self.directory(), cut = Self.directory()
        let a = StageRunner(stage: "demo", directory: whole, configHash: "a", concurrency: 4)
        _ = try await a.run(Self.items, work: Self.work)
        let full = try Data(contentsOf: URL(fileURLWithPath: a.outputPath))
        // as if killed: the first 7 lines and half of the eighth
        let b = StageRunner(stage: "demo", directory: cut, configHash: "a", concurrency: 4)
        try FileManager.default.createDirectory(atPath: cut, withIntermediateDirectories: true)
        let lines = full.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        var partial = Data(lines.prefix(7).joined(separator: [UInt8(ascii: "\n")])) + Data("\n".utf8)
        try #require(lines.count > 7, "the whole run wrote \(lines.count) lines")
        partial += lines[7].prefix(lines[7].count / 2)
        try partial.write(to: URL(fileURLWithPath: b.outputPath))
        try StageManifest(stage: "demo", configHash: "a").write(to: b.manifestPath)
        let calls = Counter()
        _ = try await b.run(Self.items) { item in
            await calls.add()
            return await Self.work(item)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: b.outputPath)) == full)
        #expect(await calls.value < Self.items.count, "finished items were not redone")
    }

    actor Counter {
        var value = 0
        func add() { value += 1 }
    }
}
