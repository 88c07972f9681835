import ArgumentParser
import ThemisBackend

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the compute devices and their indices.")

    func run() throws {
        let registry = DeviceSelection.registry()
        for provider in registry.providers {
            let (devices, diagnostic) = provider.devices()
            if devices.isEmpty {
                print("\(provider.name): none (\(diagnostic ?? "no devices"))")
            }
            for d in devices {
                let gib = Double(d.memoryBytes) / Double(1 << 30)
                print("\(d.id)\t\(d.kind.rawValue)\t\(d.name)\t\(String(format: "%.1f", gib)) GiB\tunits \(d.computeUnits)")
                for line in d.details { print("\t\(line)") }
            }
        }
        let auto = try? registry.resolve("auto")
        print("auto -> \(auto?.device.id ?? "none")")
    }
}
