import Testing
import ThemisBackend

/// `--device` resolution over providers: a GPU provider whose backend cannot open, and the
/// reference backend standing in as the CPU.
@Suite("backend registry")
struct BackendRegistryTests {
    struct UnopenableGPU: BackendProvider {
        let name = "gpu"
        let kind: DeviceKind
        func devices() -> (devices: [DeviceInfo], diagnostic: String?) {
            ([DeviceInfo(id: "gpu:0", name: "test GPU", kind: kind, memoryBytes: 1 << 30, computeUnits: 8)], nil)
        }
        func makeBackend(on device: DeviceInfo) throws -> any Backend { throw BackendError.unavailable("cannot open") }
    }

    struct NoDevices: BackendProvider {
        let name = "gpu"
        func devices() -> (devices: [DeviceInfo], diagnostic: String?) { ([], "no driver") }
        func makeBackend(on device: DeviceInfo) throws -> any Backend { throw BackendError.unavailable("none") }
    }

    struct Reference: BackendProvider {
        let name = "cpu"
        func devices() -> (devices: [DeviceInfo], diagnostic: String?) { ([ReferenceBackend().device], nil) }
        func makeBackend(on device: DeviceInfo) throws -> any Backend { ReferenceBackend() }
    }

    @Test func autoPrefersADiscreteGPUAndFallsBackWhenItCannotOpen() throws {
        let registry = BackendRegistry(providers: [UnopenableGPU(kind: .discrete), Reference()])
        #expect(try registry.resolve("auto").device.id == "gpu:0")
        let (backend, notice) = try registry.open("auto")
        #expect(backend.device.id == "reference")
        #expect(notice?.contains("gpu:0") == true && notice?.contains("running on the CPU") == true)
        #expect(throws: BackendError.self) { try registry.open("gpu:0") }
    }

    @Test func softwareDevicesOnlyWhenNamed() throws {
        let registry = BackendRegistry(providers: [UnopenableGPU(kind: .software), Reference()])
        #expect(try registry.resolve("auto").device.id == "reference")
        #expect(try registry.resolve("auto").notice == nil)
        #expect(try registry.resolve("gpu").device.id == "gpu:0")
        #expect(try registry.resolve("gpu:0").device.id == "gpu:0")
    }

    @Test func noDriverIsOneNotice() throws {
        let registry = BackendRegistry(providers: [NoDevices(), Reference()])
        let choice = try registry.resolve("auto")
        #expect(choice.device.id == "reference")
        #expect(choice.notice?.contains("no driver") == true)
    }

    @Test func unknownDeviceListsTheAvailableOnes() {
        let registry = BackendRegistry(providers: [UnopenableGPU(kind: .discrete), Reference()])
        #expect(throws: BackendError.deviceNotFound("gpu:3", available: ["gpu:0", "reference"])) {
            try registry.resolve("gpu:3")
        }
        #expect(throws: BackendError.self) { try registry.resolve("metal") }
    }
}
