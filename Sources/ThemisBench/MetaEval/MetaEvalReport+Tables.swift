import Foundation

/// A titled table of the report; Markdown and HTML render the same tables.
public struct ReportTable: Sendable {
    public var title: String
    public var header: [String]
    public var rows: [[String]]
    /// Lines under the table (undefined metrics and why).
    public var notes: [String] = []
}

extension MetaEvalReport {
    static func format(_ v: Double?, _ digits: Int = 3) -> String {
        guard let v else { return "undefined" }
        return String(format: "%.\(digits)f", v)
    }

    var agrName: String {
        "Agr(\(Self.trim(settings.agreementP)),\(Self.trim(settings.agreementQ)))"
    }

    static func trim(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }

    func interval(_ name: String) -> String {
        guard let i = intervals[name] else { return "" }
        return "[\(Self.format(i.low)), \(Self.format(i.high))]"
    }

    func randomValue(_ metric: String) -> String {
        aggregate.components.first { $0.metric == metric }.map { Self.format($0.random) } ?? ""
    }

    /// Every table of the report, in reading order.
    public var tables: [ReportTable] {
        var tables: [ReportTable] = []
        tables.append(ReportTable(
            title: "Inputs", header: ["predictions read", "label records", "matched", "predictions without label",
                                      "labels without prediction", "malformed lines", "invalid labels", "duplicate keys"],
            rows: [[data.predictionsRead, data.labelsRead, data.matched, data.unmatchedPredictions.count, data.unmatchedLabels.count,
                    data.malformedLines, data.invalidLabels, data.duplicateKeys].map(String.init)]))
        let kendallName = "Kendall τ-\(settings.kendall.rawValue)"
        if let r = overall.ratings {
            var t = ReportTable(title: "Ratings (n = \(r.n), scale \(settings.scale.lowerBound)-\(settings.scale.upperBound))",
                                header: ["metric", "value", "95% CI", "random judge"], rows: [])
            let rows: [(String, String, Double?)] = [
                ("MAE", "mae", r.mae), (agrName, "agr", r.agr), ("exact accuracy", "accuracy", r.accuracy),
                ("Pearson r", "pearson", r.pearson), ("Spearman ρ", "spearman", r.spearman), (kendallName, "kendall", r.kendall),
            ]
            t.rows = rows.map { [$0.0, Self.format($0.2), interval($0.1), randomValue($0.1)] }
            t.rows.append(["mean label / mean rating", "\(Self.format(r.meanLabel)) / \(Self.format(r.meanPrediction))", "", ""])
            t.notes = r.notes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
            tables.append(t)
            if let e = overall.expectedScore {
                tables.append(ReportTable(
                    title: "Expected score Σ p(k)·k (n = \(e.n))", header: ["MAE", agrName, "accuracy (rounded)", "Pearson r", "Spearman ρ", kendallName],
                    rows: [[e.mae, e.agr, e.accuracy, e.pearson, e.spearman, e.kendall].map { Self.format($0) }],
                    notes: e.notes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }))
            }
            let labels = settings.scale.map(String.init)
            tables.append(ReportTable(title: "Confusion matrix (rows: human label, columns: rating)", header: ["label"] + labels,
                                      rows: zip(labels, r.confusion).map { [$0.0] + $0.1.map(String.init) }))
        }
        if let p = overall.pairs {
            var t = ReportTable(title: "Pairs (n = \(p.n))", header: ["metric", "value", "n", "95% CI", "random judge"], rows: [])
            t.rows = [
                ["accuracy with ties", Self.format(p.accuracyWithTies), String(p.n), interval("accuracy_with_ties"), "0.333"],
                ["accuracy without ties", Self.format(p.accuracyWithoutTies), String(p.nWithoutTies), interval("accuracy_without_ties"), "0.500"],
                ["position consistency", Self.format(p.positionConsistency), String(p.nBothOrders), interval("position_consistency"), "0.333"],
                ["first-position preference", Self.format(p.firstPositionPreference), String(p.nOrderVerdicts), "", "0.500"],
                ["prefers the longer response", Self.format(p.longerPreference), String(p.nLengthDecided), "", "0.500"],
                ["labels prefer the longer response", Self.format(p.labelLongerPreference), "", "", ""],
            ]
            t.notes = p.notes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
            tables.append(t)
            tables.append(ReportTable(title: "Pair confusion matrix (rows: human label, columns: verdict)", header: ["label", "A", "B", "tie"],
                                      rows: zip(["A", "B", "tie"], p.confusion).map { [$0.0] + $0.1.map(String.init) }))
        }
        tables.append(scenarioTable())
        if !byMode.isEmpty {
            tables.append(ReportTable(
                title: "By judging mode", header: ["mode", "matched", "MAE", agrName, "accuracy with ties", "position consistency"],
                rows: byMode.keys.sorted().map { name in
                    let g = byMode[name]!
                    return [name, String(g.matched), Self.format(g.ratings?.mae), Self.format(g.ratings?.agr),
                            Self.format(g.pairs?.accuracyWithTies), Self.format(g.pairs?.positionConsistency)]
                }))
        }
        if !referenceMinusSingle.isEmpty {
            tables.append(ReportTable(
                title: "Reference-guided minus single-answer grading (\(agrName))", header: ["scenario", "single", "reference", "Δ"],
                rows: referenceMinusSingle.map { [$0.scenario, Self.format($0.single), Self.format($0.reference), Self.format($0.delta)] }))
        }
        let statuses = overall.status.keys.sorted()
        tables.append(ReportTable(title: "Verdict status", header: ["status", "count"],
                                  rows: statuses.map { [$0, String(overall.status[$0]!)] }))
        var agg = ReportTable(title: "Aggregate: \(Self.format(aggregate.score))", header: ["mode", "metric", "value", "random", "perfect", "rescaled"],
                              rows: aggregate.components.map {
                                  [$0.group, $0.metric, Self.format($0.value), Self.format($0.random), Self.format($0.perfect), Self.format($0.rescaled)]
                              })
        agg.notes = [Aggregate.method]
        tables.append(agg)
        return tables
    }

    func scenarioTable() -> ReportTable {
        let names = byScenario.keys.sorted()
        let rated = byScenario.values.contains { $0.ratings != nil }, paired = byScenario.values.contains { $0.pairs != nil }
        var header = ["scenario", "matched"]
        if rated { header += ["MAE", agrName, "accuracy", "Pearson r", "Spearman ρ", "Kendall τ-\(settings.kendall.rawValue)", "mean label"] }
        if paired { header += ["accuracy with ties", "accuracy without ties", "position consistency"] }
        header.append("z (\(rated ? agrName : "accuracy"))")
        func row(_ name: String, _ g: GroupReport) -> [String] {
            var r = [name, String(g.matched)]
            if rated {
                let m = g.ratings
                r += [m?.mae, m?.agr, m?.accuracy, m?.pearson, m?.spearman, m?.kendall].map { m == nil ? "" : Self.format($0) }
                r.append(m == nil ? "" : Self.format(m?.meanLabel))
            }
            if paired {
                let p = g.pairs
                r += [p?.accuracyWithTies, p?.accuracyWithoutTies, p?.positionConsistency].map { p == nil ? "" : Self.format($0) }
            }
            r.append(g.z.map { Self.format($0) } ?? "")
            return r
        }
        var t = ReportTable(title: "By scenario", header: header, rows: names.map { row($0, byScenario[$0]!) } + [row("all", overall)])
        if byScenario.count < 2 {
            t.notes.append("z: undefined with a single scenario")
        } else if byScenario.values.allSatisfy({ $0.z == nil }) {
            t.notes.append("z: undefined: every scenario has the same value")
        }
        if let r = agrVersusMeanLabel {
            t.notes.append("Pearson r between scenario \(agrName) and mean human label: \(Self.format(r)) (the paper's Figure 1)")
        }
        return t
    }

    /// The report as Markdown (the tables, with their notes as lists).
    public var markdown: String {
        var out = "# Meta-evaluation\n"
        for t in tables {
            out += "\n## \(t.title)\n\n"
            out += "| " + t.header.joined(separator: " | ") + " |\n"
            out += "|" + t.header.map { _ in " --- |" }.joined() + "\n"
            for row in t.rows { out += "| " + row.joined(separator: " | ") + " |\n" }
            if !t.notes.isEmpty { out += "\n" + t.notes.map { "- \($0)" }.joined(separator: "\n") + "\n" }
        }
        if bootstrapSamples > 0 {
            out += "\n95% intervals: percentile bootstrap, \(bootstrapSamples) resamples, seed \(seed).\n"
        }
        return out
    }
}
