import ArgumentParser
import Foundation
import ThemisBench

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "GFLOP/s and GB/s of the backend's kernels: matmul (decode and prefill shapes of the default models, every weight type), attention, small ops.")

    @Option(name: .long, help: "Device: auto, cpu, or vulkan[:N] (see `themis devices`).")
    var device: String = "auto"
    @Option(name: .customLong("prefill-tokens"), help: "Tokens of the prefill matmul shapes and the small ops.")
    var prefillTokens: Int = 512
    @Option(help: "Only the cases whose name contains this text (e.g. 'n=1', 'attention', 'q4_K').")
    var filter: String?
    @Option(help: "Timed repetitions of each case (the median is reported).") var reps: Int = 3
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        if prefillTokens < 2 || reps < 1 { throw ValidationError("--prefill-tokens must be >= 2 and --reps >= 1") }
    }

    func run() throws {
        reportingErrors {
            let backend = try DeviceSelection.open(device)
            let bench = KernelBench(backend: backend, prefillTokens: prefillTokens, repetitions: reps)
            let interactive = isatty(STDERR_FILENO) != 0
            if !json {
                print("device: \(backend.device.id) (\(backend.device.name))")
                print("| op | shape | type | µs | GFLOP/s | GB/s |")
                print("| --- | --- | --- | ---: | ---: | ---: |")
            }
            var done = 0
            let results = try bench.run(filter: filter) { r in
                done += 1
                if interactive { printError("\u{1B}[2K\rmeasured \(done): \(r.op) \(r.shape)") }
                if !json {
                    print("| \(r.op) | \(r.shape) | \(r.type) | " + String(format: "%.1f | %.2f | %.2f |", r.seconds * 1e6, r.gflops, r.gigabytesPerSecond))
                    fflush(nil)  // a row as soon as it is measured
                }
            }
            if results.isEmpty { throw ValidationError("no kernel case matches --filter '\(filter ?? "")'") }
            if json {
                let object: [String: Any] = [
                    "device": backend.device.id, "device_name": backend.device.name,
                    "results": results.map {
                        ["op": $0.op, "shape": $0.shape, "type": $0.type, "seconds": $0.seconds,
                         "gflops": $0.gflops, "gb_per_s": $0.gigabytesPerSecond] as [String: Any]
                    },
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }
}
