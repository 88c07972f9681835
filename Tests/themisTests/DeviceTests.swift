import Foundation
import Testing

/// Device listing and the fall-back to the CPU, with the real Vulkan loader and lavapipe.
@Suite("command line: devices", .serialized)
struct DeviceTests {
    @Test func listsLavapipeAndTheCPU() throws {
        let o = try CLI.run(["devices"])
        #expect(o.status == 0)
        // lavapipe (mesa-vulkan-drivers, installed by make) is a software device: listed, not auto
        #expect(o.stdout.contains("vulkan:0\tsoftware\tllvmpipe"), "stdout: \(o.stdout)")
        #expect(o.stdout.contains("subgroup size"))
        #expect(o.stdout.contains("auto -> cpu"))
    }

    @Test func noDriverFallsBackToTheCPUWithOneLine() throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--prompt", "The quick brown fox", "--max-tokens", "4",
                             "--temperature", "0"], environment: ["VK_DRIVER_FILES": "/nonexistent"])
        #expect(o.status == 0, "stderr: \(o.stderr)")
        #expect(o.stderrLines.count == 1 && o.stderr.contains("running on the CPU"), "stderr: \(o.stderr)")
        #expect(!o.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    @Test func noLoaderFallsBackToTheCPUWithOneLine() throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--prompt", "The quick brown fox", "--max-tokens", "4",
                             "--temperature", "0"], environment: ["THEMIS_VULKAN_LOADER": "/nonexistent/libvulkan.so.1"])
        #expect(o.status == 0, "stderr: \(o.stderr)")
        #expect(o.stderrLines.count == 1 && o.stderr.contains("Vulkan loader not available"), "stderr: \(o.stderr)")
    }

    @Test func lavapipeOnlyIsSilentUnderAuto() throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--prompt", "The quick brown fox", "--max-tokens", "4",
                             "--temperature", "0"])
        #expect(o.status == 0)
        #expect(o.stderr.isEmpty, "stderr: \(o.stderr)")
    }

    @Test func namedVulkanDeviceGenerates() throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--chat", "What is the capital of France? Answer in one sentence.",
                             "--device", "vulkan:0", "--temperature", "0", "--max-tokens", "8"], measured: 45)
        #expect(o.status == 0, "stderr: \(o.stderr)")
        #expect(o.stderr.isEmpty, "stderr: \(o.stderr)")
        #expect(o.stdout.hasPrefix("The capital of France is Paris"), "stdout: \(o.stdout)")
    }

    @Test func kernelBenchmarksPrintATableOnEveryDevice() throws {
        for device in ["cpu", "vulkan:0"] {
            let o = try CLI.run(["bench", "kernels", "--device", device, "--filter", "smollm2 attn_k", "--prefill-tokens", "16",
                                 "--reps", "1"], measured: 1)
            #expect(o.status == 0, "stderr: \(o.stderr)")
            let rows = o.stdout.split(separator: "\n").filter { $0.hasPrefix("| matmul | smollm2 attn_k 192x576") }
            #expect(rows.count == 2, "stdout: \(o.stdout)")
            #expect(o.stdout.contains("device: \(device)"))
        }
        let none = try CLI.run(["bench", "kernels", "--device", "cpu", "--filter", "no such kernel"])
        #expect(none.status != 0)
    }

    @Test func conformanceCommandPassesOnEveryDevice() throws {
        for device in ["cpu", "vulkan:0"] {
            let o = try CLI.run(["conformance", "--device", device, "--filter", "q4_K"], measured: 5)
            #expect(o.status == 0, "stderr: \(o.stderr) stdout: \(o.stdout)")
            #expect(o.stdout.contains("cases within tolerance on \(device)"), "stdout: \(o.stdout)")
        }
    }

    @Test func missingVulkanDeviceListsTheDevices() throws {
        let o = try CLI.run(["generate", "--model", CLI.smollm, "--prompt", "hi", "--device", "vulkan:7"])
        #expect(o.status == 2)
        #expect(o.stderr.contains("available: vulkan:0, cpu"), "stderr: \(o.stderr)")
    }
}
