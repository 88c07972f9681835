import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a cached answer was for: the endpoint, the model and the whole request.
struct CacheKey: Codable, Equatable, Sendable {
    var endpoint: String
    var model: String
    var spec: GenerationSpec

    /// Canonical bytes (sorted keys), hashed for the file name.
    var canonical: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }

    /// 64-bit FNV-1a of the canonical bytes, in hex. A file also stores its full key, which a
    /// read compares, so two requests sharing a hash can never share an answer.
    var fileName: String {
        String(format: "%016llx.json", FNV1a.hash(canonical))
    }
}

/// Answers on disk, one file per request, written atomically (temporary file, then rename).
struct AnswerCache: Sendable {
    let directory: URL

    struct Entry: Codable { var key: CacheKey; var answer: GeneratedText }

    init(directory: String) throws {
        self.directory = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
    }

    func read(_ key: CacheKey) -> GeneratedText? {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(key.fileName)),
              let entry = try? JSONDecoder().decode(Entry.self, from: data), entry.key == key else { return nil }
        return entry.answer
    }

    func write(_ key: CacheKey, _ answer: GeneratedText) throws {
        let data = try JSONEncoder().encode(Entry(key: key, answer: answer))
        try AtomicFile.write(data, to: directory.appendingPathComponent(key.fileName))
    }
}

/// Crash-safe whole-file writes: a reader sees the old file or the new one, never a part.
enum AtomicFile {
    static func write(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        try data.write(to: temporary)
        // rename(2) replaces the target in one step
        guard rename(temporary.path, url.path) == 0 else {
            let code = errno
            try? FileManager.default.removeItem(at: temporary)
            throw DistillError.io("cannot write \(url.path): \(String(cString: strerror(code)))")
        }
    }
}

/// 64-bit FNV-1a: the cache's file names, configuration hashes and per-record seeds.
enum FNV1a {
    static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325

    static func hash<Bytes: Sequence<UInt8>>(_ bytes: Bytes, basis: UInt64 = offsetBasis) -> UInt64 {
        var h = basis
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}
