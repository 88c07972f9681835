import Foundation
import Testing
import ThemisTestSupport
import VulkanBackend

/// The SPIR-V embedded at build time, checked by spirv-val (Debian: spirv-tools).
@Suite("embedded SPIR-V")
struct ShaderValidationTests {
    static let spirvVal: String? = ["/usr/bin/spirv-val", "/usr/local/bin/spirv-val"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test func everyManifestModuleIsEmbedded() throws {
        let names = Set(ShaderLibrary.names)
        let types = ["f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k"]
        for t in types {
            for name in ["matvec_\(t)_subgroup0", "matvec_\(t)_subgroup1", "matmul_\(t)", "get_rows_\(t)"] {
                #expect(names.contains(name), "missing \(name)")
            }
        }
        for name in ["add", "rms_norm", "rope", "glu_silu", "glu_gelu", "unary_scale", "unary_softcap", "attention", "softmax_log0", "softmax_log1", "quantize_q8"] {
            #expect(names.contains(name), "missing \(name)")
        }
    }

    @Test(arguments: ShaderLibrary.names)
    func validates(_ name: String) throws {
        let validator = try #require(Self.spirvVal, "spirv-val not found: install spirv-tools (make deps)")
        let words = try #require(ShaderLibrary.words(name))
        #expect(words.first == 0x0723_0203, "\(name) does not start with the SPIR-V magic number")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("themis-\(getpid())-\(name).spv")
        try words.withUnsafeBytes { try Data($0).write(to: file) }
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try ChildProcess.run(validator, ["--target-env", "vulkan1.1", file.path], limit: Budget.limit(measured: 2))
        #expect(run.termination == .exited(0), "spirv-val rejected \(name): \(run.stdout)\(run.stderr)")
    }
}
