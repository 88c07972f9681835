import Foundation
import ThemisClient

/// The whole pipeline's configuration (`pipeline.yaml`). Field names are the YAML keys.
public struct PipelineConfig: Codable, Sendable, Equatable {
    /// A generator: a local model (`local: smollm2-135m` or a GGUF path) or an endpoint
    /// (`url: http://127.0.0.1:8080/v1`, `model`, `api_key_env`, `concurrency`, ...).
    public struct Generator: Codable, Sendable, Equatable {
        public var local: String?
        public var device: String?
        /// A local model's LoRA adapter (llama.cpp's GGUF adapter format), applied on the fly.
        public var lora: String?
        public var lora_scale: Float?
        public var url: String?
        public var model: String?
        public var api_key_env: String?
        public var concurrency: Int?
        public var requests_per_second: Double?
        public var max_attempts: Int?
        public var timeout_seconds: Double?
        /// An endpoint's chat template (`chatml`, ..., or a GGUF file to read it from), rendered
        /// here: exact verdict probabilities and IFD scoring through its completions endpoint.
        public var chat_template: String?
    }

    public struct Synthesize: Codable, Sendable, Equatable {
        /// Generator writing the instructions.
        public var generator = ""
        /// Passages for reference-based questioning: JSON Lines with `text` (and optional `id`,
        /// `title`), or plain text files (one passage per blank-line-separated paragraph).
        public var passages: [String] = []
        /// Reference-based scenarios and how many passages each gets.
        public var reference_scenarios: [String: Int] = [:]
        /// Role-playing quizzes per scenario (math_qa, reading_comprehension, programming).
        public var quizzes: [String: Int] = [:]
        /// Instructions asked for per call.
        public var per_call: Int = 3
        public var dedup_ngram: Int = 3
        public var dedup_threshold: Double = 0.7
        public var max_tokens: Int = 320
        public var temperature: Double = 0.8
        /// Sampled for each quiz.
        public var difficulties: [String] = ["easy", "medium", "hard"]
        public var audiences: [String] = ["a high-school student", "a university student", "a working professional"]
        public var subjects: [String] = ["algebra", "geometry", "probability", "data processing", "string handling", "history", "biology"]
    }

    public struct Respond: Codable, Sendable, Equatable {
        public var generators: [String] = []
        public var max_tokens: Int = 256
        public var temperature: Double = 0.7
    }

    public struct Grade: Codable, Sendable, Equatable {
        public var teacher = ""
        /// `single`, `reference` (needs a reference answer: the strongest responder's), `pairwise`.
        public var modes: [String] = ["single", "pairwise"]
        public var max_tokens: Int = 320
        /// The responder whose answers are the references of reference-guided grading.
        public var reference_generator: String?
    }

    public struct Select: Codable, Sendable, Equatable {
        /// Local model scoring IFD (a `local` generator's name).
        public var ifd_model: String?
        public var strategy: String = "ifd"
        /// `ce-ratio` (Cherry LLM) or `ppl-ratio`.
        public var ifd_metric: String = "ce-ratio"
        public var max_score_share: Double? = 0.4
        public var scenario_targets: [String: Int] = [:]
        public var total: Int?
    }

    public struct Augment: Codable, Sendable, Equatable {
        /// Rating scales the 1-5 records are also mapped onto.
        public var scales: [String] = ["0-1", "1-3", "1-10"]
        /// Fraction of records whose criteria list is cut at random (the overall score re-derived).
        public var drop_criteria: Double = 0.3
        /// Criteria paraphrases asked from this generator (nil: none).
        public var paraphrase_generator: String?
    }

    public struct Export: Codable, Sendable, Equatable {
        public var formats: [String] = ["openai", "sharegpt", "alpaca"]
    }

    public var seed: Int = 1
    public var generators: [String: Generator] = [:]
    public var synthesize = Synthesize()
    public var respond = Respond()
    public var grade = Grade()
    public var select: Select = Select()
    public var augment: Augment = Augment()
    public var export: Export = Export()

    /// A stable hash of a part of the configuration (FNV-1a of its sorted-key JSON), for manifests.
    public static func hash<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data()
        return String(format: "%016llx", FNV1a.hash(data))
    }
}
