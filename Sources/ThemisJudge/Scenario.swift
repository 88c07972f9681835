import Foundation

/// One judging criterion: a short name and a one-sentence definition.
public struct Criterion: Codable, Sendable, Equatable {
    public var name: String
    public var definition: String

    public init(name: String, definition: String) {
        self.name = name
        self.definition = definition
    }
}

/// A use scenario of the paper (close QA, creative writing, ...) with its criteria, most
/// important first.
public struct Scenario: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var criteria: [Criterion]
}

/// The scenarios a judge chooses from: the bundled catalogue (`Resources/scenarios.json`) or a
/// file given with `--criteria`.
public struct ScenarioCatalogue: Codable, Sendable, Equatable {
    public var version: Int
    public var scenarios: [Scenario]

    /// The catalogue shipped with the package.
    public static func bundled() throws -> ScenarioCatalogue {
        guard let url = Bundle.module.url(forResource: "scenarios", withExtension: "json") else {
            throw JudgeError.badCatalogue("the bundled scenarios.json is missing from this build")
        }
        return try load(url.path)
    }

    /// A catalogue from a JSON file of the bundled file's schema.
    public static func load(_ path: String) throws -> ScenarioCatalogue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JudgeError.badCatalogue("cannot read \(path)")
        }
        let catalogue: ScenarioCatalogue
        do {
            catalogue = try JSONDecoder().decode(ScenarioCatalogue.self, from: data)
        } catch {
            throw JudgeError.badCatalogue("\(path) is not a scenario catalogue: \(error)")
        }
        guard !catalogue.scenarios.isEmpty else { throw JudgeError.badCatalogue("\(path) lists no scenarios") }
        guard catalogue.scenarios.count <= 26 else { throw JudgeError.badCatalogue("\(path) lists more than 26 scenarios") }
        for s in catalogue.scenarios where s.criteria.isEmpty {
            throw JudgeError.badCatalogue("scenario \(s.id) in \(path) has no criteria")
        }
        guard Set(catalogue.scenarios.map(\.id)).count == catalogue.scenarios.count else {
            throw JudgeError.badCatalogue("\(path) repeats a scenario id")
        }
        return catalogue
    }

    /// The scenario named by id or name (case-insensitive).
    public func scenario(named text: String) -> Scenario? {
        let key = text.lowercased()
        return scenarios.first { $0.id.lowercased() == key || $0.name.lowercased() == key }
    }
}
