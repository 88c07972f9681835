import Foundation

/// `RUN/report.html`: the run's settings and summary, and its loss curves (training loss per
/// step, evaluation loss where measured) as an inline SVG chart: one file, no scripts.
enum TrainingReport {
    static func html(records: [StepRecord], settings: TrainSettings, summary: TrainSummary) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let settingsJSON = (try? encoder.encode(settings)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let summaryJSON = (try? encoder.encode(summary)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>themis train: loss</title>
        <style>body{font-family:sans-serif;margin:2em;max-width:60em}pre{background:#f4f4f4;padding:1em}
        .train{stroke:#1f77b4}.eval{stroke:#d62728}</style></head><body>
        <h1>Training loss</h1>
        <p>\(summary.steps) of \(summary.totalSteps) steps, \(summary.samples) samples, \(summary.trainedValues) trained values,
        \(String(format: "%.0f", summary.tokensPerSecond)) tokens/s.
        <span style="color:#1f77b4">training loss</span> per step,
        <span style="color:#d62728">evaluation loss</span> on held-aside samples.</p>
        \(chart(records))
        <h2>Settings</h2><pre>\(escape(settingsJSON))</pre>
        <h2>Summary</h2><pre>\(escape(summaryJSON))</pre>
        </body></html>

        """
    }

    static func chart(_ records: [StepRecord]) -> String {
        let width = 800.0, height = 360.0, margin = 50.0
        let points = records.map { (Double($0.step), $0.loss) }
        let evals = records.compactMap { r in r.evalLoss.map { (Double(r.step), $0) } }
        let all = (points + evals).map(\.1).filter(\.isFinite)
        guard let top = all.max(), let bottom = all.min(), let last = records.last?.step else {
            return "<p>No steps yet.</p>"
        }
        let lo = min(bottom, 0), hi = top > lo ? top : lo + 1
        func x(_ s: Double) -> Double { margin + (width - 2 * margin) * (last > 1 ? (s - 1) / Double(last - 1) : 0.5) }
        func y(_ v: Double) -> Double { height - margin - (height - 2 * margin) * (v - lo) / (hi - lo) }
        func path(_ p: [(Double, Double)], _ cls: String) -> String {
            let d = p.filter { $0.1.isFinite }.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
            return "<polyline class=\"\(cls)\" fill=\"none\" stroke-width=\"1.5\" points=\"\(d)\"/>"
        }
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += "<line x1=\"\(margin)\" y1=\"\(height - margin)\" x2=\"\(width - margin)\" y2=\"\(height - margin)\" stroke=\"#888\"/>"
        svg += "<line x1=\"\(margin)\" y1=\"\(margin)\" x2=\"\(margin)\" y2=\"\(height - margin)\" stroke=\"#888\"/>"
        for i in 0...4 {
            let v = lo + (hi - lo) * Double(i) / 4
            svg += String(format: "<text x=\"5\" y=\"%.1f\" font-size=\"11\">%.3f</text>", y(v) + 4, v)
        }
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">step 1</text>", margin, height - margin + 18)
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">step %d</text>", width - margin - 40,
                      height - margin + 18, last)
        svg += path(points, "train") + path(evals, "eval")
        for (s, v) in evals { svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#d62728\"/>", x(s), y(v)) }
        return svg + "</svg>"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
