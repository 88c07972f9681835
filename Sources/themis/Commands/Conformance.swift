import ArgumentParser
import BackendConformance
import Foundation

struct ConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Run every op of the backend protocol on a device against the scalar reference (NMSE vs tolerance).")

    @Option(name: .long, help: "Device: auto, cpu, or vulkan[:N] (see `themis devices`).")
    var device: String = "auto"
    @Option(help: "Only the cases whose name contains this text.") var filter: String?

    func run() throws {
        reportingErrors {
            let backend = try DeviceSelection.open(device)
            print("device: \(backend.device.id) (\(backend.device.name))")
            print("| case | NMSE | tolerance | result |")
            print("| --- | ---: | ---: | --- |")
            var failed = 0, count = 0
            for c in Conformance.cases where filter.map({ c.name.contains($0) }) ?? true {
                let nmse = try c.nmse(on: backend)
                let ok = nmse <= c.tolerance
                if !ok { failed += 1 }
                count += 1
                print("| \(c.name) | \(String(format: "%.3g", nmse)) | \(String(format: "%.0g", c.tolerance)) | \(ok ? "ok" : "FAIL") |")
            }
            print("\(count - failed) of \(count) cases within tolerance on \(backend.device.id)")
            if failed > 0 { throw ExitCode.failure }
        }
    }
}
