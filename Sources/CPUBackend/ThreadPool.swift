import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A persistent pool of spinning worker threads for fine-grained parallel loops.
///
/// Decode runs hundreds of 20-100 µs kernels per token; dispatch queues cost about as much as
/// the work (see shared/cpu-kernel-notes.md), so workers spin on a generation counter for a
/// while after each job and only then sleep on a condition variable.
/// `run` must be called from one thread at a time (the backend's owner).
public final class ThreadPool: @unchecked Sendable {
    // Safety: `job`, `jobTasks` are written by the caller only before `generation` is bumped
    // (release) and read by workers after they observe the bump (acquire); `mutex`/`cond`
    // guard the sleep hand-off.
    public let threadCount: Int
    private let generation = Atomic<Int>(0)
    private let nextTask = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var job: ((Int, Int) -> Void)?
    private var jobTasks = 0
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var threads: [pthread_t] = []
    /// One claim cursor per segment for `run(count:unit:)`.
    private let cursors: UnsafeMutablePointer<Atomic<Int>>

    /// Spin iterations before a worker sleeps (a few milliseconds).
    private static let spinLimit = 2_000_000

    /// Starts `threads - 1` workers; the calling thread is the last participant.
    public init(threads: Int) {
        threadCount = max(1, threads)
        cursors = .allocate(capacity: threadCount)
        for i in 0..<threadCount { (cursors + i).initialize(to: Atomic<Int>(0)) }
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        for index in 1..<threadCount {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: index))
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { arg in
                let start = Unmanaged<WorkerStart>.fromOpaque(arg!).takeRetainedValue()
                start.pool.workerLoop(index: start.index)
                return nil
            }, box.toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            self.threads.append(tid)
        }
    }

    deinit {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
        for t in threads { pthread_join(t, nil) }
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&cond)
        cursors.deinitialize(count: threadCount)
        cursors.deallocate()
    }

    /// Runs `body` over `0..<count` in pieces of at most `unit`, split into one contiguous
    /// segment per thread; a thread that finishes its segment takes pieces from the others.
    ///
    /// Decode streams weights, and the prefetcher wants each thread on one long sequential run;
    /// a static split then leaves the faster thread idle at every barrier. This keeps the long
    /// runs and lets the faster thread finish the slower one's tail.
    public func run(count: Int, unit: Int, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let segments = threadCount
        let length = (count + segments - 1) / segments
        for s in 0..<segments { cursors[s].store(s * length, ordering: .relaxed) }
        let cursors = self.cursors
        run(tasks: segments) { first, _ in
            for i in 0..<segments {
                let s = (first + i) % segments
                let end = min(count, (s + 1) * length)
                while true {
                    let start = cursors[s].add(unit, ordering: .relaxed).oldValue
                    if start >= end { break }
                    body(start..<min(end, start + unit))
                }
            }
        }
    }

    /// Runs `body(task, thread)` for every task in `0..<tasks` across the pool and returns when
    /// all are done. `thread` is in `0..<threadCount` and identifies per-thread scratch.
    public func run(tasks: Int, _ body: (Int, Int) -> Void) {
        if tasks <= 0 { return }
        if tasks == 1 || threadCount == 1 {
            for t in 0..<tasks { body(t, 0) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            job = escaping
            jobTasks = tasks
            nextTask.store(0, ordering: .relaxed)
            finished.store(0, ordering: .relaxed)
            generation.add(1, ordering: .releasing)
            if sleepers.load(ordering: .acquiring) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&cond)
                pthread_mutex_unlock(&mutex)
            }
            drain(body: escaping, thread: 0, tasks: tasks)
            while finished.load(ordering: .acquiring) < threadCount - 1 {}
            job = nil
        }
    }

    @inline(__always)
    private func drain(body: (Int, Int) -> Void, thread: Int, tasks: Int) {
        while true {
            let t = nextTask.add(1, ordering: .relaxed).oldValue
            if t >= tasks { break }
            body(t, thread)
        }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins >= Self.spinLimit {
                    pthread_mutex_lock(&mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    current = generation.load(ordering: .acquiring)
                    while current == seen {
                        pthread_cond_wait(&cond, &mutex)
                        current = generation.load(ordering: .acquiring)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(&mutex)
                    break
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            if let body = job { drain(body: body, thread: index, tasks: jobTasks) }
            finished.add(1, ordering: .releasing)
        }
    }
}

private final class WorkerStart: @unchecked Sendable {
    // Handed to exactly one new thread, never shared.
    let pool: ThreadPool
    let index: Int
    init(pool: ThreadPool, index: Int) { self.pool = pool; self.index = index }
}
