import Foundation
import ThemisJudge

extension Pipeline {
    /// IFD of every graded record (judge prompt → teacher judgement) with the local model, then
    /// the strategy, score balancing, scenario targets and the total.
    func select() async throws -> StageManifest {
        let graded = try requireStage("grade", as: GradedRecord.self, id: \.id)
        let c = config.select
        guard let strategy = SelectionStrategy(rawValue: c.strategy) else {
            throw DistillError.config("select.strategy: '\(c.strategy)' is not random, ifd or ifd-z")
        }
        // IFD scores, resumable like any stage: one item per graded record
        var ifd: [String: Double] = [:]
        if strategy != .random || ifdModel != nil {
            guard let model = ifdModel else { throw DistillError.config("select.strategy \(c.strategy) needs select.ifd_model") }
            let scorer = try IFDScorer(client: model, metric: IFDScorer.Metric(rawValue: c.ifd_metric) ?? .crossEntropyRatio)
            let items = graded.records.map { WorkItem(id: "ifd-" + $0.id, payload: (prompt: $0.prompt, judgement: $0.judgement)) }
            let hash = PipelineConfig.hash([c.ifd_model ?? "", c.ifd_metric])
            _ = try await StageRunner(stage: "ifd", directory: directory, configHash: hash, concurrency: 1)
                .run(items, progress: reporter("ifd")) { item async -> ItemOutcome<IFDRecord> in await Self.ifdOutcome(item, scorer) }
            for r in try StageRunner.records(path("ifd.jsonl"), as: IFDRecord.self, id: \.id).records where r.id.hasPrefix("ifd-") {
                ifd[String(r.id.dropFirst(4))] = r.ifd
            }
        }
        var rules = SelectionRules()
        rules.strategy = strategy
        rules.maxScoreShare = c.max_score_share
        rules.scenarioTargets = c.scenario_targets
        rules.total = c.total
        rules.seed = UInt64(bitPattern: Int64(config.seed))
        let candidates = graded.records.map { Candidate(id: $0.id, scenario: $0.task.scenario, score: $0.score, ifd: ifd[$0.id]) }
        let result = Selector.select(candidates, rules: rules)
        // ids are unique: requireStage rejected repeated ones
        let byID = Dictionary(graded.records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let runner = runner("select", [PipelineConfig.hash(c), String(config.seed)], concurrency: 1)
        // selection is cheap and whole: the stage writes its file at once
        let records: [GradedRecord] = result.kept.compactMap { candidate in
            guard var r = byID[candidate.id] else { return nil }
            r.ifd = candidate.ifd
            return r
        }
        let items = records.map { WorkItem(id: $0.id, payload: $0) }
        var manifest = try await runner.run(items, rejected: graded.rejected) { .records([$0.payload]) }
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
    static func ifdOutcome(_ item: WorkItem<(prompt: String, judgement: String)>, _ scorer: IFDScorer) async -> ItemOutcome<IFDRecord> {
        do {
            let s = try await scorer.score(instruction: item.payload.prompt, answer: item.payload.judgement)
            guard s.ifd.isFinite else { return .failed("IFD is not a finite number") }
            return .records([IFDRecord(id: item.id, ifd: s.ifd, conditioned: s.conditioned, unconditioned: s.unconditioned,
                                       answerTokens: s.answerTokens)])
        } catch {
            return .failed("\(error)")
        }
    }
}
