import Foundation
import ThemisClient
import ThemisJudge

extension Pipeline {
    /// The teacher grades every response with the judge's prompts: single (and reference-guided,
    /// against the reference generator's answer) per response, pairwise for each pair of
    /// responders in both orders. The teacher is the judge on the teacher model: the verdict comes
    /// from its label probabilities after the verdict prefix (each record says which source:
    /// exact, top_logprobs or sampled), then it writes the explanation. Verdict and explanation
    /// together are the training target; a pass that fails is dropped with the reason.
    func grade() async throws -> StageManifest {
        let responses = try requireStage("respond", as: ResponseRecord.self, id: \.id)
        let c = config.grade
        let teacher = try generator(c.teacher)
        let byInstruction = Dictionary(grouping: responses.records, by: \.instructionID)
        var items: [WorkItem<GradeTask>] = []
        for (id, unsorted) in byInstruction.sorted(by: { $0.key < $1.key }) {
            let group = unsorted.sorted { $0.generator < $1.generator }
            let first = group[0]
            let base = GradeTask(instructionID: id, scenario: first.scenario, instruction: first.instruction, mode: .single)
            let reference = c.reference_generator.flatMap { name in group.first { $0.generator == name }?.response }
            for r in group {
                var t = base
                t.responseID = r.id
                t.response = r.response
                t.responder = r.generator
                if c.modes.contains("single") { items.append(WorkItem(id: "grade-single-\(r.id)", payload: t)) }
                if c.modes.contains("reference"), let reference, r.generator != c.reference_generator {
                    t.mode = .reference
                    t.reference = reference
                    items.append(WorkItem(id: "grade-reference-\(r.id)", payload: t))
                }
            }
            if c.modes.contains("pairwise") {
                for i in group.indices {
                    for j in group.indices where j > i {
                        for (order, a, b) in [("ab", group[i], group[j]), ("ba", group[j], group[i])] {
                            var t = base
                            t.mode = .pairwise
                            t.order = order
                            t.responseA = a.response
                            t.responseB = b.response
                            t.responderA = a.generator
                            t.responderB = b.generator
                            items.append(WorkItem(id: "grade-pair-\(id)-\(group[i].generator)-\(group[j].generator)-\(order)", payload: t))
                        }
                    }
                }
            }
        }
        var options = JudgeOptions()
        options.explanationTokens = c.max_tokens
        let judge = Judge(client: teacher, catalogue: catalogue, options: options)
        return try await runner("grade", c, concurrency: concurrency(of: c.teacher)).run(items, rejected: responses.rejected, progress: reporter("grade")) {
            (item: WorkItem<GradeTask>) async -> ItemOutcome<GradedRecord> in
            do {
                let t = item.payload
                guard let scenario = judge.catalogue.scenario(named: t.scenario) else { return .failed("unknown scenario '\(t.scenario)'") }
                let input = JudgeInput(instruction: t.instruction, conversation: [], response: t.response,
                                       responseA: t.responseA, responseB: t.responseB, reference: t.reference)
                let prompt = PromptBuilder.build(mode: t.mode, scenario: scenario, scale: .standard, input: input)
                let pass = try await judge.pass(mode: t.mode, scenario: scenario, input: input)
                guard pass.status == .ok, let verdict = pass.label else {
                    return .failed("teacher verdict \(pass.status.rawValue)")
                }
                let text = prompt.verdictPrefix + verdict + "]]" + pass.explanation
                var r = GradedRecord(id: item.id, task: t, prompt: prompt.text, judgement: text, teacher: teacher.name,
                                     verdictSource: pass.source, verdictProbabilities: pass.distribution)
                if t.mode == .pairwise {
                    r.verdict = verdict
                } else {
                    guard let score = Int(verdict) else { return .failed("teacher verdict '\(verdict)' is not a rating") }
                    r.score = score
                    let criteria = Self.criterionScores(text, scenario: scenario)
                    if !criteria.isEmpty { r.criteriaScores = criteria }
                }
                return .records([r])
            } catch {
                return .failed("\(error)")
            }
        }
    }

    /// Per-criterion scores from a judgement: a line naming a criterion and ending in `[[n]]`.
    static func criterionScores(_ text: String, scenario: Scenario) -> [String: Int] {
        var out: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let lower = line.lowercased()
            guard let open = line.range(of: "[[", options: .backwards), let close = line.range(of: "]]", options: .backwards),
                  open.upperBound <= close.lowerBound, let value = Int(line[open.upperBound..<close.lowerBound]) else { continue }
            for c in scenario.criteria where out[c.name] == nil && lower.contains(c.name.lowercased()) {
                out[c.name] = value
                break
            }
        }
        return out
    }
}
