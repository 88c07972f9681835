import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A process started by a test, which cannot outlive the test.
///
/// - It runs in a process group of its own, so `stop` and `deinit` signal everything it started.
/// - It is started through `setpriv --pdeathsig KILL` (util-linux) from a thread that lives as
///   long as the test process, so the kernel kills it when the test process dies for any reason,
///   SIGKILL included. (The parent-death signal follows the *thread* that forked the child, which
///   is why every spawn goes through one permanent thread.)
/// - Its standard output and error are drained continuously into memory, so a chatty child never
///   blocks on a full pipe, and a test can wait for a line instead of a clock.
/// - `deinit` kills the group and reaps it, so a test that returns or throws early leaves nothing.
public final class ChildProcess: Sendable {
    /// How a child ended: its exit status, or the signal that killed it.
    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        /// The status a shell would show: the exit status, or 128 + the signal number.
        public var status: Int32 {
            switch self {
            case .exited(let s): s
            case .signalled(let s): 128 + s
            }
        }

        public var description: String {
            switch self {
            case .exited(let s): "exit status \(s)"
            case .signalled(let s): "killed by signal \(s)"
            }
        }
    }

    /// Where a standard stream of the child goes.
    public enum Stream: Sendable { case stdout, stderr }

    public enum SpawnError: Error, CustomStringConvertible {
        case setprivMissing
        case spawnFailed(String, Int32)

        public var description: String {
            switch self {
            case .setprivMissing:
                "/usr/bin/setpriv not found: install util-linux (tests start child processes through it)"
            case .spawnFailed(let command, let errno):
                "cannot start \(command): \(String(cString: strerror(errno)))"
            }
        }
    }

    /// The process id (also the id of its process group).
    public let pid: pid_t

    /// What the reader and reaper threads share with the owner; they hold this, not the
    /// `ChildProcess`, so dropping the last reference to a running child runs `deinit`.
    private final class Shared: Sendable {
        struct State {
            var stdout = Data()
            var stderr = Data()
            var termination: Termination?
        }
        let state = Mutex(State())
        /// Left when the child has been reaped.
        let exitGroup = DispatchGroup()
        /// Left when both output pipes reached end of file.
        let outputGroup = DispatchGroup()
    }
    private let shared = Shared()
    private var exitGroup: DispatchGroup { shared.exitGroup }
    private var outputGroup: DispatchGroup { shared.outputGroup }

    /// Starts `executable` (a path, or a name looked up in PATH) with `arguments`.
    ///
    /// - Parameters:
    ///   - environment: variables set on top of the test process's own environment.
    ///   - captureOutput: when false, the child's stdout and stderr go to /dev/null.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                captureOutput: Bool = true) throws {
        let setpriv = "/usr/bin/setpriv"
        guard access(setpriv, X_OK) == 0 else { throw SpawnError.setprivMissing }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let argv = ["setpriv", "--pdeathsig", "KILL", "--", executable] + arguments
        let envp = env.map { "\($0.key)=\($0.value)" }

        // Pipes are made on the spawner thread too: every spawn happens there, so no other child
        // can inherit these ends between pipe() and FD_CLOEXEC.
        let spawnResult = Spawner.shared.perform { () -> (pid: pid_t, error: Int32, out: Int32, err: Int32) in
            var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
            if captureOutput {
                guard pipe(&outPipe) == 0 else { return (0, errno, -1, -1) }
                guard pipe(&errPipe) == 0 else {
                    let e = errno
                    close(outPipe[0]); close(outPipe[1])
                    return (0, e, -1, -1)
                }
                for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            }
            let (pid, error) = Self.spawn(path: setpriv, argv: argv, envp: envp, stdoutFD: outPipe[1], stderrFD: errPipe[1])
            if captureOutput {
                close(outPipe[1])
                close(errPipe[1])
                if error != 0 { close(outPipe[0]); close(errPipe[0]) }
            }
            return (pid, error, outPipe[0], errPipe[0])
        }
        guard spawnResult.error == 0 else { throw SpawnError.spawnFailed(executable, spawnResult.error) }
        let spawned = spawnResult.pid
        pid = spawned

        if captureOutput {
            for (fd, stream) in [(spawnResult.out, Stream.stdout), (spawnResult.err, Stream.stderr)] {
                shared.outputGroup.enter()
                Thread.detachNewThread { [shared] in
                    Self.drain(fd, into: stream, of: shared)
                    shared.outputGroup.leave()
                }
            }
        }
        shared.exitGroup.enter()
        Thread.detachNewThread { [shared] in
            var status: Int32 = 0
            while waitpid(spawned, &status, 0) < 0 && errno == EINTR {}
            let termination: Termination =
                status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
            shared.state.withLock { $0.termination = termination }
            shared.exitGroup.leave()
        }
    }

    deinit {
        if termination == nil {
            kill(-pid, SIGKILL)
        }
        exitGroup.wait()
    }

    /// What a command that ran to completion left.
    public struct Completed: Sendable {
        /// How it ended (after `stop` when it ran past its limit).
        public var termination: Termination
        /// True when it was still running at its limit and had to be stopped.
        public var ranPastLimit: Bool
        public var stdout: String
        public var stderr: String
    }

    /// Runs a command to completion; past `limit` seconds it is stopped (SIGTERM, then SIGKILL).
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           limit: Double) throws -> Completed {
        let child = try ChildProcess(executable, arguments, environment: environment)
        let ended = child.waitForExit(timeout: limit)
        let termination = ended ?? child.stop(grace: 10)
        return Completed(termination: termination, ranPastLimit: ended == nil, stdout: child.stdout, stderr: child.stderr)
    }

    // MARK: - Observing

    /// How the child ended, or nil while it runs.
    public var termination: Termination? { shared.state.withLock { $0.termination } }
    public var isRunning: Bool { termination == nil }
    /// Everything the child wrote to stdout so far.
    public var stdout: String { shared.state.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    /// Everything the child wrote to stderr so far.
    public var stderr: String { shared.state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

    /// Waits until `condition` holds for what the child wrote to `stream`, the child exits, or
    /// `timeout` seconds pass; returns the text when the condition held, else nil.
    public func waitForOutput(_ stream: Stream = .stderr, timeout: Double,
                              until condition: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let text = stream == .stdout ? stdout : stderr
            if condition(text) { return text }
            if !isRunning || Date() >= deadline {
                // one last look: the child may have written its line just before exiting
                let last = stream == .stdout ? stdout : stderr
                return condition(last) ? last : nil
            }
            usleep(20_000)
        }
    }

    /// The port of the first `http://127.0.0.1:PORT` the child writes to `stream` (a server
    /// announcing where it listens) within `timeout` seconds; 0 if none came.
    public func loopbackPort(_ stream: Stream, timeout: Double) -> Int {
        let pattern = #"http://127\.0\.0\.1:(\d+)"#
        let text = waitForOutput(stream, timeout: timeout) { $0.range(of: pattern, options: .regularExpression) != nil }
        return text.flatMap { t in t.range(of: pattern, options: .regularExpression).flatMap { Int(t[$0].split(separator: ":").last ?? "") } } ?? 0
    }

    /// Waits up to `timeout` seconds for the child to exit; nil if it is still running.
    @discardableResult
    public func waitForExit(timeout: Double) -> Termination? {
        guard exitGroup.wait(timeout: .now() + timeout) == .success else { return nil }
        // the pipes close when the child exits, unless it left a grandchild holding them
        _ = outputGroup.wait(timeout: .now() + 5)
        return termination
    }

    // MARK: - Stopping

    /// Sends `signal` to the child's process group.
    public func signal(_ signal: Int32) {
        if isRunning { kill(-pid, signal) }
    }

    /// Stops the child: SIGTERM to its group, then SIGKILL after `grace` seconds; returns how it ended.
    @discardableResult
    public func stop(grace: Double = 30) -> Termination {
        signal(SIGTERM)
        if let t = waitForExit(timeout: grace) { return t }
        signal(SIGKILL)
        exitGroup.wait()
        _ = outputGroup.wait(timeout: .now() + 5)
        return termination ?? .signalled(SIGKILL)
    }

    // MARK: - Internals

    private static func drain(_ fd: Int32, into stream: Stream, of shared: Shared) {
        let size = 1 << 16
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 1)
        defer { buffer.deallocate(); close(fd) }
        while true {
            let n = read(fd, buffer, size)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            let chunk = Data(bytes: buffer, count: n)
            shared.state.withLock {
                if stream == .stdout { $0.stdout.append(chunk) } else { $0.stderr.append(chunk) }
            }
        }
    }

    /// posix_spawn in a new process group with default signal handling and an empty signal mask;
    /// stdin is /dev/null, stdout/stderr go to the given pipe ends or /dev/null when -1.
    private static func spawn(path: String, argv: [String], envp: [String],
                              stdoutFD: Int32, stderrFD: Int32) -> (pid_t, Int32) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        for (fd, target) in [(stdoutFD, Int32(1)), (stderrFD, Int32(2))] {
            if fd >= 0 {
                posix_spawn_file_actions_adddup2(&actions, fd, target)
            } else {
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)

        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = envp.map { strdup($0) } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, cArgs, cEnv)
        return (pid, rc)
    }
}

/// The one thread every child is forked from. It never exits, so a child's parent-death signal
/// fires only when the whole test process dies.
private final class Spawner: Sendable {
    static let shared = Spawner()

    private let queue = Mutex<[@Sendable () -> Void]>([])
    private let wake = DispatchSemaphore(value: 0)

    private init() {
        Thread.detachNewThread { [self] in
            while true {
                wake.wait()
                let jobs = queue.withLock { q in
                    defer { q.removeAll() }
                    return q
                }
                for job in jobs { job() }
            }
        }
    }

    /// Runs `body` on the spawner thread and returns its result.
    func perform<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        queue.withLock {
            $0.append {
                let value = body()
                result.withLock { $0 = value }
                done.signal()
            }
        }
        wake.signal()
        done.wait()
        return result.withLock { $0! }
    }
}
