import Foundation
import ThemisClient

/// An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds a client should wait before retrying (503).
    public var retryAfter: Int?

    public init(status: Int, message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { message }

    /// The answer to a model client's error: 503 with Retry-After when the model cannot serve
    /// now (busy, shutting down, its device failed), 400 for a prompt that is too long, else 500.
    init(_ error: ClientError, param: String? = nil) {
        switch error {
        case .busy: self.init(status: 503, message: error.description, type: "server_error", code: "queue_full", retryAfter: 1)
        case .shuttingDown: self.init(status: 503, message: error.description, type: "server_error", code: "shutting_down", retryAfter: 1)
        case .deviceFailed: self.init(status: 503, message: error.description, type: "server_error", code: "device_failed", retryAfter: 30)
        case .outOfMemory: self.init(status: 503, message: error.description, type: "server_error", code: "out_of_memory", retryAfter: 5)
        case .tooLong, .unsupported: self.init(status: 400, message: error.description, param: param)
        default: self.init(status: 500, message: error.description, type: "server_error")
        }
    }

    static func badRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, param: param, code: code)
    }

    var json: Data {
        var error: [String: Any] = ["message": message, "type": type]
        error["param"] = param ?? NSNull()
        error["code"] = code ?? NSNull()
        return (try? JSONSerialization.data(withJSONObject: ["error": error], options: [.sortedKeys])) ?? Data()
    }

    /// A decoding failure, naming the field: `messages[0].content: expected a string`.
    static func decoding(_ error: any Error) -> APIError {
        guard let error = error as? DecodingError else {
            return .badRequest("the body is not valid JSON: \(error)")
        }
        func path(_ keys: [any CodingKey]) -> String {
            var s = ""
            for k in keys {
                if let i = k.intValue { s += "[\(i)]" } else { s += (s.isEmpty ? "" : ".") + k.stringValue }
            }
            return s
        }
        switch error {
        case .typeMismatch(let type, let context):
            let field = path(context.codingPath)
            return .badRequest("'\(field)' has the wrong type: expected \(describe(type))", param: field)
        case .valueNotFound(let type, let context):
            let field = path(context.codingPath)
            return .badRequest("'\(field)' must not be null: expected \(describe(type))", param: field)
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return .badRequest("missing required field '\(field)'", param: field)
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            if field.isEmpty { return .badRequest("the body is not valid JSON") }
            // JSONDecoder says "Parsed JSON number <2.5> does not fit in Int" for a fraction
            if context.debugDescription.contains("does not fit in Int") {
                return .badRequest("'\(field)' must be a whole number", param: field)
            }
            return .badRequest("'\(field)': \(context.debugDescription)", param: field)
        @unknown default:
            return .badRequest("the body could not be decoded")
        }
    }

    /// Why `body` is not UTF-8 text (JSON must be), naming the first bad byte; nil when it is.
    static func encodingProblem(_ body: Data) -> String? {
        var iterator = body.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput: return nil
            case .error: return "the body is not valid UTF-8 (near byte \(offset))"
            }
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a value of type \(name)"
        }
    }
}
