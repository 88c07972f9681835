import Foundation
import JSONLines
import Yams

extension PipelineConfig {
    /// Reads a YAML (or JSON) configuration: every key missing takes its default, an unknown key
    /// is an error naming it, and the result is checked for consistency.
    public static func load(_ path: String) throws -> PipelineConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DistillError.config("cannot read \(path)") }
        return try parse(text, path: path)
    }

    /// Largest configuration file read, and deepest nesting of its sections and lists: a
    /// configuration is a few kilobytes two or three levels deep, and the YAML parser recurses.
    static let maximumBytes = 1 << 20
    static let maximumDepth = 32

    /// Reads a configuration from YAML (or JSON) text; `path` names it in errors.
    public static func parse(_ text: String, path: String) throws -> PipelineConfig {
        guard text.utf8.count <= maximumBytes else {
            throw DistillError.config("\(path) is larger than \(maximumBytes >> 20) MiB: not a pipeline configuration")
        }
        if let problem = structureProblem(text) { throw DistillError.config("\(path): \(problem)") }
        let loaded: Any?
        do {
            loaded = try Yams.compose(yaml: text).map { try plain($0) }
        } catch let error as DistillError {
            throw DistillError.config("\(path): \(error)")
        } catch {
            throw DistillError.config("\(path) is not valid YAML: \(error)")
        }
        guard let user = loaded as? [String: Any] else { throw DistillError.config("\(path) must be a mapping of sections") }
        guard let defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(PipelineConfig())) as? [String: Any] else {
            throw DistillError.config("the default configuration does not encode as a mapping")
        }
        let merged = try merge(defaults, user, path: "", open: ["generators", "reference_scenarios", "quizzes", "scenario_targets"])
        if let key = nonFinite(merged, path: "") {
            throw DistillError.config("\(path): '\(key)' is not a finite number")
        }
        let config: PipelineConfig
        do {
            config = try JSONDecoder().decode(PipelineConfig.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw DistillError.config("\(path): '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw DistillError.config("\(path): \(JSONLReader.describe(error))")
        }
        try config.validate()
        return config
    }

    /// Why `text` is not read at all: nesting deeper than `maximumDepth` (flow brackets or block
    /// indentation), or anchors, whose aliases can expand a small file into an enormous one.
    static func structureProblem(_ text: String) -> String? {
        var depth = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let indent = line.prefix { $0 == " " || $0 == "-" }.count
            if indent > 4 * maximumDepth { return "nested more than \(maximumDepth) levels deep" }
            var quote: Character?
            var previous: Character = " "
            for ch in line {
                if let q = quote {
                    if ch == q { quote = nil }
                } else if ch == "#" && (previous == " " || previous == "\t") {
                    break
                } else if ch == "\"" || ch == "'" {
                    quote = ch
                } else if ch == "[" || ch == "{" {
                    depth += 1
                    if depth > maximumDepth { return "nested more than \(maximumDepth) levels deep" }
                } else if ch == "]" || ch == "}" {
                    depth = max(0, depth - 1)
                } else if ch == "&" && (previous == " " || previous == ":" || previous == "-" || previous == "[" || previous == ",") {
                    return "YAML anchors and aliases are not accepted in a pipeline configuration"
                }
                previous = ch
            }
        }
        return nil
    }

    /// A YAML node as plain values (mappings with text keys, arrays, scalars as their tags say).
    /// Yams' own `load` traps on a mapping key that is not text (found by the distill-config fuzzer).
    static func plain(_ node: Node) throws -> Any {
        switch node {
        case .scalar: return Constructor.default.any(from: node)
        case .sequence(let items): return try items.map(plain)
        case .mapping(let pairs):
            var out: [String: Any] = [:]
            for (key, value) in pairs {
                guard case .scalar(let k) = key else { throw DistillError.config("a mapping key must be text, not a mapping or a list") }
                out[k.string] = try plain(value)
            }
            return out
        }
    }

    /// The dotted path of the first non-finite number in `value` (`.nan`, `.inf` in YAML).
    static func nonFinite(_ value: Any, path: String) -> String? {
        switch value {
        case let d as Double: return d.isFinite ? nil : (path.isEmpty ? "value" : path)
        case let o as [String: Any]:
            for (k, v) in o { if let p = nonFinite(v, path: path.isEmpty ? k : path + "." + k) { return p } }
            return nil
        case let a as [Any]:
            for (i, v) in a.enumerated() { if let p = nonFinite(v, path: "\(path)[\(i)]") { return p } }
            return nil
        default: return nil
        }
    }

    static let optionalKeys: Set<String> = ["ifd_model", "total", "paraphrase_generator", "reference_generator", "max_score_share"]

    /// `user` over `defaults`; keys not in the defaults are errors except under the `open` maps.
    static func merge(_ defaults: [String: Any], _ user: [String: Any], path: String, open: Set<String>) throws -> [String: Any] {
        var out = defaults
        for (key, value) in user {
            let here = path.isEmpty ? key : path + "." + key
            guard let base = defaults[key] else {
                // optional settings are absent from the defaults
                guard optionalKeys.contains(key) else { throw DistillError.config("unknown key '\(here)'") }
                out[key] = value
                continue
            }
            if let b = base as? [String: Any], let v = value as? [String: Any], !open.contains(key) {
                out[key] = try merge(b, v, path: here, open: open)
            } else {
                out[key] = value
            }
        }
        return out
    }

    public func validate() throws {
        func range<T: Comparable>(_ value: T, _ r: ClosedRange<T>, _ field: String) throws {
            guard r.contains(value) else { throw DistillError.config("\(field) is \(value): it must be between \(r.lowerBound) and \(r.upperBound)") }
        }
        for (name, g) in generators {
            if let n = g.concurrency { try range(n, 1...256, "generators.\(name).concurrency") }
            if let n = g.max_attempts { try range(n, 1...100, "generators.\(name).max_attempts") }
            if let r = g.requests_per_second { try range(r, 0.001...100_000, "generators.\(name).requests_per_second") }
            if let t = g.timeout_seconds { try range(t, 0.1...86_400, "generators.\(name).timeout_seconds") }
        }
        try range(synthesize.per_call, 1...100, "synthesize.per_call")
        try range(synthesize.dedup_ngram, 1...16, "synthesize.dedup_ngram")
        try range(synthesize.dedup_threshold, 0...1, "synthesize.dedup_threshold")
        try range(synthesize.max_tokens, 1...32_768, "synthesize.max_tokens")
        try range(synthesize.temperature, 0...10, "synthesize.temperature")
        for (k, n) in synthesize.reference_scenarios { try range(n, 0...100_000, "synthesize.reference_scenarios.\(k)") }
        for (k, n) in synthesize.quizzes { try range(n, 0...100_000, "synthesize.quizzes.\(k)") }
        for (field, list) in [("difficulties", synthesize.difficulties), ("audiences", synthesize.audiences), ("subjects", synthesize.subjects)]
            where list.isEmpty && synthesize.quizzes.values.contains(where: { $0 > 0 }) {
            throw DistillError.config("synthesize.\(field): quizzes need at least one")
        }
        try range(respond.max_tokens, 1...32_768, "respond.max_tokens")
        try range(respond.temperature, 0...10, "respond.temperature")
        try range(grade.max_tokens, 1...32_768, "grade.max_tokens")
        if let share = select.max_score_share { try range(share, 0.01...1, "select.max_score_share") }
        for (k, n) in select.scenario_targets { try range(n, 0...10_000_000, "select.scenario_targets.\(k)") }
        if let total = select.total { try range(total, 0...10_000_000, "select.total") }
        try range(augment.drop_criteria, 0...1, "augment.drop_criteria")
        func known(_ name: String, _ field: String) throws {
            guard generators[name] != nil else {
                throw DistillError.config("\(field): no generator '\(name)' (defined: \(generators.keys.sorted().joined(separator: ", ")))")
            }
        }
        for (name, g) in generators where (g.local == nil) == (g.url == nil) {
            throw DistillError.config("generators.\(name): give either local or url")
        }
        for (name, g) in generators where g.local == nil && (g.lora != nil || g.lora_scale != nil) {
            throw DistillError.config("generators.\(name): lora applies to a local model")
        }
        for (name, g) in generators {
            if let s = g.lora_scale, !s.isFinite { throw DistillError.config("generators.\(name).lora_scale must be a number") }
        }
        try known(synthesize.generator, "synthesize.generator")
        guard !respond.generators.isEmpty else { throw DistillError.config("respond.generators: name at least one generator") }
        for g in respond.generators { try known(g, "respond.generators") }
        try known(grade.teacher, "grade.teacher")
        for m in grade.modes where !["single", "reference", "pairwise"].contains(m) {
            throw DistillError.config("grade.modes: '\(m)' is not single, reference or pairwise")
        }
        if grade.modes.contains("pairwise") && respond.generators.count < 2 {
            throw DistillError.config("grade.modes: pairwise needs two respond.generators")
        }
        if let ifd = select.ifd_model {
            try known(ifd, "select.ifd_model")
            guard generators[ifd]?.local != nil || generators[ifd]?.chat_template != nil else {
                throw DistillError.config("select.ifd_model: '\(ifd)' must be a local model, or an endpoint with its chat_template")
            }
        }
        guard SelectionStrategy(rawValue: select.strategy) != nil else {
            throw DistillError.config("select.strategy: '\(select.strategy)' is not random, ifd or ifd-z")
        }
        if select.strategy != "random" && select.ifd_model == nil { throw DistillError.config("select.strategy \(select.strategy) needs select.ifd_model") }
        for s in augment.scales where RatingScaleMapping(rawValue: s) == nil {
            throw DistillError.config("augment.scales: '\(s)' is not 0-1, 1-3 or 1-10")
        }
        for f in export.formats where !["openai", "sharegpt", "alpaca"].contains(f) {
            throw DistillError.config("export.formats: '\(f)' is not openai, sharegpt or alpaca")
        }
        if synthesize.reference_scenarios.values.contains(where: { $0 > 0 }) && synthesize.passages.isEmpty {
            throw DistillError.config("synthesize.passages: reference-based questioning needs passages")
        }
    }
}
