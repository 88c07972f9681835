import Foundation
import Yams

extension PipelineConfig {
    /// Reads a YAML (or JSON) configuration: every key missing takes its default, an unknown key
    /// is an error naming it, and the result is checked for consistency.
    public static func load(_ path: String) throws -> PipelineConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DistillError.config("cannot read \(path)") }
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw DistillError.config("\(path) is not valid YAML: \(error)")
        }
        guard let user = loaded as? [String: Any] else { throw DistillError.config("\(path) must be a mapping of sections") }
        let defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(PipelineConfig())) as! [String: Any]
        let merged = try merge(defaults, user, path: "", open: ["generators", "reference_scenarios", "quizzes", "scenario_targets"])
        let config: PipelineConfig
        do {
            config = try JSONDecoder().decode(PipelineConfig.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw DistillError.config("\(path): '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        }
        try config.validate()
        return config
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
        func known(_ name: String, _ field: String) throws {
            guard generators[name] != nil else {
                throw DistillError.config("\(field): no generator '\(name)' (defined: \(generators.keys.sorted().joined(separator: ", ")))")
            }
        }
        for (name, g) in generators where (g.local == nil) == (g.url == nil) {
            throw DistillError.config("generators.\(name): give either local or url")
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
