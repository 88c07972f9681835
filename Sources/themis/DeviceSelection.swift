import ThemisBackend
import CPUBackend
import VulkanBackend

/// The composition root's list of backend providers: the only place naming concrete backends.
enum DeviceSelection {
    /// `exactDecode`: the CPU keeps one-token activations in f32 (see `--exact-decode`).
    static func registry(exactDecode: Bool = false) -> BackendRegistry {
        BackendRegistry(providers: [VulkanProvider(), CPUProvider(roundDecodeActivations: !exactDecode)])
    }

    /// Opens the backend for `--device spec`, printing the fall-back notice if there is one.
    static func open(_ spec: String, exactDecode: Bool = false) throws -> any Backend {
        let (backend, notice) = try registry(exactDecode: exactDecode).open(spec)
        if let notice { printError(notice) }
        return backend
    }
}
