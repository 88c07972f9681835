import Foundation
import Testing
import ThemisBackend

/// Dequantisation of synthetic blocks against the Python `gguf` package's
/// `gguf.quants.dequantize`, whose output `scripts/dequant-reference.py fixtures` stored in
/// `Fixtures/<type>.bin` (blocks) and `Fixtures/<type>.f32` (expected floats).
///
/// The comparison is exact (bit patterns, signed zeros included): both sides do the same IEEE f32
/// multiplies and adds in the same order.
@Suite struct DequantizeFixtureTests {
    private func fixture(_ type: StorageType, _ ext: String) throws -> Data {
        let regenerate = "scripts/dequant-reference.py fixtures Tests/ThemisBackendTests/Fixtures"
        let url = try #require(
            Bundle.module.url(forResource: type.description, withExtension: ext, subdirectory: "Fixtures"),
            "missing fixture Fixtures/\(type).\(ext); run \(regenerate)")
        return try Data(contentsOf: url)
    }

    @Test(arguments: StorageType.allCases)
    func matchesGGUFPackage(_ type: StorageType) throws {
        let blocks = try fixture(type, "bin")
        let expected = floats(from: try fixture(type, "f32"))
        try #require(type.byteCount(elements: expected.count) == blocks.count, "fixture sizes disagree for \(type)")
        let actual = blocks.withUnsafeBytes { Dequantize.row(type, $0, count: expected.count) }
        if let (index, count) = firstBitDifference(actual, expected) {
            let first = "first at \(index): \(actual[index]), gguf says \(expected[index])"
            Issue.record("\(type): \(count) of \(expected.count) values differ; \(first)")
        }
    }

    @Test(arguments: StorageType.allCases)
    func unalignedBytesGiveTheSameValues(_ type: StorageType) throws {
        let blocks = try fixture(type, "bin")
        let count = blocks.count / type.blockBytes * type.blockSize
        let aligned = blocks.withUnsafeBytes { Dequantize.row(type, $0, count: count) }
        // Shift the blocks one byte so every f16 and f32 field is misaligned.
        let shifted = Data([0]) + blocks
        var unaligned = [Float](repeating: .nan, count: count)
        shifted.withUnsafeBytes { raw in
            unaligned.withUnsafeMutableBufferPointer { out in
                guard let source = raw.baseAddress, let destination = out.baseAddress else {
                    Issue.record("\(type): no storage to dequantise \(count) values into")
                    return
                }
                Dequantize.row(type, source + 1, count: count, into: destination)
            }
        }
        #expect(firstBitDifference(unaligned, aligned) == nil)
    }

    @Test func blockDequantizeMatchesRow() throws {
        // A block's own `dequantize` is what `Dequantize.row` uses; check one directly.
        let bytes = try fixture(.q6K, "bin")
        let expected = floats(from: try fixture(.q6K, "f32"))
        try #require(bytes.count >= 2 * 210 && expected.count >= 512, "the q6_K fixture holds fewer than two blocks")
        let block = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 210, as: BlockQ6K.self) }
        var out = [Float](repeating: 0, count: 256)
        out.withUnsafeMutableBufferPointer { block.dequantize(into: $0.baseAddress!) }
        #expect(firstBitDifference(out, Array(expected[256..<512])) == nil)
    }

    @Test func emptyRow() {
        let values = [UInt8]().withUnsafeBytes { Dequantize.row(.q4K, $0, count: 0) }
        #expect(values.isEmpty)
    }
}
