import Foundation
import JSONLines
#if canImport(Glibc)
import Glibc
#endif

/// Answers on disk, one file per request, written atomically (temporary file, then rename). A
/// file is named by a hash of its request and stores the whole request, which a read compares,
/// so two requests sharing a hash never share an answer.
struct AnswerCache: Sendable {
    let directory: URL

    struct Entry<Key: Codable, Value: Codable>: Codable { var key: Key; var answer: Value }

    init(directory: String) throws {
        self.directory = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
    }

    /// Canonical bytes of a key (sorted keys).
    static func canonical<Key: Encodable>(_ key: Key) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(key)) ?? Data()
    }

    func url<Key: Encodable>(_ key: Key) -> URL {
        directory.appendingPathComponent(String(format: "%016llx.json", FNV1a.hash(Self.canonical(key))))
    }

    func read<Key: Codable & Equatable, Value: Codable>(_ key: Key, as: Value.Type) -> Value? {
        guard let data = try? Data(contentsOf: url(key)),
              let entry = try? JSONDecoder().decode(Entry<Key, Value>.self, from: data), entry.key == key else { return nil }
        return entry.answer
    }

    func write<Key: Codable & Equatable, Value: Codable>(_ key: Key, _ answer: Value) throws {
        try AtomicFile.write(try JSONEncoder().encode(Entry(key: key, answer: answer)), to: url(key))
    }
}

/// 64-bit FNV-1a: the cache's file names, configuration hashes and per-record seeds.
public enum FNV1a {
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325

    public static func hash<Bytes: Sequence<UInt8>>(_ bytes: Bytes, basis: UInt64 = offsetBasis) -> UInt64 {
        var h = basis
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}
