import Foundation
import Testing
import ThemisTestSupport

/// Processes a test starts die with it, even when the test process itself is killed: a second
/// copy of this test binary (a "runner") starts a real `themis serve`, the runner is killed with
/// SIGKILL, and no process of that server may be left.
@Suite("test harness: children die with their test")
struct ChildCleanupTests {
    /// Set only for the runner that `aKilledRunnerLeavesNoServer` starts.
    static let probeDirectory = ProcessInfo.processInfo.environment["THEMIS_ORPHAN_PROBE"]

    /// The runner's part: start a server, say its pid, and wait to be killed.
    @Test(.enabled(if: probeDirectory != nil, "runs only as the runner started by aKilledRunnerLeavesNoServer"))
    func probeHoldsAServerUntilKilled() throws {
        let directory = try #require(Self.probeDirectory)
        let name = "orphan-probe-" + URL(fileURLWithPath: directory).lastPathComponent
        let server = try ServeTests.Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "256", "--name", name])
        try #require(server.port > 0, "server did not start: \(server.log)")
        try Data("\(server.child.pid)\n".utf8).write(to: URL(fileURLWithPath: directory + "/server.pid"), options: .atomic)
        // the killer is expected long before this
        let deadline = Date().addingTimeInterval(Budget.limit(measured: 30))
        while Date() < deadline && server.child.isRunning { usleep(100_000) }
        Issue.record("the probe was not killed")
    }

    @Test func aKilledRunnerLeavesNoServer() throws {
        let directory = NSTemporaryDirectory() + "themis-orphan-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let name = "orphan-probe-" + URL(fileURLWithPath: directory).lastPathComponent
        let testBinary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let runner = try ChildProcess(
            testBinary, ["--testing-library", "swift-testing", "--filter", "probeHoldsAServerUntilKilled"],
            environment: ["THEMIS_ORPHAN_PROBE": directory])

        // wait for the runner's server to be up (an event, not a clock; the limit only stops a hang)
        let pidFile = directory + "/server.pid"
        let deadline = Date().addingTimeInterval(Budget.limit(measured: 20))
        while runner.isRunning && Date() < deadline && !FileManager.default.fileExists(atPath: pidFile) { usleep(50_000) }
        let text = try #require(try? String(contentsOfFile: pidFile, encoding: .utf8),
                                "the runner did not start its server: \(runner.stdout.suffix(3000))")
        let serverPID = try #require(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        try #require(Self.isAlive(serverPID), "the server is not running before the runner is killed")
        #expect(Self.processes(withArgument: name) == [serverPID])

        kill(runner.pid, SIGKILL)
        #expect(runner.waitForExit(timeout: 30) == .signalled(SIGKILL))

        // the kernel sends the server SIGKILL when its parent dies; give it a moment to go
        let gone = Date().addingTimeInterval(Budget.limit(measured: 1, floor: 30))
        while Self.isAlive(serverPID) && Date() < gone { usleep(20_000) }
        #expect(!Self.isAlive(serverPID), "themis serve (pid \(serverPID)) outlived the killed test runner")
        #expect(Self.processes(withArgument: name).isEmpty, "processes of the killed runner are left")
    }

    /// True while `pid` exists and is not a zombie.
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    /// Live processes with `argument` on their command line.
    static func processes(withArgument argument: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.contains(argument) && isAlive(pid)
        }.sorted()
    }
}
