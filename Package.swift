// swift-tools-version:6.1
import PackageDescription
import Foundation

// The CPU kernels need a concrete target CPU: without it Swift emits the SSE2 baseline and
// FMA / f16 conversions become library calls (see shared/cpu-kernel-notes.md).
let targetCPU = ProcessInfo.processInfo.environment["THEMIS_TARGET_CPU"] ?? "native"
// Whether the target CPU has AVX-512 (32 vector registers of 16 floats): the f32 GEMM's register
// tile is sized for it (THEMIS_AVX512) or for AVX2's 16 registers of 8 (GEMM.swift).
let wideVectors: Bool = {
    if targetCPU == "native" {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return info.contains(" avx512f ")
    }
    return ["znver4", "znver5", "skylake-avx512", "cascadelake", "cooperlake", "icelake-client", "icelake-server",
            "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids", "graniterapids", "x86-64-v4"].contains(targetCPU)
}()
let wideDefine: [SwiftSetting] = wideVectors ? [.define("THEMIS_AVX512")] : []
// `make fuzz` (THEMIS_FUZZ=1, its own build folder) instruments our modules for libFuzzer and
// AddressSanitizer, keeps Swift's own checks (no -Ounchecked), and adds the fuzz executable.
let fuzzing = ProcessInfo.processInfo.environment["THEMIS_FUZZ"] != nil
let fuzzFlags: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"])] : []
// The CPU kernels' modules drop Swift's checks (-Ounchecked); everything that reads input (the
// GGUF reader, tokenizer, templates, the loader's validation) keeps them: measured, the checks
// cost nothing there (README, "Layout").
let kernelFlags: [SwiftSetting] = wideDefine + (fuzzing
    ? [.unsafeFlags(["-target-cpu", targetCPU, "-sanitize=fuzzer,address"])]
    : [.unsafeFlags(["-target-cpu", targetCPU, "-Ounchecked"])])
let nativeFlags: [SwiftSetting] = fuzzing
    ? [.unsafeFlags(["-target-cpu", targetCPU, "-sanitize=fuzzer,address"])]
    : [.unsafeFlags(["-target-cpu", targetCPU])]

