import Testing
import ThemisBackend

/// `(storage type, size, stride)` of a block struct.
private func layout<Block: QuantBlock>(_: Block.Type) -> (StorageType, size: Int, stride: Int) {
    (Block.storageType, MemoryLayout<Block>.size, MemoryLayout<Block>.stride)
}

private let blockLayouts = [
    layout(BlockQ4_0.self), layout(BlockQ4_1.self), layout(BlockQ5_0.self), layout(BlockQ5_1.self),
    layout(BlockQ8_0.self), layout(BlockQ4K.self), layout(BlockQ5K.self), layout(BlockQ6K.self),
]

@Suite struct QuantBlockLayoutTests {
    @Test func blockSizesMatchGGML() {
        let ggml: [StorageType: Int] = [
            .q4_0: 18, .q4_1: 20, .q5_0: 22, .q5_1: 24, .q8_0: 34, .q4K: 144, .q5K: 176, .q6K: 210,
        ]
        for (type, size, stride) in blockLayouts {
            #expect(size == ggml[type], "\(type) block is \(size) bytes")
            #expect(size == type.blockBytes, "\(type) block is \(size) bytes, StorageType says \(type.blockBytes)")
            // Blocks sit back to back in GGUF, so an array of them must have no padding either.
            #expect(stride == size, "\(type) block stride \(stride) != size \(size)")
        }
    }

    @Test func everyQuantisedTypeHasOneBlock() {
        let quantised = StorageType.allCases.filter { $0.blockSize > 1 }
        #expect(Set(blockLayouts.map(\.0)) == Set(quantised))
        #expect(blockLayouts.count == quantised.count)
    }

    @Test func elementCountIsTheBlockSize() {
        #expect(BlockQ4_0.elementCount == 32)
        #expect(BlockQ8_0.elementCount == 32)
        #expect(BlockQ4K.elementCount == 256)
        #expect(BlockQ6K.elementCount == 256)
    }

    @Test func halfPrecisionConversion() {
        #expect(Dequantize.f16(0x3C00) == 1)
        #expect(Dequantize.f16(0xC000) == -2)
        #expect(Dequantize.f16(0x7BFF) == 65504)
        #expect(Dequantize.f16(0x0001) == 0x1p-24)
        #expect(Dequantize.f16(0x03FF) == 1023 * 0x1p-24)
        #expect(Dequantize.f16(0x8000).bitPattern == (-0.0 as Float).bitPattern)
        #expect(Dequantize.f16(0x7C00) == .infinity)
        #expect(Dequantize.f16(0xFC00) == -.infinity)
        #expect(Dequantize.f16(0x7E00).isNaN)
        #expect(Dequantize.bf16(0x3F80) == 1)
        #expect(Dequantize.bf16(0xC040) == -3)
    }

    #if !(os(macOS) && arch(x86_64))
        // `Float16` is unavailable on Intel macOS; elsewhere it checks all 65,536 bit patterns.
        @Test func halfPrecisionMatchesFloat16() {
            for bits in 0...UInt16.max {
                let expected = Float(Float16(bitPattern: bits))
                let actual = Dequantize.f16(bits)
                if expected.isNaN {
                    #expect(actual.isNaN, "f16 \(bits)")
                } else if actual.bitPattern != expected.bitPattern {
                    Issue.record("f16 bits \(bits): \(actual), expected \(expected)")
                    return
                }
            }
        }
    #endif
}
