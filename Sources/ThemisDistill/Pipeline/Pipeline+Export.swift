import Foundation
import ThemisClient

extension Pipeline {
    /// Training files from the augmented records: OpenAI messages JSONL, ShareGPT and Alpaca JSON,
    /// each sample with the answer's spans tagged `score` (verdict sentence, `[[n]]` scores,
    /// section headings: trained with cross-entropy) or `explanation` (free text: the paper's
    /// similarity loss), and a Markdown dataset card.
    func export() async throws -> StageManifest {
        let records = try requireStage("augment")
        let dir = path("export")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let formats = config.export.formats
        var openai = Data(), sharegpt: [[String: Any]] = [], alpaca: [[String: Any]] = []
        for r in records {
            let prompt = r["prompt"] as! String, answer = r["judgement"] as! String
            let spans = Self.spans(answer).map { ["start": $0.range.lowerBound, "end": $0.range.upperBound, "kind": $0.kind] as [String: Any] }
            let meta: [String: Any] = ["id": r["id"]!, "scenario": r["scenario"]!, "mode": r["mode"]!, "augmentation": r["augmentation"] ?? "original"]
            if formats.contains("openai") {
                let line: [String: Any] = ["messages": [["role": "user", "content": prompt], ["role": "assistant", "content": answer]],
                                           "spans": spans, "metadata": meta]
                openai += try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes]) + Data("\n".utf8)
            }
            if formats.contains("sharegpt") {
                sharegpt.append(["id": r["id"]!, "conversations": [["from": "human", "value": prompt], ["from": "gpt", "value": answer]],
                                 "spans": spans, "metadata": meta])
            }
            if formats.contains("alpaca") {
                alpaca.append(["instruction": prompt, "input": "", "output": answer, "spans": spans, "metadata": meta])
            }
        }
        let options: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if formats.contains("openai") { try AtomicFile.write(openai, to: URL(fileURLWithPath: dir + "/openai.jsonl")) }
        if formats.contains("sharegpt") {
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: sharegpt, options: options), to: URL(fileURLWithPath: dir + "/sharegpt.json"))
        }
        if formats.contains("alpaca") {
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: alpaca, options: options), to: URL(fileURLWithPath: dir + "/alpaca.json"))
        }
        try AtomicFile.write(Data(datasetCard(records).utf8), to: URL(fileURLWithPath: dir + "/README.md"))
        var manifest = StageManifest(stage: "export", configHash: PipelineConfig.hash(config.export), complete: true)
        manifest.counts["samples"] = records.count
        try manifest.write(to: path("export.manifest.json"))
        return manifest
    }

    /// Character ranges of the answer: `score` for the verdict sentence, every `[[n]]`, and
    /// heading lines (`Strengths:`); `explanation` for the rest. Offsets count UTF-16 units, as
    /// JavaScript and Python's `str` index the text, and cover the whole answer.
    static func spans(_ text: String) -> [(range: Range<Int>, kind: String)] {
        let units = Array(text.utf16)
        var marks = [Bool](repeating: false, count: units.count)
        let ns = text as NSString
        // the verdict sentence: from the start to the first "]]"
        let first = ns.range(of: "]]")
        if first.location != NSNotFound && first.location < 400 { for i in 0..<(first.location + 2) { marks[i] = true } }
        var search = NSRange(location: 0, length: ns.length)
        while true {
            let open = ns.range(of: "[[", options: [], range: search)
            guard open.location != NSNotFound else { break }
            let close = ns.range(of: "]]", options: [], range: NSRange(location: open.location, length: ns.length - open.location))
            guard close.location != NSNotFound else { break }
            for i in open.location..<(close.location + 2) { marks[i] = true }
            search = NSRange(location: close.location + 2, length: ns.length - close.location - 2)
        }
        var lineStart = 0
        for (i, u) in units.enumerated() where u == 10 || i == units.count - 1 {
            let end = u == 10 ? i : i + 1
            let line = ns.substring(with: NSRange(location: lineStart, length: end - lineStart)).trimmingCharacters(in: .whitespaces)
            if line.hasSuffix(":") && line.count < 40 { for j in lineStart..<end { marks[j] = true } }
            lineStart = i + 1
        }
        var out: [(Range<Int>, String)] = []
        var start = 0
        for i in 1...max(units.count, 1) where i == units.count || marks[i] != marks[start] {
            if units.isEmpty { break }
            out.append((start..<i, marks[start] ? "score" : "explanation"))
            start = i
        }
        return out
    }

    func datasetCard(_ records: [[String: Any]]) -> String {
        func table(_ title: String, _ key: (([String: Any]) -> String)) -> String {
            let counts = Dictionary(grouping: records, by: key).mapValues(\.count)
            return "## \(title)\n\n| \(title.lowercased()) | samples |\n| --- | ---: |\n"
                + counts.keys.sorted().map { "| \($0) | \(counts[$0]!) |" }.joined(separator: "\n") + "\n\n"
        }
        var card = "# Judge training data\n\n\(records.count) samples: judge prompts (the paper's five blocks) and the teacher's judgements.\n\n"
        card += "Made by `themis distill` with seed \(config.seed); teacher: \(config.grade.teacher); responders: "
            + config.respond.generators.joined(separator: ", ") + ".\n\n"
        card += table("Scenario") { $0["scenario"] as? String ?? "?" }
        card += table("Score") { r in
            guard let score = (r["score"] as? NSNumber)?.intValue else { return "pairwise: " + (r["verdict"] as? String ?? "?") }
            let augmentation = r["augmentation"] as? String ?? ""
            return "\(score) on " + (augmentation.hasPrefix("scale ") ? String(augmentation.dropFirst(6)) : "1-5")
        }
        card += table("Mode") { $0["mode"] as? String ?? "?" }
        card += table("Source model") { r in
            (r["responder"] as? String) ?? "\(r["responder_a"] as? String ?? "?") vs \(r["responder_b"] as? String ?? "?")"
        }
        card += table("Augmentation") { $0["augmentation"] as? String ?? "original" }
        let ifds = records.compactMap { ($0["ifd"] as? NSNumber)?.doubleValue }
        if !ifds.isEmpty {
            card += "## IFD\n\nIFD = mean cross-entropy of the judgement given the prompt / without it (Cherry LLM).\n\n"
            card += "| IFD | samples | |\n| --- | ---: | --- |\n"
            let edges = stride(from: 0.0, to: 1.2, by: 0.1).map { $0 }
            for lo in edges {
                let n = ifds.filter { $0 >= lo && ($0 < lo + 0.1 || lo >= 1.1) }.count
                if n == 0 { continue }
                card += String(format: "| %.1f-%.1f | %d | %@ |\n", lo, lo + 0.1, n, String(repeating: "#", count: min(40, n)))
            }
            card += "\n"
        }
        card += "Spans: each sample's `spans` tag the answer's characters (UTF-16 offsets) as `score` (verdict and scores, "
            + "trained with cross-entropy) or `explanation` (free text, the paper's similarity loss).\n"
        return card
    }
}
