import Foundation
import JSONLines
import Testing

@Suite("JSON Lines: reading")
struct JSONLReaderTests {
    func objects(_ text: String) throws -> [JSONLLine<JSONObject>] {
        try JSONLReader.decode(Data(text.utf8), as: JSONObject.self)
    }

    @Test func crlfLineEndsKeepEveryRecord() throws {
        let lines = try objects("{\"id\": \"a\"}\r\n{\"id\": \"b\"}\r\n\r\n{\"id\": \"c\"}\r\n")
        #expect(lines.map(\.line) == [1, 2, 4])
        #expect(try lines.map { try $0.value.get()["id"]?.string } == ["a", "b", "c"])
    }

    @Test func byteOrderMarkBeforeLinesAndBeforeAnArray() throws {
        let bom = "\u{FEFF}"
        let lines = try objects(bom + "{\"id\": 1}\n{\"id\": 2}\n")
        #expect(try lines.map { try $0.value.get()["id"]?.text } == ["1", "2"])
        let array = try objects(bom + "  [{\"id\": \"x\"}, {\"id\": \"y\"}, 3]")
        #expect(array.count == 3)
        #expect(try array[1].value.get()["id"]?.string == "y")
        guard case .failure(let error) = array[2].value else { Issue.record("a number is not an object"); return }
        #expect(error.description.contains("item 3"))
    }

    @Test func aBadLineIsAnErrorForThatLineAlone() throws {
        let lines = try objects("{\"id\": \"a\"}\n{\"id\": \n[1, 2]\n{\"id\": \"d\"}\n")
        #expect(lines.count == 4)
        #expect((try? lines[0].value.get()) != nil)
        #expect((try? lines[1].value.get()) == nil)
        #expect((try? lines[2].value.get()) == nil)
        #expect(try lines[3].value.get()["id"]?.string == "d")
        guard case .failure(let error) = lines[1].value else { return }
        #expect(error.description.hasPrefix("line 2:"), "\(error)")
    }

    @Test func deepNestingIsRefusedNotRecursedInto() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let lines = try objects("{\"a\": \(deep)}\n{\"id\": \"ok\"}\n")
        guard case .failure(let error) = lines[0].value else { Issue.record("100,000 levels were decoded"); return }
        #expect(error.description.contains("nested more than"))
        #expect(try lines[1].value.get()["id"]?.string == "ok")
        #expect(throws: JSONLError.self) { try objects(deep) }
        // brackets inside strings do not count
        let quoted = try objects("{\"a\": \"" + String(repeating: "[", count: 1000) + "\"}\n")
        #expect((try? quoted[0].value.get()) != nil)
    }

    @Test func numbersDecodeWithoutLosingTheirKind() throws {
        let o = try #require(try objects("{\"i\": 3, \"d\": 2.5, \"big\": 1e300, \"s\": \"4\", \"n\": null, \"b\": true}\n")[0].value.get())
        #expect(o["i"] == .int(3) && o["i"]?.int == 3)
        #expect(o["d"]?.double == 2.5 && o["d"]?.int == nil)
        #expect(o["big"]?.int == nil && o["big"]?.double == 1e300)
        #expect(o["s"]?.text == "4" && o["s"]?.double == nil)
        #expect(o["n"]?.isNull == true && o["b"]?.bool == true)
    }

    struct Typed: Codable, Sendable, Equatable {
        var id: String
        var score: Int
    }

    @Test func typedRecordsNameTheFieldThatIsWrong() throws {
        let lines = try JSONLReader.decode(Data("{\"id\": \"a\", \"score\": 3}\n{\"id\": \"b\", \"score\": \"x\"}\n{\"score\": 1}\n".utf8), as: Typed.self)
        #expect(try lines[0].value.get() == Typed(id: "a", score: 3))
        guard case .failure(let wrongType) = lines[1].value, case .failure(let missing) = lines[2].value else {
            Issue.record("bad records decoded"); return
        }
        #expect(wrongType.description.contains("score"), "\(wrongType)")
        #expect(missing.description.contains("no 'id' field"), "\(missing)")
    }
}

@Suite("JSON Lines: writing and resuming")
struct JSONLWriterTests {
    struct Record: Codable, Sendable, Equatable {
        var id: String
        var status: String
    }

    func temporary() -> String { NSTemporaryDirectory() + "jsonl-\(UUID().uuidString).jsonl" }

    func prepare(_ path: String, retryErrors: Bool = false) throws -> JSONLResume.State {
        try JSONLResume.prepare(path, as: Record.self, id: \.id, isError: { $0.status == "error" }, retryErrors: retryErrors)
    }

    @Test func appendsWholeLinesAndRefusesAnExistingFile() throws {
        let path = temporary()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try JSONLWriter(path: path, existing: .refuse)
        try w.append(Record(id: "a", status: "ok"))
        try w.append(Record(id: "b", status: "ok"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"status\":\"ok\"}\n")
        #expect(throws: JSONLError.self) { try JSONLWriter(path: path, existing: .refuse) }
    }

    @Test func aCompleteLastRecordWithoutNewlineIsKept() throws {
        let path = temporary()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"status\":\"ok\"}".utf8).write(to: URL(fileURLWithPath: path))
        let state = try prepare(path)
        #expect(state.done == ["a", "b"] && state.finishedLastLine && !state.removedPartialLine)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"status\":\"ok\"}\n")
        // a file of one record without a newline is not emptied either
        try Data("{\"id\":\"z\",\"status\":\"ok\"}".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try prepare(path).done == ["z"])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"id\":\"z\",\"status\":\"ok\"}\n")
    }

    @Test func aPartialLastLineIsRemovedAndCRLFKept() throws {
        let path = temporary()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("{\"id\":\"a\",\"status\":\"ok\"}\r\n{\"id\":\"b\",\"sta".utf8).write(to: URL(fileURLWithPath: path))
        let state = try prepare(path)
        #expect(state.done == ["a"] && state.removedPartialLine)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"id\":\"a\",\"status\":\"ok\"}\r\n")
    }

    @Test func errorRecordsAreDoneUnlessRetriedAndDuplicatesAreNamed() throws {
        let path = temporary()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = "{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"status\":\"error\"}\nnot json\n{\"id\":\"a\",\"status\":\"ok\"}\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let kept = try prepare(path)
        #expect(kept.done == ["a", "b"] && kept.retried == 0 && kept.duplicateIDs == ["a"] && kept.unreadableLines == [3])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == text)
        let retried = try prepare(path, retryErrors: true)
        #expect(retried.done == ["a"] && retried.retried == 1)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"id\":\"a\",\"status\":\"ok\"}\nnot json\n{\"id\":\"a\",\"status\":\"ok\"}\n")
    }

    @Test func aFailedWriteIsAnErrorNotACrash() throws {
        // /dev/full fails every write with ENOSPC, as a full disk does
        let w = try JSONLWriter(path: "/dev/full", existing: .append)
        #expect(throws: JSONLError.self) { try w.append(Record(id: "a", status: "ok")) }
    }
}
