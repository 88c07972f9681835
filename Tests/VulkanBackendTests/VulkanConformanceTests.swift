import BackendConformance
import Testing
import ThemisBackend
import VulkanBackend

/// The Vulkan devices present (lavapipe on CI); the tests of a machine without any are skipped.
enum VulkanDevices {
    static let all: [DeviceInfo] = VulkanProvider().devices().devices
    /// One backend per device, and three more on the first: one with subgroup arithmetic turned
    /// off (the shared-memory reductions), one that splits weights into 4 KiB pieces (the path
    /// of tensors larger than one binding, such as Qwen2.5's 145 MB embedding on lavapipe), one
    /// that rounds one-token activations to 8 bits.
    static let backends: [VulkanBackend] = {
        let provider = VulkanProvider()
        var list = all.compactMap { try? provider.makeVulkanBackend(on: $0) }
        if let first = all.first {
            if let plain = try? provider.makeVulkanBackend(on: first, subgroups: false) { list.append(plain) }
            if let split = try? provider.makeVulkanBackend(on: first, pieceLimit: 4096) { list.append(split) }
            if let rounding = try? provider.makeVulkanBackend(on: first, roundDecodeActivations: true) { list.append(rounding) }
        }
        return list
    }()
}

@Suite("Vulkan backend conformance", .serialized, .enabled(if: !VulkanDevices.all.isEmpty, "no Vulkan device"))
struct VulkanConformanceTests {
    @Test(arguments: Conformance.cases)
    func matchesReference(_ c: ConformanceCase) throws {
        #expect(!VulkanDevices.backends.isEmpty)
        for backend in VulkanDevices.backends {
            let nmse = try c.nmse(on: backend)
            let path = (backend.usesSubgroups ? "subgroups" : "shared memory") + ", pieces of \(backend.pieceLimit) B"
                + (backend.roundsDecodeActivations ? ", 8-bit decode activations" : "")
            #expect(nmse <= c.tolerance, "\(c.name) on \(backend.device.id) (\(path)): NMSE \(nmse) > \(c.tolerance)")
        }
    }
}

/// The backward ops on every Vulkan backend: against the reference at the tiled shapes, and
/// against finite differences of the reference forward ops.
@Suite("Vulkan backward ops", .serialized, .enabled(if: !VulkanDevices.all.isEmpty, "no Vulkan device"))
struct VulkanTrainingConformanceTests {
    @Test(arguments: TrainingConformance.cases)
    func backwardMatchesReference(_ c: ConformanceCase) throws {
        for backend in VulkanDevices.backends {
            let nmse = try c.nmse(on: backend)
            #expect(nmse <= c.tolerance, "\(c.name) on \(backend.device.id), pieces of \(backend.pieceLimit) B: NMSE \(nmse) > \(c.tolerance)")
        }
    }

    @Test(arguments: TrainingConformance.gradientCases)
    func gradientsMatchFiniteDifferences(_ c: GradientCase) throws {
        for backend in VulkanDevices.backends {
            let nmse = try c.nmse(on: backend)
            #expect(nmse <= c.tolerance, "\(c.name) on \(backend.device.id): NMSE \(nmse) against finite differences")
        }
    }
}
