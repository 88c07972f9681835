import Foundation
import ThemisClient
import ThemisJudge

extension Pipeline {
    /// Data augmentation (the paper's Section 5, guideline 2): every rated record is kept, and
    /// also (a) mapped onto other rating scales, (b) for a share of records, re-prompted with a
    /// random subset of its scenario's criteria and the overall score re-derived by least squares
    /// on the per-criterion scores, (c) re-prompted with criteria reworded by the paraphrase
    /// generator, when one is set (one call per scenario).
    func augment() async throws -> StageManifest {
        let stageInput = try requireStage("select", as: GradedRecord.self, id: \.id)
        let selected = stageInput.records
        let c = config.augment
        var rng = SeededGenerator(seed: UInt64(bitPattern: Int64(config.seed)) &+ 17)
        // the regression, fitted per scenario on records whose every criterion was scored;
        // every fifth record held out for its MAE
        var regressions: [String: OverallScoreRegression] = [:]
        var maes: [String: Double] = [:]
        for scenarioID in Set(selected.filter { $0.criteriaScores != nil }.map(\.task.scenario)).sorted() {
            guard let scenario = catalogue.scenario(named: scenarioID) else { continue }
            let rows = Self.rows(selected, scenario: scenarioID, criteria: scenario.criteria.map(\.name))
            let train = rows.enumerated().filter { $0.offset % 5 != 4 }.map(\.element)
            let held = rows.enumerated().filter { $0.offset % 5 == 4 }.map(\.element)
            if let fit = OverallScoreRegression.fit(train, criteria: scenario.criteria.map(\.name)) {
                regressions[scenarioID] = fit
                if let mae = fit.meanAbsoluteError(held, scale: 1...5) { maes[scenarioID] = mae }
            }
        }
        var notes: [String: Int] = [:]
        // criteria paraphrases: one call per scenario, its answer parsed into name: definition lines
        var paraphrased: [String: Scenario] = [:]
        if let name = c.paraphrase_generator {
            let g = try generator(name)
            for id in Set(selected.map(\.task.scenario)).sorted() {
                guard let scenario = catalogue.scenario(named: id) else { continue }
                if let p = try? await Self.paraphrase(scenario, with: g, seed: seed("paraphrase-" + id)) {
                    paraphrased[id] = p
                } else {
                    notes["criteria paraphrase of \(id) unusable", default: 0] += 1
                }
            }
        }
        var out: [GradedRecord] = []
        for r in selected {
            var base = r
            base.augmentation = "original"
            out.append(base)
            let mode = r.task.mode
            guard let score = r.score, let scenario = catalogue.scenario(named: r.task.scenario), mode != .pairwise else { continue }
            let input = JudgeInput(instruction: r.task.instruction, conversation: [], response: r.task.response,
                                   responseA: nil, responseB: nil, reference: r.task.reference)
            let judgement = r.judgement
            for name in c.scales {
                guard let mapping = RatingScaleMapping(rawValue: name), let mapped = mapping.map(score),
                      let scale = try? RatingScale(lower: mapping.range.lowerBound, upper: mapping.range.upperBound) else { continue }
                var m = base
                m.id = r.id + "-scale-" + name
                m.augmentation = "scale " + name
                m.prompt = PromptBuilder.build(mode: mode, scenario: scenario, scale: scale, input: input).text
                m.judgement = Self.remapScores(judgement, mapping)
                m.score = mapped
                out.append(m)
            }
            if let p = paraphrased[scenario.id] {
                var m = base
                m.id = r.id + "-paraphrase"
                m.augmentation = "paraphrased criteria"
                m.prompt = PromptBuilder.build(mode: mode, scenario: p, scale: .standard, input: input).text
                out.append(m)
            }
            // criteria dropping: keep a random non-empty subset, re-derive the overall score
            if Double(rng.next() % 1000) / 1000 < c.drop_criteria, scenario.criteria.count > 1 {
                guard let scores = r.criteriaScores?.mapValues(Double.init) else {
                    notes["criteria dropping skipped: no per-criterion scores", default: 0] += 1
                    continue
                }
                let keep = scenario.criteria.filter { _ in rng.next() % 2 == 0 }
                let subset = keep.isEmpty ? [scenario.criteria[0]] : keep
                guard subset.count < scenario.criteria.count,
                      let fit = OverallScoreRegression.fit(Self.rows(selected, scenario: scenario.id, criteria: subset.map(\.name)),
                                                           criteria: subset.map(\.name)),
                      let derived = fit.rating(scores, scale: 1...5) else {
                    notes["criteria dropping skipped: no regression for the subset", default: 0] += 1
                    continue
                }
                var reduced = scenario
                reduced.criteria = subset
                var m = base
                m.id = r.id + "-criteria"
                m.augmentation = "criteria \(subset.count)/\(scenario.criteria.count)"
                m.prompt = PromptBuilder.build(mode: mode, scenario: reduced, scale: .standard, input: input).text
                m.judgement = Self.replaceVerdict(judgement, with: derived)
                m.score = derived
                out.append(m)
            }
        }
        let items = out.map { WorkItem(id: $0.id, payload: $0) }
        let runner = runner("augment", [PipelineConfig.hash(c), String(config.seed)], concurrency: 1)
        var manifest = try await runner.run(items, rejected: stageInput.rejected) { .records([$0.payload]) }
        for (k, v) in maes { manifest.counts["regression_mae_x1000_\(k)"] = Int((v * 1000).rounded()) }
        manifest.dropped.merge(notes) { $0 + $1 }
        try manifest.write(to: runner.manifestPath)
        return manifest
    }

