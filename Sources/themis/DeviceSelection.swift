import ThemisBackend
import CPUBackend

/// The composition root's list of backend providers: the only place naming concrete backends.
enum DeviceSelection {
    static func registry() -> BackendRegistry {
        BackendRegistry(providers: [CPUProvider()])
    }

    /// Opens the backend for `--device spec`, printing the fall-back notice if there is one.
    static func open(_ spec: String) throws -> any Backend {
        let choice = try registry().resolve(spec)
        if let notice = choice.notice { printError(notice) }
        return try choice.provider.makeBackend(on: choice.device)
    }
}
