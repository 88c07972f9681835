import Foundation
import ThemisJudge

extension Pipeline {
    /// IFD of every graded record (judge prompt → teacher judgement) with the local model, then
    /// the strategy, score balancing, scenario targets and the total.
    func select() async throws -> StageManifest {
        let graded = try requireStage("grade")
        let c = config.select
        let strategy = SelectionStrategy(rawValue: c.strategy)!
        // IFD scores, resumable like any stage: one item per graded record
        var ifd: [String: Double] = [:]
        if strategy != .random || ifdModel != nil {
            guard let model = ifdModel else { throw DistillError.config("select.strategy \(c.strategy) needs select.ifd_model") }
            let scorer = try IFDScorer(client: model, metric: IFDScorer.Metric(rawValue: c.ifd_metric) ?? .crossEntropyRatio)
            let items = graded.map { WorkItem(id: "ifd-" + ($0["id"] as! String), payload: ["prompt": $0["prompt"] as! String, "judgement": $0["judgement"] as! String]) }
            let hash = PipelineConfig.hash([c.ifd_model ?? "", c.ifd_metric])
            _ = try await StageRunner(stage: "ifd", directory: directory, configHash: hash, concurrency: 1)
                .run(items, progress: reporter("ifd")) { (item: WorkItem) async -> ItemOutcome in await Self.ifdOutcome(item, scorer) }
            for r in try StageRunner.records(path("ifd.jsonl")) {
                ifd[String((r["id"] as! String).dropFirst(4))] = (r["ifd"] as? NSNumber)?.doubleValue
            }
        }
        var rules = SelectionRules()
        rules.strategy = strategy
        rules.maxScoreShare = c.max_score_share
        rules.scenarioTargets = c.scenario_targets
        rules.total = c.total
        rules.seed = UInt64(bitPattern: Int64(config.seed))
        let candidates = graded.map { r in
            Candidate(id: r["id"] as! String, scenario: r["scenario"] as! String, score: (r["score"] as? NSNumber)?.intValue,
                      ifd: ifd[r["id"] as! String])
        }
        let result = Selector.select(candidates, rules: rules)
        let byID = Dictionary(uniqueKeysWithValues: graded.map { ($0["id"] as! String, $0) })
        let runner = runner("select", [PipelineConfig.hash(c), String(config.seed)], concurrency: 1)
        // selection is cheap and whole: the stage writes its file at once
        let records: [Record] = result.kept.map { candidate in
            var r = byID[candidate.id]!.mapValues { $0 as! any Sendable }
            if let v = candidate.ifd { r["ifd"] = v }
            return r
        }
        let items = records.map { WorkItem(id: $0["id"] as! String, payload: $0) }
        var manifest = try await runner.run(items) { .records([$0.payload]) }
        for d in result.dropped {
            let reason = d.reason.hasPrefix("IFD ") && d.reason.hasSuffix(">= 1") ? "IFD >= 1" : d.reason
            manifest.dropped[reason, default: 0] += 1
        }
        manifest.counts["candidates"] = candidates.count
        try manifest.write(to: runner.manifestPath)
        return manifest
    }
}

extension Pipeline {
    /// The IFD record of one graded item.
    static func ifdOutcome(_ item: WorkItem, _ scorer: IFDScorer) async -> ItemOutcome {
        do {
            let s = try await scorer.score(instruction: item.payload["prompt"] as! String, answer: item.payload["judgement"] as! String)
            return .records([["id": item.id, "ifd": s.ifd, "conditioned": s.conditioned, "unconditioned": s.unconditioned,
                              "answer_tokens": s.answerTokens]])
        } catch {
            return .failed("\(error)")
        }
    }
}
