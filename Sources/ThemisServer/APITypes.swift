import Foundation

/// `stop`: one string or a list of them.
struct StopStrings: Decodable, Sendable {
    var values: [String]
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { values = [s]; return }
        values = try c.decode([String].self)
    }
}

/// A chat message; `content` is a string or a list of `{"type": "text", "text": ...}` parts.
struct ChatMessageBody: Decodable, Sendable {
    var role: String
    var content: String

    enum CodingKeys: String, CodingKey { case role, content }
    struct Part: Decodable { var type: String; var text: String? }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(String.self, forKey: .role)
        if let s = try? c.decode(String.self, forKey: .content) {
            content = s
        } else if let parts = try? c.decode([Part].self, forKey: .content) {
            content = parts.compactMap { $0.type == "text" ? $0.text : nil }.joined()
        } else if try c.decodeNil(forKey: .content) {
            content = ""
        } else {
            throw DecodingError.typeMismatch(String.self, .init(codingPath: c.codingPath + [CodingKeys.content],
                                                                debugDescription: "content must be a string or a list of text parts"))
        }
    }
}

/// Sampling fields shared by both completion endpoints.
protocol SamplingFields {
    var model: String? { get }
    var temperature: Double? { get }
    var top_p: Double? { get }
    var max_tokens: Int? { get }
    var stop: StopStrings? { get }
    var seed: Int? { get }
    var stream: Bool? { get }
    var n: Int? { get }
}

struct StreamOptions: Decodable, Sendable { var include_usage: Bool? }

/// `POST /v1/chat/completions`.
struct ChatCompletionRequest: Decodable, Sendable, SamplingFields {
    var model: String?
    var messages: [ChatMessageBody]
    var temperature: Double?
    var top_p: Double?
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var stop: StopStrings?
    var seed: Int?
    var stream: Bool?
    var stream_options: StreamOptions?
    var logprobs: Bool?
    var top_logprobs: Int?
    var n: Int?
    /// vLLM's: the last message is an assistant's partial answer, continued rather than closed.
    var continue_final_message: Bool?
    var add_generation_prompt: Bool?
}

/// `POST /v1/completions`; `logprobs` is the number of alternatives, as in the legacy API.
struct CompletionRequest: Decodable, Sendable, SamplingFields {
    var model: String?
    var prompt: String
    var temperature: Double?
    var top_p: Double?
    var max_tokens: Int?
    var stop: StopStrings?
    var seed: Int?
    var stream: Bool?
    var stream_options: StreamOptions?
    var logprobs: Int?
    var echo: Bool?
    var n: Int?
}

/// The judge's input over the API (the body of `POST /v1/judge`, or a chat user message).
struct JudgeRequestBody: Decodable, Sendable {
    var mode: String
    var question: String
    var answer: String?
    var answer1: String?
    var answer2: String?
    var ref_answer: String?
    var scenario: String?
}
