import BackendConformance
import Testing
import ThemisBackend
import VulkanBackend

/// How the Vulkan backend runs work: recorded, submitted once when a result is needed, with
/// pipelines and descriptor sets made once and found again.
@Suite("Vulkan execution", .serialized, .enabled(if: !VulkanDevices.all.isEmpty, "no Vulkan device"))
struct VulkanExecutionTests {
    /// A small transformer-like step: norm, three projections, RoPE, cache write, attention,
    /// projection, residual, then a read.
    func step(_ b: VulkanBackend, _ t: [String: Tensor], position: Int) throws -> [Float] {
        b.rmsNorm(t["x"]!, weight: t["norm"]!, epsilon: 1e-5, into: t["h"]!)
        b.matmul(t["h"]!, weights: [t["wq"]!, t["wk"]!, t["wv"]!], into: [t["q"]!, t["k"]!, t["v"]!])
        b.rope(t["q"]!, headDim: 32, ropeDim: 32, startPosition: position, freqBase: 10_000, layout: .halfSplit)
        b.rope(t["k"]!, headDim: 32, ropeDim: 32, startPosition: position, freqBase: 10_000, layout: .halfSplit)
        b.copyRows(t["k"]!, into: t["keys"]!, atRow: position)
        b.copyRows(t["v"]!, into: t["values"]!, atRow: position)
        b.attention(q: t["q"]!, keys: t["keys"]!, values: t["values"]!, headCount: 4, headCountKV: 2,
                    startPosition: position, scale: 0.2, into: t["attn"]!)
        b.matmul(t["attn"]!, weight: t["wo"]!, into: t["h"]!)
        b.add(t["x"]!, t["h"]!, into: t["x"]!)
        return try b.read(t["x"]!)
    }

    @Test func oneSubmissionPerStepAndNoNewObjectsAfterTheFirst() throws {
        let provider = VulkanProvider()
        let b = try provider.makeVulkanBackend(on: try #require(VulkanDevices.all.first))
        var inputs = Inputs(seed: 3)
        var bytes: [ByteBox] = []
        func weight(_ rows: Int) throws -> Tensor {
            let box = ByteBox(inputs.weightBytes(.q8_0, rows: rows, k: 128))
            bytes.append(box)
            return try b.makeWeight(type: .q8_0, shape: [rows, 128], bytes: UnsafeRawBufferPointer(box.bytes))
        }
        var t: [String: Tensor] = [:]
        t["x"] = try b.makeTensor(shape: [1, 128])
        b.write(inputs.floats(128), to: t["x"]!)
        t["norm"] = try b.makeTensor(shape: [1, 128])
        b.write(inputs.floats(128), to: t["norm"]!)
        for name in ["h", "q", "attn"] { t[name] = try b.makeTensor(shape: [1, 128]) }
        for name in ["k", "v"] { t[name] = try b.makeTensor(shape: [1, 64]) }
        for name in ["keys", "values"] { t[name] = try b.makeTensor(shape: [16, 64]) }
        t["wq"] = try weight(128); t["wk"] = try weight(64); t["wv"] = try weight(64); t["wo"] = try weight(128)
        try b.synchronize()

        _ = try step(b, t, position: 0)
        let afterFirst = b.statistics
        for position in 1..<6 {
            let before = b.statistics
            let x = try step(b, t, position: position)
            #expect(x.allSatisfy { $0.isFinite })
            let after = b.statistics
            #expect(after.submissions == before.submissions + 1, "step \(position) submitted \(after.submissions - before.submissions) times")
        }
        let last = b.statistics
        #expect(last.pipelines == afterFirst.pipelines)
        #expect(last.descriptorSets == afterFirst.descriptorSets)
        withExtendedLifetime(bytes) {}
    }

    @Test func anActivationLargerThanOneBindingIsAClearError() throws {
        let device = try #require(VulkanDevices.all.first)
        let b = try VulkanProvider().makeVulkanBackend(on: device)
        let limit = device.features.maxBufferRange
        do {
            _ = try b.makeTensor(shape: [limit / 4 / 1024 + 1, 1024])
            Issue.record("a tensor larger than one binding was made")
        } catch {
            #expect(String(describing: error).contains("exceeds vulkan:0's largest binding"), "\(error)")
        }
    }
}