    /// The scenario with every criterion reworded by `generator` (same meaning, other words);
    /// nil when its answer does not give one `name: definition` line per criterion.
    static func paraphrase(_ scenario: Scenario, with generator: any ModelClient, seed: Int) async throws -> Scenario? {
        let list = scenario.criteria.enumerated().map { "\($0.offset + 1). \($0.element.name): \($0.element.definition)" }.joined(separator: "\n")
        let prompt = """
            Reword each evaluation criterion below: give it a new name and a new definition that mean the same \
            but share as few words as possible with the original. Keep the order and the numbering, one criterion \
            per line, as "N. Name: definition".
            \(list)
            """
        let answer = try await generator.chat(ChatRequest.user(prompt, maxTokens: 60 * scenario.criteria.count, temperature: 0.7, seed: seed))
        let lines = Synthesizer.parseList(answer.text).compactMap { line -> Criterion? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces), definition = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            return name.isEmpty || definition.isEmpty ? nil : Criterion(name: name, definition: definition)
        }
        guard lines.count == scenario.criteria.count else { return nil }
        var s = scenario
        s.criteria = lines
        return s
    }

    /// The per-criterion scores and overall score of the rated records of `scenario` that scored every one of `criteria`.
    static func rows(_ records: [GradedRecord], scenario: String, criteria: [String]) -> [(criteria: [String: Double], overall: Double)] {
        records.compactMap { r in
            guard r.task.scenario == scenario, let scores = r.criteriaScores?.mapValues(Double.init),
                  criteria.allSatisfy({ scores[$0] != nil }), let s = r.score else { return nil }
            return (scores, Double(s))
        }
    }

    /// Every `[[n]]` of a judgement mapped onto another scale.
    static func remapScores(_ text: String, _ mapping: RatingScaleMapping) -> String {
        var out = "", rest = Substring(text)
        while let open = rest.range(of: "[["), let close = rest[open.upperBound...].range(of: "]]") {
            out += rest[..<open.upperBound]
            let inner = rest[open.upperBound..<close.lowerBound]
            out += Int(inner).flatMap(mapping.map).map(String.init) ?? String(inner)
            out += "]]"
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    /// The judgement with its first `[[n]]` (the overall verdict) replaced.
    static func replaceVerdict(_ text: String, with score: Int) -> String {
        guard let open = text.range(of: "[["), let close = text[open.upperBound...].range(of: "]]") else { return text }
        return String(text[..<open.upperBound]) + String(score) + String(text[close.lowerBound...])
    }
}
