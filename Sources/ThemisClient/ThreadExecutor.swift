import Foundation

/// A serial executor on a thread of its own. A `LocalModel` runs its forward passes here, so that
/// seconds of prefill never hold one of the few threads of Swift's cooperative pool, which the
/// HTTP clients, the server and the callers' tasks need meanwhile.
final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    // `jobs` is only touched under `condition`; the thread lives as long as the process.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }
}
