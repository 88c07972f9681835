import Foundation

/// A real GGUF file taken apart into its header (metadata pairs with their raw value bytes,
/// tensor infos) and its data section, so a test can change one thing and write the file again.
/// Test code only: it trusts the file it reads (the project's own model).
public struct GGUFSurgeon: Sendable {
    public struct Pair: Sendable {
        public var key: String
        public var type: UInt32
        /// The value's bytes as stored after its type.
        public var value: Data
    }

    public struct TensorInfo: Sendable {
        public var name: String
        /// Innermost first, as stored.
        public var dims: [UInt64]
        public var type: UInt32
        public var offset: UInt64
    }

    public var version: UInt32
    public var pairs: [Pair]
    public var tensors: [TensorInfo]
    public var alignment = 32
    /// The original file, mapped; its data section follows `dataStart`.
    public let original: Data
    public let dataStart: Int

    public init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        original = data
        var at = 4
        func u32() -> UInt32 { defer { at += 4 }; return data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) } }
        func u64() -> UInt64 { defer { at += 8 }; return data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) } }
        func string() -> String {
            let n = Int(u64())
            defer { at += n }
            return String(decoding: data[at..<at + n], as: UTF8.self)
        }
        func skipValue(_ type: UInt32) {
            switch type {
            case 0, 1, 7: at += 1
            case 2, 3: at += 2
            case 4, 5, 6: at += 4
            case 10, 11, 12: at += 8
            case 8: at += Int(u64())
            case 9:
                let element = u32()
                let n = Int(u64())
                for _ in 0..<n { skipValue(element) }
            default: fatalError("the test model has an unknown value type \(type)")
            }
        }
        version = u32()
        let tensorCount = Int(u64()), pairCount = Int(u64())
        pairs = []
        for _ in 0..<pairCount {
            let key = string()
            let type = u32()
            let start = at
            skipValue(type)
            pairs.append(Pair(key: key, type: type, value: data[start..<at]))
        }
        tensors = []
        for _ in 0..<tensorCount {
            let name = string()
            let n = Int(u32())
            let dims = (0..<n).map { _ in u64() }
            tensors.append(TensorInfo(name: name, dims: dims, type: u32(), offset: u64()))
        }
        dataStart = (at + 31) / 32 * 32
    }

    public static func le<T: FixedWidthInteger>(_ v: T) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    public static func str(_ s: String) -> Data { le(UInt64(s.utf8.count)) + Data(s.utf8) }

    /// Replaces (or appends) `key` with a value of `type` given as raw bytes.
    public mutating func set(_ key: String, type: UInt32, _ value: Data) {
        if let i = pairs.firstIndex(where: { $0.key == key }) {
            pairs[i].type = type
            pairs[i].value = value
        } else {
            pairs.append(Pair(key: key, type: type, value: value))
        }
    }
    public mutating func set(_ key: String, uint32 v: UInt32) { set(key, type: 4, Self.le(v)) }
    public mutating func set(_ key: String, int32 v: Int32) { set(key, type: 5, Self.le(v)) }
    public mutating func set(_ key: String, uint64 v: UInt64) { set(key, type: 10, Self.le(v)) }
    public mutating func set(_ key: String, float32 v: Float) { set(key, type: 6, Self.le(v.bitPattern)) }
    public mutating func remove(_ key: String) { pairs.removeAll { $0.key == key } }
    public mutating func tensor(_ name: String, _ change: (inout TensorInfo) -> Void) {
        guard let i = tensors.firstIndex(where: { $0.name == name }) else { fatalError("no tensor \(name)") }
        change(&tensors[i])
    }

    /// The header as it would be written, up to the start of the data section (padded).
    public func header(tensorCount: UInt64? = nil, pairCount: UInt64? = nil) -> Data {
        var d = Data("GGUF".utf8)
        d += Self.le(version) + Self.le(tensorCount ?? UInt64(tensors.count)) + Self.le(pairCount ?? UInt64(pairs.count))
        for p in pairs { d += Self.str(p.key) + Self.le(p.type) + p.value }
        for t in tensors {
            d += Self.str(t.name) + Self.le(UInt32(t.dims.count))
            for x in t.dims { d += Self.le(x) }
            d += Self.le(t.type) + Self.le(t.offset)
        }
        while d.count % alignment != 0 { d.append(0) }
        return d
    }

    /// Writes header and the original data section to `path`.
    public func write(to path: String, header: Data? = nil) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.write(contentsOf: header ?? self.header())
        try handle.write(contentsOf: original[dataStart...])
    }

    /// Byte offset in the original file where pair `key` starts (for truncations).
    public func offset(ofPair key: String) -> Int {
        var at = 24
        for p in pairs {
            if p.key == key { return at }
            at += 8 + p.key.utf8.count + 4 + p.value.count
        }
        fatalError("no pair \(key)")
    }
}
