import ThemisBackend
import CPUBackend
import VulkanBackend

/// The composition root's list of backend providers: the only place naming concrete backends.
enum DeviceSelection {
    static func registry() -> BackendRegistry {
        BackendRegistry(providers: [VulkanProvider(), CPUProvider()])
    }

    /// Opens the backend for `--device spec`, printing the fall-back notice if there is one.
    static func open(_ spec: String) throws -> any Backend {
        let (backend, notice) = try registry().open(spec)
        if let notice { printError(notice) }
        return backend
    }
}
