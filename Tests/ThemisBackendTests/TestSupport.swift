import Foundation
import Testing

/// Expects `actual` and `expected` to agree element-wise within `tolerance · max(1, |expected|)`.
func expectClose(
    _ actual: [Float], _ expected: [Float], tolerance: Float = 1e-6,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(
        actual.count == expected.count, "\(actual.count) values, expected \(expected.count)",
        sourceLocation: sourceLocation)
    for (i, (a, e)) in zip(actual, expected).enumerated() where !(abs(a - e) <= tolerance * max(1, abs(e))) {
        Issue.record(
            "element \(i): \(a), expected \(e) (all: \(actual) vs \(expected))", sourceLocation: sourceLocation)
        return
    }
}

/// The index of the first element whose bit pattern differs, with how many differ; nil if none.
///
/// Bit patterns, not `==`, so that `-0` versus `+0` counts as a difference.
func firstBitDifference(_ actual: [Float], _ expected: [Float]) -> (index: Int, count: Int)? {
    precondition(actual.count == expected.count)
    var first: Int?
    var count = 0
    for i in actual.indices where actual[i].bitPattern != expected[i].bitPattern {
        first = first ?? i
        count += 1
    }
    return first.map { ($0, count) }
}

/// Little-endian float32 values from `data`.
func floats(from data: Data) -> [Float] {
    data.withUnsafeBytes { raw in
        (0..<raw.count / 4).map {
            Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
        }
    }
}

/// The package root: the nearest folder above this file that holds `scripts/dequant-reference.py`.
func repositoryRoot(from file: String = #filePath) -> URL? {
    var folder = URL(fileURLWithPath: file).deletingLastPathComponent()
    while folder.path != "/" {
        if FileManager.default.fileExists(atPath: folder.appendingPathComponent("scripts/dequant-reference.py").path) {
            return folder
        }
        folder.deleteLastPathComponent()
    }
    return nil
}
