import Foundation

extension MetaEvalReport {
    /// The report as a JSON object (`overall`, `by_scenario`, `aggregate`, ...); undefined metrics
    /// are null with the reason in `notes`.
    public var json: [String: Any] {
        var overall = groupJSON(self.overall)
        overall["matched"] = data.matched
        overall["unmatched"] = data.unmatchedPredictions.count + data.unmatchedLabels.count
        overall["unmatched_predictions"] = data.unmatchedPredictions.count
        overall["unmatched_labels"] = data.unmatchedLabels.count
        var out: [String: Any] = [
            "overall": overall,
            "by_scenario": byScenario.mapValues(groupJSON),
            "aggregate": [
                "score": Self.value(aggregate.score), "method": Aggregate.method,
                "components": aggregate.components.map {
                    ["group": $0.group, "metric": $0.metric, "value": $0.value, "random": $0.random, "perfect": $0.perfect,
                     "rescaled": $0.rescaled] as [String: Any]
                },
            ] as [String: Any],
            "intervals": intervals.mapValues { [$0.low, $0.high] },
            "bootstrap": ["samples": bootstrapSamples, "seed": seed, "confidence": 0.95] as [String: Any],
            "inputs": [
                "predictions_read": data.predictionsRead, "labels_read": data.labelsRead,
                "malformed_lines": data.malformedLines, "invalid_labels": data.invalidLabels,
                "duplicate_keys": data.duplicateKeys,
                "unmatched_prediction_ids": Array(data.unmatchedPredictions.prefix(50)),
                "unmatched_label_ids": Array(data.unmatchedLabels.prefix(50)),
                "problems": Array(data.problems.prefix(200)),
            ] as [String: Any],
        ]
        if !byMode.isEmpty { out["by_mode"] = byMode.mapValues(groupJSON) }
        if !referenceMinusSingle.isEmpty {
            out["reference_minus_single"] = referenceMinusSingle.map {
                ["scenario": $0.scenario, "single_agr": $0.single, "reference_agr": $0.reference, "delta": $0.delta] as [String: Any]
            }
        }
        if let r = agrVersusMeanLabel { out["agr_vs_mean_label_pearson"] = r }
        return out
    }

    /// The JSON text of the report (sorted keys).
    /// Non-finite numbers (a metric over values that overflow) are written as null: JSON has none.
    public func jsonData() throws -> Data {
        try JSONSerialization.data(withJSONObject: Self.finite(json), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// `value` with every non-finite number replaced by null.
    static func finite(_ value: Any) -> Any {
        switch value {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let f as Float: return f.isFinite ? f : NSNull()
        case let o as [String: Any]: return o.mapValues(finite)
        case let a as [Any]: return a.map(finite)
        default: return value
        }
    }

    static func value(_ v: Double?) -> Any { v.map { $0 as Any } ?? NSNull() }

    func ratingJSON(_ r: RatingMetrics) -> [String: Any] {
        [
            "n": r.n, "mae": Self.value(r.mae),
            "agr": ["value": Self.value(r.agr), "p": settings.agreementP, "q": settings.agreementQ] as [String: Any],
            "accuracy": Self.value(r.accuracy), "pearson": Self.value(r.pearson), "spearman": Self.value(r.spearman),
            "kendall_tau_\(settings.kendall.rawValue)": Self.value(r.kendall), "mean_label": Self.value(r.meanLabel),
            "mean_prediction": Self.value(r.meanPrediction), "confusion_matrix": r.confusion,
            "scale": [settings.scale.lowerBound, settings.scale.upperBound], "notes": r.notes,
        ]
    }

    func groupJSON(_ g: GroupReport) -> [String: Any] {
        var out: [String: Any] = ["matched": g.matched, "status": g.status,
                                  "n": (g.ratings?.n ?? 0) + (g.pairs?.n ?? 0)]
        if let r = g.ratings { out.merge(ratingJSON(r)) { $1 } }
        if let e = g.expectedScore { out["expected_score"] = ratingJSON(e) }
        if let p = g.pairs {
            var notes = out["notes"] as? [String: String] ?? [:]
            notes.merge(p.notes) { $1 }
            out.merge([
                "pairs": p.n, "accuracy_with_ties": Self.value(p.accuracyWithTies),
                "accuracy_without_ties": Self.value(p.accuracyWithoutTies), "pairs_without_ties": p.nWithoutTies,
                "position_consistency": Self.value(p.positionConsistency), "pairs_both_orders": p.nBothOrders,
                "first_position_preference": Self.value(p.firstPositionPreference),
                "longer_preference": Self.value(p.longerPreference),
                "label_longer_preference": Self.value(p.labelLongerPreference),
                "pair_confusion_matrix": ["order": ["A", "B", "tie"], "counts": p.confusion] as [String: Any],
                "calibration": p.calibration.map { ["predicted_a": $0.predicted, "labelled_a": $0.observed, "n": $0.n] as [String: Any] },
                "notes": notes,
            ]) { $1 }
        }
        if let z = g.z { out["z"] = z }
        return out
    }
}
