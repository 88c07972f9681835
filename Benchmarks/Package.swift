// swift-tools-version:6.1
// Kernel benchmarks with ordo-one/benchmark: `cd Benchmarks && swift package benchmark`
// (or `make bench-kernels`). A package of its own so the main build and CI never build the
// benchmark framework.
import PackageDescription

let package = Package(
    name: "ThemisBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Themis", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "KernelBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ThemisBench", package: "Themis"),
                .product(name: "ThemisBackend", package: "Themis"),
                .product(name: "CPUBackend", package: "Themis"),
                .product(name: "VulkanBackend", package: "Themis"),
            ],
            path: "Benchmarks/KernelBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
