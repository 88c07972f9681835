// The cases of `themis bench kernels` (KernelBench) on every available backend, measured by
// ordo-one/benchmark: wall clock per call and throughput, with its statistics and baselines.
import Benchmark
import CPUBackend
import Foundation
import ThemisBackend
import ThemisBench
import VulkanBackend

/// A prepared kernel call shared between a benchmark's setup and its measured closure.
final class Slot: @unchecked Sendable {
    // Written by setup, read by the closure, cleared by teardown: the framework runs them in turn.
    var prepared: KernelBench.Prepared?
}

/// Every device of every provider (lavapipe included: its figures only show that it runs).
/// `THEMIS_BENCH_PREFILL` sets the prefill token count (default 512; use less on lavapipe).
let benchmarks: @Sendable () -> Void = {
    let prefill = ProcessInfo.processInfo.environment["THEMIS_BENCH_PREFILL"].flatMap(Int.init) ?? 512
    let providers: [any BackendProvider] = [CPUProvider(), VulkanProvider()]
    for provider in providers {
        for device in provider.devices().devices {
            guard let backend = try? provider.makeBackend(on: device) else { continue }
            let bench = KernelBench(backend: backend, prefillTokens: prefill)
            for c in bench.cases() {
                let slot = Slot()
                Benchmark(
                    "\(device.id) \(c.name)",
                    configuration: .init(metrics: [.wallClock, .throughput], maxDuration: .seconds(1), maxIterations: 100),
                    closure: { benchmark in
                        guard let p = slot.prepared else { return }
                        for _ in benchmark.scaledIterations { p.call() }
                        try backend.synchronize()
                    },
                    setup: {
                        slot.prepared = try c.prepare()
                        slot.prepared?.call()  // warm-up: pipelines, caches
                        try backend.synchronize()
                    },
                    teardown: { slot.prepared = nil })
            }
        }
    }
}
