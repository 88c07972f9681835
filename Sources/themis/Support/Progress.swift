import Foundation
import Synchronization

/// Where long work stands, on stderr: `label done/total`, what the work reports (a loss), a rate
/// and the ETA. Redrawn in place on a terminal; elsewhere (a log file) a line at most every
/// `interval` seconds, and the last one. Safe to call from concurrent tasks.
final class Progress: Sendable {
    private struct State {
        var label: String
        var total: Int
        var done = 0
        var start = Date()
        var lastLine = Date.distantPast
        var detail = ""
        var rate: Double?
        var eta: Double?
        /// Whether the current line is on the screen unfinished (a terminal) or unprinted (a file).
        var pending = false
    }

    private let state: Mutex<State>
    private let unit: String
    private let interval: TimeInterval
    private let terminal = isatty(STDERR_FILENO) != 0

    /// Work of `total` steps, counted in `unit` per second unless `update` gives another rate.
    init(total: Int, label: String = "", unit: String = "items", interval: TimeInterval = 30) {
        state = Mutex(State(label: label, total: total))
        self.unit = unit
        self.interval = interval
    }

    /// One more step done.
    func step() {
        state.withLock { s in
            s.done += 1
            draw(&s)
        }
    }

    /// Where the work stands: `done` of `total` (a new `label` starts a new line and clock);
    /// `rate` (units per second) and `eta` (seconds) when the work knows them better than done
    /// steps per second since the start.
    func update(done: Int, total: Int? = nil, label: String? = nil, detail: String = "", rate: Double? = nil,
                eta: Double? = nil) {
        state.withLock { s in
            if let label, label != s.label {
                end(&s)
                s = State(label: label, total: total ?? s.total)
            }
            s.done = done
            if let total { s.total = total }
            (s.detail, s.rate, s.eta) = (detail, rate, eta)
            draw(&s)
        }
    }

    /// Ends the line (a terminal) or prints the last state (a file).
    func finish() { state.withLock { end(&$0) } }

    private func end(_ s: inout State) {
        guard s.pending else { return }
        if !terminal { draw(&s, force: true) }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        s.pending = false
    }

    private func draw(_ s: inout State, force: Bool = false) {
        let now = Date()
        let finished = s.done >= s.total
        if !terminal && !force && !finished && now.timeIntervalSince(s.lastLine) < interval {
            s.pending = true
            return
        }
        let seconds = max(now.timeIntervalSince(s.start), 1e-9)
        let perSecond = s.rate ?? Double(s.done) / seconds
        let remaining = s.eta ?? Double(s.total - s.done) * seconds / Double(max(s.done, 1))
        var line = (s.label.isEmpty ? "" : s.label + " ") + "\(s.done)/\(s.total)"
        if !s.detail.isEmpty { line += "  " + s.detail }
        line += String(format: perSecond >= 100 ? "  %.0f %@/s" : "  %.2f %@/s", perSecond, unit)
        if !finished { line += "  ETA " + Self.duration(remaining) }
        if terminal {
            FileHandle.standardError.write(Data(("\u{1B}[2K\r" + line + (finished ? "\n" : "")).utf8))
            s.pending = !finished
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
            s.pending = false
        }
        s.lastLine = now
    }

    /// `1 h 5 min`, `3 min 12 s`, `40 s`.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite && seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600) h \(s % 3600 / 60) min" : s >= 60 ? "\(s / 60) min \(s % 60) s" : "\(s) s"
    }
}