let package = Package(
    name: "Themis",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "themis", targets: ["themis"]),
        .library(name: "ThemisBackend", targets: ["ThemisBackend"]),
        .library(name: "ThemisModel", targets: ["ThemisModel"]),
        .library(name: "ThemisBench", targets: ["ThemisBench"]),
        .library(name: "ThemisClient", targets: ["ThemisClient"]),
        .library(name: "ThemisJudge", targets: ["ThemisJudge"]),
        .library(name: "JSONLines", targets: ["JSONLines"]),
        .library(name: "ThemisServer", targets: ["ThemisServer"]),
        .library(name: "ThemisDistill", targets: ["ThemisDistill"]),
        .library(name: "ThemisTrain", targets: ["ThemisTrain"]),
        .library(name: "CPUBackend", targets: ["CPUBackend"]),
        .library(name: "VulkanBackend", targets: ["VulkanBackend"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        // The Backend protocol, device descriptions, storage formats and the scalar reference ops.
        .target(name: "ThemisBackend", swiftSettings: kernelFlags),
        // SIMD, multi-threaded CPU implementation of the Backend protocol.
        .target(name: "CPUBackend", dependencies: ["ThemisBackend", "CByteDots"], swiftSettings: kernelFlags),
        // The byte multiply-adds Swift does not emit (vpdpbusd, vpmaddubsw): the one-token dots and
        // the prompt GEMM of the quantised formats in C intrinsics, for the same target CPU;
        // CPUBackend's Swift kernels are the portable path where they are absent.
        .target(name: "CByteDots", cSettings: [.unsafeFlags(["-march=\(targetCPU)", "-O3"])]),
        // <vulkan/vulkan.h> without prototypes (libvulkan-dev); the loader is opened at run time.
        .systemLibrary(name: "CVulkan", path: "Sources/CVulkan", providers: [.apt(["libvulkan-dev"])]),
        // Vulkan compute implementation of the Backend protocol; its SPIR-V is compiled from
        // Shaders/*.comp at build time and embedded.
        .target(
            name: "VulkanBackend", dependencies: ["ThemisBackend", "CVulkan"],
            swiftSettings: nativeFlags, plugins: ["CompileShaders"]),
        // glslangValidator over Shaders/manifest -> one Swift file of base64 SPIR-V modules.
        .executableTarget(name: "shader-embed", path: "Sources/shader-embed"),
        .plugin(name: "CompileShaders", capability: .buildTool(), dependencies: ["shader-embed"]),
        // GGUF, tokenizer, chat templates, transformer, sampling and scoring: backend-agnostic.
        .target(
            name: "ThemisModel",
            dependencies: ["ThemisBackend", .product(name: "HeapModule", package: "swift-collections")],
            swiftSettings: nativeFlags),
        // Model clients: one protocol for "a model we can ask" (chat, label probabilities,
        // continuation scoring), a local GGUF model (an actor owning it) and OpenAI-compatible servers.
        .target(
            name: "ThemisClient",
            dependencies: [
                "ThemisModel", "JSONLines",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        // Records in files: JSON Lines and JSON arrays read line by line (CRLF, byte-order mark,
        // nesting bounded), appended with one write and fsync, resumed without losing a record.
        .target(name: "JSONLines", swiftSettings: fuzzFlags),
        // The Themis judge: scenario catalogue, five-block prompts, verdicts, batch runs; asks
        // models only through ThemisClient's protocol.
        .target(
            name: "ThemisJudge", dependencies: ["ThemisClient", "JSONLines"],
            resources: [.copy("Resources/scenarios.json")], swiftSettings: fuzzFlags),
        // Meta-evaluation of judges and speed benchmarks, against the judge, ThemisModel and the protocol only.
        // The human-labelled judge benchmarks are copied from shared/data with their licences.
        .target(
            name: "ThemisBench", dependencies: ["ThemisJudge", "JSONLines", "ThemisModel", "ThemisBackend", "BackendConformance"],
            resources: [.copy("Resources/JudgeBenchmarks")],
            swiftSettings: nativeFlags),
        // The OpenAI-compatible server: continuous batching over one model, the judge over HTTP.
        .target(
            name: "ThemisServer",
            dependencies: [
                "ThemisJudge", "ThemisClient", "ThemisModel", "JSONLines",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: fuzzFlags),
        // The distillation pipeline: generators (local, OpenAI-compatible HTTP), stages, selection.
        .target(
            name: "ThemisDistill",
            dependencies: [
                "ThemisJudge", "ThemisClient", "ThemisModel", "JSONLines",
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [.copy("Resources/seeds.json")], swiftSettings: fuzzFlags),
        // LoRA fine-tuning with the paper's objective, on the model layer and the Backend protocol's
        // backward ops (TrainingBackend): data from the distillation's export, AdamW, checkpoints.
        .target(
            name: "ThemisTrain", dependencies: ["ThemisModel", "ThemisBackend", "ThemisDistill", "JSONLines"],
            swiftSettings: nativeFlags),
        // Op cases with tolerances, runnable on any Backend (used by each backend's tests).
        .target(name: "BackendConformance", dependencies: ["ThemisBackend"]),
        // The CLI: the only place that names concrete backends.
        .executableTarget(
            name: "themis",
            dependencies: [
                "ThemisBackend", "ThemisModel", "ThemisClient", "ThemisJudge", "JSONLines", "ThemisBench", "ThemisServer", "ThemisDistill", "BackendConformance",
                "ThemisTrain", "CPUBackend",
                "VulkanBackend",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: nativeFlags),
        // Test-only helpers (child processes that die with the test, time budgets); no product ships it.
        .target(name: "ThemisTestSupport", path: "Tests/ThemisTestSupport"),
        .testTarget(name: "ThemisBackendTests", dependencies: ["ThemisBackend", "ThemisTestSupport", "BackendConformance"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CPUBackendTests", dependencies: ["CPUBackend", "ThemisBackend", "BackendConformance"]),
        .testTarget(name: "VulkanBackendTests", dependencies: ["VulkanBackend", "ThemisBackend", "BackendConformance", "ThemisTestSupport"]),
        // Reference/: tiny models and recordings the tests read by path (scripts/make-tiny-models)
        .testTarget(name: "ThemisModelTests", dependencies: ["ThemisModel", "ThemisBackend", "CPUBackend", "VulkanBackend", "ThemisTestSupport"],
                    exclude: ["Reference"]),
        .testTarget(
            name: "ThemisClientTests",
            dependencies: [
                "ThemisClient", "ThemisModel", "CPUBackend", "ThemisTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        .testTarget(name: "ThemisJudgeTests", dependencies: ["ThemisJudge", "ThemisClient", "JSONLines"], resources: [.copy("Golden")]),
        .testTarget(name: "JSONLinesTests", dependencies: ["JSONLines"]),
        .testTarget(
            name: "ThemisTrainTests",
            dependencies: ["ThemisTrain", "ThemisModel", "ThemisBackend", "ThemisDistill", "CPUBackend", "VulkanBackend"]),
        .testTarget(name: "ThemisBenchTests", dependencies: ["ThemisBench", "ThemisJudge"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "ThemisDistillTests",
            dependencies: [
                "ThemisDistill", "ThemisClient", "ThemisModel", "CPUBackend", "ThemisTestSupport",
            ],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "themisTests",
            dependencies: ["themis", "ThemisJudge", "ThemisModel", "JSONLines", "ThemisTestSupport",
                           .product(name: "Yams", package: "Yams")],
            exclude: ["Python"]),
    ]
)

if fuzzing {
    // One libFuzzer binary; THEMIS_FUZZ_TARGET picks the target (see Fuzz/README.md).
    package.targets.append(.executableTarget(
        name: "themis-fuzz",
        dependencies: ["ThemisModel", "ThemisJudge", "JSONLines", "ThemisDistill", "ThemisServer"],
        path: "Fuzz/Sources/themis-fuzz",
        swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer,address"])],
        linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]))
}
