import ThemisBackend
import CPUBackend
import VulkanBackend
import ThemisModel

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

    /// Whether `error` is the device's (memory, a lost device, a driver failure) rather than the
    /// model file's: then `--device auto` tries the CPU.
    static func isDeviceFailure(_ error: any Error) -> Bool {
        if error is BackendError || error is VulkanError { return true }
        if case ModelError.contextTooLarge = error { return true }
        return false
    }
}
