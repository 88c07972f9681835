import CByteDots
import ThemisBackend
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Provides the single CPU device (`cpu`).
public struct CPUProvider: BackendProvider {
    public let name = "cpu"
    private let threads: Int?
    private let roundDecodeActivations: Bool

    /// `threads`: worker threads including the caller (default: `THEMIS_THREADS`, else every core).
    /// `roundDecodeActivations`: see `CPUBackend.roundsDecodeActivations`.
    public init(threads: Int? = nil, roundDecodeActivations: Bool = true) {
        self.threads = threads
        self.roundDecodeActivations = roundDecodeActivations
    }

    static var defaultThreadCount: Int {
        if let s = ProcessInfo.processInfo.environment["THEMIS_THREADS"], let n = Int(s), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }

    public func devices() -> (devices: [DeviceInfo], diagnostic: String?) {
        ([Self.deviceInfo(threads: threads ?? Self.defaultThreadCount)], nil)
    }

    public func makeBackend(on device: DeviceInfo) throws -> any Backend {
        CPUBackend(threads: threads, roundDecodeActivations: roundDecodeActivations, byteDots: Self.byteDotsWanted)
    }

    /// `THEMIS_BYTE_DOTS=0` keeps the portable Swift dots (to compare the two side by side).
    static var byteDotsWanted: Bool { ProcessInfo.processInfo.environment["THEMIS_BYTE_DOTS"] != "0" }

    /// The byte multiply-adds the one-token dots use: "avx512-vnni", "avx2", or "none".
    static var byteDotsISA: String {
        byteDotsWanted ? String(cString: themis_byte_dots_isa()) : "none"
    }

    static func deviceInfo(threads: Int) -> DeviceInfo {
        var name = "CPU"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            name = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return DeviceInfo(id: "cpu", name: name, kind: .cpu, memoryBytes: ProcessInfo.processInfo.physicalMemory,
                          computeUnits: threads,
                          features: DeviceFeatures(fp16: true, int8Dot: byteDotsISA != "none", storage16Bit: true, subgroupSize: 16),
                          details: ["threads: \(threads)", "SIMD: 16 x f32 lanes", "byte dots: \(byteDotsISA)"])
    }
}
