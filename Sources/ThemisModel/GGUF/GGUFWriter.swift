import Foundation
import ThemisBackend

/// Writes a GGUF version 3 file: metadata pairs in order, then tensor infos, then the tensors'
/// bytes, each at a multiple of the alignment. The file appears under its name only when complete
/// (written beside it, then renamed), so a stopped write never leaves a file that looks whole.
public struct GGUFWriter {
    /// The types computed float values are written in.
    public enum FloatType: String, CaseIterable, Sendable {
        case f32, f16

        public var storage: StorageType { self == .f32 ? .f32 : .f16 }

        /// `values` in this type's bytes (f16: rounded to nearest).
        public func bytes(of values: [Float]) -> [UInt8] {
            self == .f16 ? values.map { Float16($0).bitPattern }.withUnsafeBytes { Array($0) } : values.withUnsafeBytes { Array($0) }
        }
    }

    /// One tensor to write: `shape` outermost first (as `GGUFTensorInfo`), its bytes in `type`'s
    /// storage, given when the data section is written (so a merge never holds every tensor).
    public struct TensorEntry {
        public var name: String
        public var shape: [Int]
        public var type: StorageType
        public var bytes: () throws -> [UInt8]

        public init(name: String, shape: [Int], type: StorageType, bytes: @escaping () throws -> [UInt8]) {
            self.name = name
            self.shape = shape
            self.type = type
            self.bytes = bytes
        }

        /// A tensor of `values` (row-major, `shape`'s element count) in `type`.
        public init(name: String, shape: [Int], values: [Float], type: FloatType = .f32) {
            self.init(name: name, shape: shape, type: type.storage) { type.bytes(of: values) }
        }

        var byteCount: Int { type.byteCount(elements: shape.reduce(1, *)) }
    }

    public var metadata: [(key: String, value: GGUFValue)] = []
    public var tensors: [TensorEntry] = []
    public var alignment = 32

    public init() {}

    /// Sets `key` (replacing an earlier value, keeping its place).
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
        } else {
            metadata.append((key, value))
        }
    }

    /// Writes the file to `path`.
    public func write(to path: String) throws {
        let temporary = path + ".partial"
        FileManager.default.createFile(atPath: temporary, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: temporary) else {
            throw GGUFError.cannotOpen(temporary, reason: "cannot create the file")
        }
        do {
            var header = Data("GGUF".utf8)
            header.append(le(UInt32(3)))
            header.append(le(UInt64(tensors.count)))
            header.append(le(UInt64(metadata.count)))
            for (key, value) in metadata {
                header.append(string(key))
                header.append(le(typeID(value)))
                header.append(encode(value))
            }
            var offset = 0
            for t in tensors {
                header.append(string(t.name))
                header.append(le(UInt32(t.shape.count)))
                for d in t.shape.reversed() { header.append(le(UInt64(d))) }
                header.append(le(t.type.rawValue))
                header.append(le(UInt64(offset)))
                offset = padded(offset + t.byteCount)
            }
            header.append(Data(count: padded(header.count) - header.count))
            try handle.write(contentsOf: header)
            for t in tensors {
                let bytes = try t.bytes()
                guard bytes.count == t.byteCount else {
                    throw GGUFError.badTensorShape(t.name)
                }
                try handle.write(contentsOf: bytes)
                try handle.write(contentsOf: Data(count: padded(bytes.count) - bytes.count))
            }
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    }

    private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    private func le<T: FixedWidthInteger>(_ v: T) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    private func string(_ s: String) -> Data { le(UInt64(s.utf8.count)) + Data(s.utf8) }

    /// GGUF's value type id of `value`.
    private func typeID(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    private func encode(_ value: GGUFValue) -> Data {
        switch value {
        case .uint8(let v): return le(v)
        case .int8(let v): return le(v)
        case .uint16(let v): return le(v)
        case .int16(let v): return le(v)
        case .uint32(let v): return le(v)
        case .int32(let v): return le(v)
        case .float32(let v): return le(v.bitPattern)
        case .bool(let v): return le(UInt8(v ? 1 : 0))
        case .string(let s): return string(s)
        case .uint64(let v): return le(v)
        case .int64(let v): return le(v)
        case .float64(let v): return le(v.bitPattern)
        case .array(let items):
            // GGUF arrays hold one element type; an empty one is written as an array of int32
            var d = le(items.first.map(typeID) ?? 5) + le(UInt64(items.count))
            for item in items { d.append(encode(item)) }
            return d
        }
    }
}
