import Foundation

/// Time limits for test steps, derived from measured durations instead of guessed clocks.
///
/// A limit only guards against a hang: a step that needs longer on a slow or busy machine must
/// still pass. Every limit is `max(measured × headroom, floor) × machineFactor`, where `measured`
/// is what the step took in `make test` (one test at a time) on the slower machine class we test
/// on (Zen 3 EPYC, 2 cores, AVX2); the headroom covers another CPU-bound process beside the suite
/// with room to spare, and the machine factor says how much slower this machine is now.
public enum Budget {
    /// Headroom over a measured duration.
    public static let headroom = 8.0

    /// How much slower this machine is than the one the durations were measured on (at least 1):
    /// `THEMIS_TEST_TIME_SCALE` when set, else a short calibration loop timed against its
    /// duration there (taken when first used, so it also sees the load of the running suite).
    public static let machineFactor: Double = {
        if let text = ProcessInfo.processInfo.environment["THEMIS_TEST_TIME_SCALE"], let value = Double(text), value > 0 {
            return max(1, value)
        }
        return max(1, calibrationSeconds() / referenceCalibrationSeconds)
    }()

    /// A limit for a step measured at `measured` seconds on the reference machine under load;
    /// never below `floor` seconds.
    public static func limit(measured: Double, floor: Double = 120) -> Double {
        max(floor, measured * headroom) * machineFactor
    }

    /// The calibration loop's best time on the reference machine (idle Zen 3 EPYC, 2.45 GHz).
    static let referenceCalibrationSeconds = 0.008

    /// Best of five runs of a dependent floating-point chain (latency-bound, so neither
    /// vectorisation nor the number of cores changes it).
    static func calibrationSeconds() -> Double {
        var best = Double.infinity
        var sink = 0.0
        for _ in 0..<5 {
            let start = DispatchTime.now().uptimeNanoseconds
            var x = 1.0
            for i in 0..<4_000_000 { x = x * 0.999_999_9 + Double(i & 7) * 1e-9 }
            sink += x
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        // keep the loop from being optimised away
        if sink.isNaN { print("calibration: \(sink)") }
        return best
    }
}

/// Which tests run: `make test` runs the gate (every command end to end at least once);
/// `make test-all` (THEMIS_TEST_ALL=1) adds the slow real-model cases the time budget cannot hold.
public enum TestTier {
    /// True under `make test-all`; slow cases are marked
    /// `.enabled(if: TestTier.full, "slow real-model case: make test-all runs it")`.
    public static let full: Bool = ProcessInfo.processInfo.environment["THEMIS_TEST_ALL"] == "1"
}
