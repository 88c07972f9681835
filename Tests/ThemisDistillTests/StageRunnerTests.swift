import Foundation
import JSONLines
import Testing
import ThemisDistill

/// The stage runner: ordered output under concurrency, failures recorded with their reason,
/// resumption of cut items, configuration changes refused.
@Suite("distillation: stage runner")
struct StageRunnerTests {
    static func directory() -> String { NSTemporaryDirectory() + "themis-stage-\(UUID().uuidString)" }

    static let items = (0..<20).map { WorkItem(id: "item-\($0)", payload: $0) }

    struct Value: Codable, Sendable, Equatable {
        var id: String
        var value: Int
    }

    /// Items finish out of order (later ones sooner); every fifth fails.
    static func work(_ item: WorkItem<Int>) async -> ItemOutcome<Value> {
        let n = item.payload
        try? await Task.sleep(nanoseconds: UInt64((20 - n) * 2_000_000))
        if n % 5 == 4 { return .failed("teacher gave up: HTTP 503") }
        return .records((0..<(n % 3 + 1)).map { Value(id: "\(item.id)-\($0)", value: n * 10 + $0) })
    }

    @Test func recordsInItemOrderWithFailuresKept() async throws {
        let dir = Self.directory()
        let runner = StageRunner(stage: "demo", directory: dir, configHash: "a", concurrency: 6)
        let manifest = try await runner.run(Self.items, work: Self.work)
        let lines = try JSONLReader.read(runner.outputPath, as: JSONObject.self).map { try $0.value.get() }
        let itemIDs = try lines.map { line in try #require(line["item"]?.string, "a line without its item: \(line)") }
        let numbered = try itemIDs.map { id in (id: id, n: try #require(Int(id.dropFirst(5)), "item id \(id) is not item-<n>")) }
        #expect(itemIDs == numbered.sorted { $0.n < $1.n }.map(\.id))
        let failed = lines.filter { $0["failed"] != nil }
        #expect(failed.count == 4 && failed.allSatisfy { $0["failed"]?.string == "teacher gave up: HTTP 503" })
        #expect(manifest.complete && manifest.counts["failed"] == 4 && manifest.dropped["teacher gave up: HTTP 503"] == 4)
        let records = try StageRunner.records(runner.outputPath, as: Value.self, id: \.id)
        #expect(records.records.count == lines.count - 4 && records.rejected.isEmpty)
        #expect(records.records.first == Value(id: "item-0-0", value: 0))
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

    /// A hand-edited stage file: a field of the wrong type, a line that is not JSON, a repeated
    /// id. Each is rejected with its line number; the good records are read.
    @Test func handEditedLinesAreRejectedWithTheirLineNumbers() async throws {
        let dir = Self.directory()
        let runner = StageRunner(stage: "demo", directory: dir, configHash: "a", concurrency: 2)
        _ = try await runner.run(Self.items, work: Self.work)
        var text = try String(contentsOfFile: runner.outputPath, encoding: .utf8)
        text += #"{"id": "x", "value": "forty-two", "item": "x", "index": 0, "of": 1}"# + "\n"
        text += "{not json\n"
        text += #"{"id": "item-0-0", "value": 7, "item": "y", "index": 0, "of": 1}"# + "\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: runner.outputPath))
        let lines = text.split(separator: "\n").count
        let read = try StageRunner.records(runner.outputPath, as: Value.self, id: \.id)
        #expect(read.rejected.count == 3, "\(read.rejected)")
        #expect(read.rejected[0].reason.contains("line \(lines - 2) of demo.jsonl") && read.rejected[0].reason.contains("value"), "\(read.rejected[0])")
        #expect(read.rejected[1].reason.contains("line \(lines - 1) of demo.jsonl: not valid JSON"), "\(read.rejected[1])")
        #expect(read.rejected[2].reason.contains("id 'item-0-0' is already on line 1"), "\(read.rejected[2])")
        #expect(read.records.count == lines - 3 - 4)
        // the next stage records each rejected line as a failed item and goes on
        let next = StageRunner(stage: "next", directory: dir, configHash: "a", concurrency: 2)
        let manifest = try await next.run(read.records.map { WorkItem(id: $0.id, payload: $0) }, rejected: read.rejected) {
            .records([$0.payload])
        }
        #expect(manifest.counts["failed"] == 3 && manifest.counts["records"] == read.records.count, "\(manifest)")
    }

    actor Counter {
        var value = 0
        func add() { value += 1 }
    }
}
