import Foundation

/// Why a file of records, or one of its lines, could not be read or written.
public enum JSONLError: Error, CustomStringConvertible, Equatable, Sendable {
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    /// Line (or array item) `line` is not JSON, or not an object, or not the record expected.
    case badLine(line: Int, reason: String)
    /// A file that starts with `[` but is not one JSON array.
    case badArray(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotRead(let p, let r): "cannot read \(p): \(r)"
        case .cannotWrite(let p, let r): "cannot write \(p): \(r)"
        case .badLine(let l, let r): "line \(l): \(r)"
        case .badArray(let p, let r): "\(p) starts with '[' but is not a JSON array of objects: \(r)"
        }
    }
}

/// One record of a file: where it was (1-based line, or position in a JSON array) and its value,
/// or why that line could not be read.
public struct JSONLLine<Value>: Sendable where Value: Sendable {
    public var line: Int
    public var value: Result<Value, JSONLError>

    public init(line: Int, value: Result<Value, JSONLError>) {
        self.line = line
        self.value = value
    }
}

/// Reads JSON Lines (LF or CRLF line ends, an optional UTF-8 byte-order mark, blank lines skipped)
/// or one JSON array of records. A line that does not decode is an error for that line alone;
/// the other records are still read.
public enum JSONLReader {
    /// Most array levels or object levels in one record: deeper input is refused before a
    /// recursive decoder could exhaust the stack.
    public static let maximumDepth = 256

    /// The records of `path` as `Value`.
    public static func read<Value: Decodable & Sendable>(_ path: String, as type: Value.Type = Value.self) throws -> [JSONLLine<Value>] {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            throw JSONLError.cannotRead(path: path, reason: !exists ? "no such file" : isDirectory.boolValue ? "it is a directory" : "permission denied or unreadable")
        }
        return try decode(data, as: type, path: path)
    }

    /// The records of a file's bytes (see `read`).
    public static func decode<Value: Decodable & Sendable>(_ data: Data, as type: Value.Type = Value.self, path: String = "input") throws -> [JSONLLine<Value>] {
        var bytes = data[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        let decoder = JSONDecoder()
        if let first = bytes.first(where: { !isBlank($0) }), first == UInt8(ascii: "[") {
            if let reason = depthProblem(bytes) { throw JSONLError.badArray(path: path, reason: reason) }
            let items: [Failable<Value>]
            do { items = try decoder.decode([Failable<Value>].self, from: Data(bytes)) } catch {
                throw JSONLError.badArray(path: path, reason: describe(error))
            }
            return items.enumerated().map { i, item in
                let value: Result<Value, JSONLError> = item.value.map { .success($0) }
                    ?? .failure(.badLine(line: i + 1, reason: "item \(i + 1): \(item.reason ?? "unreadable")"))
                return JSONLLine(line: i + 1, value: value)
            }
        }
        var out: [JSONLLine<Value>] = []
        var number = 0
        for var line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            guard line.contains(where: { !isBlank($0) }) else { continue }
            out.append(JSONLLine(line: number, value: decodeLine(line, as: type, decoder: decoder, number: number)))
        }
        return out
    }

    /// One line's record.
    static func decodeLine<Value: Decodable>(_ line: Data.SubSequence, as type: Value.Type, decoder: JSONDecoder, number: Int) -> Result<Value, JSONLError> {
        if let reason = depthProblem(line) { return .failure(.badLine(line: number, reason: reason)) }
        do { return .success(try decoder.decode(type, from: Data(line))) } catch {
            return .failure(.badLine(line: number, reason: describe(error)))
        }
    }

    static func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    /// Why `bytes` nest too deep to decode safely, or nil (brackets inside strings are skipped).
    static func depthProblem<Bytes: Collection>(_ bytes: Bytes) -> String? where Bytes.Element == UInt8 {
        var depth = 0, inString = false, escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maximumDepth { return "nested more than \(maximumDepth) levels deep" }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return nil
    }

    /// A short reason for a decoding error: what was wrong and at which field.
    public static func describe(_ error: any Error) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let p = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : " at '\(p)'"
        }
        switch error {
        case DecodingError.typeMismatch(let type, let c): return "expected \(typeName(type))\(path(c.codingPath))"
        case DecodingError.valueNotFound(let type, let c): return "\(typeName(type)) is null\(path(c.codingPath))"
        case DecodingError.keyNotFound(let key, let c): return "no '\(key.stringValue)' field\(path(c.codingPath))"
        case DecodingError.dataCorrupted(let c):
            return c.codingPath.isEmpty ? "not valid JSON" : "\(c.debugDescription)\(path(c.codingPath))"
        case let e as JSONLError: return e.description
        default: return "\(error)"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        let name = "\(type)"
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        default: return name.hasPrefix("Dictionary") ? "an object" : name.hasPrefix("Array") ? "an array" : name
        }
    }
}

/// Decodes `Value` or keeps the error, so one bad item of an array does not lose the others.
struct Failable<Value: Decodable & Sendable>: Decodable, Sendable {
    var value: Value?
    var reason: String?

    init(from decoder: any Decoder) throws {
        do { value = try Value(from: decoder) } catch { reason = JSONLReader.describe(error) }
    }
}
