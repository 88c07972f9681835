import Foundation
import Testing
import ThemisBackend
import ThemisModel

/// The GGUF reader on files written here: every metadata value type, nested arrays, versions 2
/// and 3, a custom alignment, tensor infos and their bytes.
@Suite("GGUF reader")
struct GGUFFileTests {
    struct Writer {
        var out: [UInt8] = []
        mutating func raw<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        mutating func string(_ s: String) { raw(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        mutating func key(_ k: String, type: UInt32) { string(k); raw(type) }
    }

    static func file(version: UInt32, alignment: UInt32?) -> [UInt8] {
        var w = Writer()
        w.raw(UInt32(0x4655_4747))
        w.raw(version)
        w.raw(UInt64(2))  // tensors
        w.raw(UInt64(alignment == nil ? 15 : 16))
        w.key("u8", type: 0); w.raw(UInt8(200))
        w.key("i8", type: 1); w.raw(Int8(-100))
        w.key("u16", type: 2); w.raw(UInt16(60_000))
        w.key("i16", type: 3); w.raw(Int16(-30_000))
        w.key("u32", type: 4); w.raw(UInt32(4_000_000_000))
        w.key("i32", type: 5); w.raw(Int32(-2_000_000_000))
        w.key("f32", type: 6); w.raw(Float(1.5).bitPattern)
        w.key("bool", type: 7); w.raw(UInt8(1))
        w.key("str", type: 8); w.string("héllo ✓")
        w.key("u64", type: 10); w.raw(UInt64(1) << 40)
        w.key("i64", type: 11); w.raw(Int64(-1) << 40)
        w.key("f64", type: 12); w.raw(Double(-2.25).bitPattern)
        w.key("ints", type: 9); w.raw(UInt32(5)); w.raw(UInt64(3)); w.raw(Int32(1)); w.raw(Int32(-2)); w.raw(Int32(3))
        w.key("strs", type: 9); w.raw(UInt32(8)); w.raw(UInt64(2)); w.string("a"); w.string("")
        w.key("nested", type: 9); w.raw(UInt32(9)); w.raw(UInt64(2))
        w.raw(UInt32(6)); w.raw(UInt64(1)); w.raw(Float(0.5).bitPattern)
        w.raw(UInt32(7)); w.raw(UInt64(2)); w.raw(UInt8(0)); w.raw(UInt8(1))
        if let alignment { w.key("general.alignment", type: 4); w.raw(alignment) }
        // tensor infos: a [2, 3] f32 and a [64] q8_0 (2 blocks), dims innermost first
        w.string("a"); w.raw(UInt32(2)); w.raw(UInt64(3)); w.raw(UInt64(2)); w.raw(UInt32(0)); w.raw(UInt64(0))
        let second = UInt64((24 + Int(alignment ?? 32) - 1) / Int(alignment ?? 32) * Int(alignment ?? 32))
        w.string("b"); w.raw(UInt32(1)); w.raw(UInt64(64)); w.raw(UInt32(8)); w.raw(second)
        let align = Int(alignment ?? 32)
        while w.out.count % align != 0 { w.out.append(0) }
        for i in 0..<6 { w.raw(Float(i).bitPattern) }
        while w.out.count % align != 0 { w.out.append(0) }
        w.out += (0..<68).map { UInt8($0) }
        return w.out
    }

    static func open(_ bytes: [UInt8]) throws -> GGUFFile {
        let path = NSTemporaryDirectory() + "gguf-test-\(UUID().uuidString).gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try GGUFFile(path: path)  // the mapping stays valid after the name is removed
    }

    @Test(arguments: [(UInt32(2), UInt32?.none), (3, nil), (3, 64)])
    func readsEveryValueType(version: UInt32, alignment: UInt32?) throws {
        let f = try Self.open(Self.file(version: version, alignment: alignment))
        #expect(f.version == version)
        #expect(f.alignment == Int(alignment ?? 32))
        #expect(f.metadata["u8"] == .uint8(200) && f.metadata["i8"] == .int8(-100))
        #expect(f.metadata["u16"] == .uint16(60_000) && f.metadata["i16"] == .int16(-30_000))
        #expect(f.metadata["u32"] == .uint32(4_000_000_000) && f.metadata["i32"] == .int32(-2_000_000_000))
        #expect(f.metadata["u64"] == .uint64(1 << 40) && f.metadata["i64"] == .int64(-1 << 40))
        #expect(f.metadata["f32"] == .float32(1.5) && f.metadata["f64"] == .float64(-2.25))
        #expect(f.metadata["bool"] == .bool(true) && f.metadata["str"] == .string("héllo ✓"))
        #expect(try f.intArray("ints") == [1, -2, 3])
        #expect(try f.stringArray("strs") == ["a", ""])
        #expect(f.metadata["nested"] == .array([.array([.float32(0.5)]), .array([.bool(false), .bool(true)])]))
        #expect(f.metadataKeys.first == "u8")
        #expect(throws: GGUFError.wrongValueType(key: "str", expected: "an integer")) { try f.int("str") }
        #expect(throws: GGUFError.missingKey("absent")) { try f.string("absent") }

        let a = try #require(f.tensorInfo("a"))
        #expect(a.shape == [2, 3] && a.type == .f32 && a.byteCount == 24)
        #expect(Array(f.bytes(of: a).bindMemory(to: Float.self)) == [0, 1, 2, 3, 4, 5])
        let b = try #require(f.tensorInfo("b"))
        #expect(b.shape == [64] && b.type == .q8_0 && b.byteCount == 68)
        #expect(Array(f.bytes(of: b)) == (0..<68).map { UInt8($0) })
        #expect(b.fileOffset % Int(alignment ?? 32) == 0)
    }

    @Test func badAlignmentIsAnError() throws {
        #expect(throws: GGUFError.self) { try Self.open(Self.file(version: 3, alignment: 48)) }
    }
}
