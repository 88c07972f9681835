import BackendConformance
import CPUBackend
import Testing
import ThemisBackend

/// Every conformance case on the CPU backend, with one thread and with two (the pool's paths).
@Suite("CPU backend conformance", .serialized)
struct CPUConformanceTests {
    static let twoThreads = CPUBackend(threads: 2)
    static let oneThread = CPUBackend(threads: 1)

    @Test(arguments: Conformance.cases)
    func matchesReference(_ c: ConformanceCase) throws {
        for backend in [Self.twoThreads, Self.oneThread] {
            let nmse = try c.nmse(on: backend)
            #expect(nmse <= c.tolerance, "\(c.name) on \(backend.device.computeUnits) threads: NMSE \(nmse) > \(c.tolerance)")
        }
    }
}
