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
        let responses = try requireStage("respond")
        let c = config.grade
        let teacher = try generator(c.teacher)
        let byInstruction = Dictionary(grouping: responses, by: { $0["instruction_id"] as! String })
        var items: [WorkItem] = []
        for id in byInstruction.keys.sorted() {
            let group = byInstruction[id]!.sorted { ($0["generator"] as! String) < ($1["generator"] as! String) }
            let first = group[0]
            let base: Record = ["instruction_id": id, "scenario": first["scenario"] as! String, "instruction": first["instruction"] as! String]
            let reference = c.reference_generator.flatMap { name in group.first { $0["generator"] as? String == name }?["response"] as? String }
            for r in group {
                var p = base
                p["response_id"] = r["id"] as! String
                p["response"] = r["response"] as! String
                p["responder"] = r["generator"] as! String
                if c.modes.contains("single") { items.append(WorkItem(id: "grade-single-\(r["id"] as! String)", payload: p.merging(["mode": "single"]) { $1 })) }
                if c.modes.contains("reference"), let reference, r["generator"] as? String != c.reference_generator {
                    items.append(WorkItem(id: "grade-reference-\(r["id"] as! String)", payload: p.merging(["mode": "reference", "reference": reference]) { $1 }))
                }
            }
            if c.modes.contains("pairwise") {
                for i in group.indices {
                    for j in group.indices where j > i {
                        for (order, a, b) in [("ab", group[i], group[j]), ("ba", group[j], group[i])] {
                            var p = base
                            p["mode"] = "pairwise"
                            p["order"] = order
                            p["response_a"] = a["response"] as! String
                            p["response_b"] = b["response"] as! String
                            p["responder_a"] = a["generator"] as! String
                            p["responder_b"] = b["generator"] as! String
                            items.append(WorkItem(id: "grade-pair-\(id)-\(group[i]["generator"] as! String)-\(group[j]["generator"] as! String)-\(order)", payload: p))
                        }
                    }
                }
            }
        }
        var options = JudgeOptions()
        options.explanationTokens = c.max_tokens
        let judge = Judge(client: teacher, catalogue: catalogue, options: options)
        return try await runner("grade", c, concurrency: concurrency(of: c.teacher)).run(items, progress: reporter("grade")) { (item: WorkItem) async -> ItemOutcome in
            do {
                let p = item.payload
                guard let scenario = judge.catalogue.scenario(named: p["scenario"] as! String) else { return .failed("unknown scenario") }
                let mode = JudgeMode(rawValue: p["mode"] as! String)!
                let input = JudgeInput(instruction: p["instruction"] as! String, conversation: [], response: p["response"] as? String,
                                       responseA: p["response_a"] as? String, responseB: p["response_b"] as? String,
                                       reference: p["reference"] as? String)
                let prompt = PromptBuilder.build(mode: mode, scenario: scenario, scale: .standard, input: input)
                let pass = try await judge.pass(mode: mode, scenario: scenario, input: input)
                guard pass.status == .ok, let verdict = pass.label else {
                    return .failed("teacher verdict \(pass.status.rawValue)")
                }
                let text = prompt.verdictPrefix + verdict + "]]" + pass.explanation
                var r = p
                r["id"] = item.id
                r["prompt"] = prompt.text
                r["judgement"] = text
                r["teacher"] = teacher.name
                r["verdict_source"] = pass.source.rawValue
                r["verdict_probabilities"] = pass.distribution
                if mode == .pairwise {
                    r["verdict"] = verdict
                } else {
                    r["score"] = Int(verdict)!
                    let criteria = Self.criterionScores(text, scenario: scenario)
                    if !criteria.isEmpty { r["criteria_scores"] = criteria }
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
