/// Resolves `--device auto|cpu|<provider>[:N]` over a set of providers.
///
/// `auto` picks a discrete GPU, else an integrated GPU, else the CPU; software devices
/// (lavapipe, llvmpipe) are used only when named. `<provider>` alone is that provider's best
/// device, software ones included.
public struct BackendRegistry: Sendable {
    public let providers: [any BackendProvider]

    public init(providers: [any BackendProvider]) { self.providers = providers }

    /// The outcome of resolving a device name.
    public struct Choice: Sendable {
        public let provider: any BackendProvider
        public let device: DeviceInfo
        /// A line for stderr when `auto` fell back to the CPU for a reason worth telling.
        public let notice: String?
    }

    /// Every device of every provider, in listing order.
    public func allDevices() -> [(provider: any BackendProvider, device: DeviceInfo)] {
        providers.flatMap { p in p.devices().devices.map { (p, $0) } }
    }

    /// Opens a backend for `spec`. Under `auto`, a device whose backend cannot be opened is
    /// skipped for the next best (the CPU last), and `notice` says why; a named device that
    /// cannot be opened is an error.
    public func open(_ spec: String) throws -> (backend: any Backend, notice: String?) {
        let choice = try resolve(spec)
        guard spec.lowercased() == "auto", choice.device.kind != .cpu else {
            return (try choice.provider.makeBackend(on: choice.device), choice.notice)
        }
        do {
            return (try choice.provider.makeBackend(on: choice.device), choice.notice)
        } catch {
            for p in providers {
                if let cpu = p.devices().devices.first(where: { $0.kind == .cpu }) {
                    let notice = "themis: \(choice.device.id) (\(choice.device.name)) unusable: \(error); running on the CPU"
                    return (try p.makeBackend(on: cpu), notice)
                }
            }
            throw error
        }
    }

    /// Picks the device for `spec`; throws `BackendError.deviceNotFound` for a named device that
    /// does not exist.
    public func resolve(_ spec: String) throws -> Choice {
        let spec = spec.lowercased()
        if spec == "auto" {
            var notes: [String] = []
            var best: (any BackendProvider, DeviceInfo, Int)?
            for p in providers {
                let (devs, diag) = p.devices()
                if devs.isEmpty, let diag { notes.append(diag) }
                for d in devs {
                    let rank: Int
                    switch d.kind {
                    case .discrete: rank = 3
                    case .integrated: rank = 2
                    case .cpu: rank = 1
                    case .software, .other: continue
                    }
                    if best == nil || rank > best!.2 { best = (p, d, rank) }
                }
            }
            guard let (p, d, _) = best else {
                throw BackendError.deviceNotFound("auto", available: allDevices().map { $0.device.id })
            }
            let notice = d.kind == .cpu && !notes.isEmpty
                ? "themis: no usable GPU (\(notes.joined(separator: "; "))); running on the CPU" : nil
            return Choice(provider: p, device: d, notice: notice)
        }
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        // Only the named provider is probed unless the name is wrong: probing Vulkan loads its
        // drivers (lavapipe maps LLVM, tens of MB), which `--device cpu` should not pay for.
        var available: [String] { allDevices().map { $0.device.id } }
        guard let p = providers.first(where: { $0.name == parts[0] }) else {
            throw BackendError.deviceNotFound(spec, available: available)
        }
        let devs = p.devices().devices
        if parts.count == 1 {
            let order: [DeviceKind] = [.discrete, .integrated, .cpu, .other, .software]
            if let d = devs.min(by: { order.firstIndex(of: $0.kind)! < order.firstIndex(of: $1.kind)! }) {
                return Choice(provider: p, device: d, notice: nil)
            }
        } else if let d = devs.first(where: { $0.id == spec }) {
            return Choice(provider: p, device: d, notice: nil)
        }
        throw BackendError.deviceNotFound(spec, available: available)
    }
}
