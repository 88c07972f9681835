#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ThemisBackend

/// One tensor's description in a GGUF file.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// Outermost first, innermost last (GGUF stores them innermost first).
    public let shape: [Int]
    public let type: StorageType
    /// Offset of the data from the start of the file.
    public let fileOffset: Int
    public let byteCount: Int
}

/// A memory-mapped GGUF file (versions 2 and 3): metadata, tensor infos, and tensor bytes in place.
///
/// The mapping is read-only and lives as long as this object; tensor byte views must not outlive it.
public final class GGUFFile: @unchecked Sendable {
    // Immutable after init; the mapping is read-only.
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let dataOffset: Int
    public let fileSize: Int
    private let base: UnsafeRawPointer
    private let tensorIndex: [String: Int]
    /// How the bytes were obtained, so `deinit` gives them back the same way.
    private let storage: Storage

    private enum Storage { case mapped, allocated }

    /// Opens and parses `path`; throws `GGUFError` for anything missing, truncated or malformed.
    public convenience init(path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw GGUFError.fileNotFound(path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw GGUFError.cannotOpen(path, reason: "not a regular file") }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError.cannotOpen(path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let size = Int(st.st_size)
        guard size >= 8 else { throw GGUFError.badMagic(path) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw GGUFError.cannotOpen(path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        try self.init(path: path, base: UnsafeRawPointer(p), size: size, storage: .mapped)
    }

    /// Parses a GGUF image held in memory (copied); `name` stands for the path in messages.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        guard bytes.count >= 8 else { throw GGUFError.badMagic(name) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
        bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        try self.init(path: name, base: UnsafeRawPointer(p), size: bytes.count, storage: .allocated)
    }

    /// Parses the `size` bytes at `base`, which this object then owns (and frees on failure).
    private init(path: String, base p: UnsafeRawPointer, size: Int, storage: Storage) throws {
        self.path = path
        self.base = p
        self.fileSize = size
        self.storage = storage
        var r = Reader(base: p, size: size)
        do {
            let magic = try r.u32("magic")
            guard magic == 0x4655_4747 else { throw GGUFError.badMagic(path) }
            let version = try r.u32("version")
            guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
            self.version = version
            // Each tensor info takes at least 32 bytes, each metadata pair at least 13: counts that
            // cannot fit the file are refused before anything is reserved for them.
            let tensorCount = try r.count("tensor count", minimumItemBytes: 32)
            let kvCount = try r.count("metadata count", minimumItemBytes: 13)
            var meta: [String: GGUFValue] = [:]
            var keys: [String] = []
            for _ in 0..<kvCount {
                let key = try r.string("metadata key")
                let type = try r.u32("value type of '\(key)'")
                let value = try r.value(type: type, key: key, depth: 0)
                guard meta.updateValue(value, forKey: key) == nil else { throw GGUFError.duplicateKey(key) }
                keys.append(key)
            }
            self.metadata = meta
            self.metadataKeys = keys
            var align = 32
            if let value = meta["general.alignment"] {
                guard let a = value.int, a > 0, a <= 1 << 20, a & (a - 1) == 0 else {
                    throw GGUFError.wrongValueType(key: "general.alignment", expected: "a power of two up to 2^20")
                }
                align = a
            }
            self.alignment = align
            var raw: [(name: String, shape: [Int], type: UInt32, offset: Int)] = []
            raw.reserveCapacity(tensorCount)
            for _ in 0..<tensorCount {
                let name = try r.string("tensor name")
                let nDims = try r.u32("dimension count of '\(name)'")
                guard nDims >= 1 && nDims <= 4 else { throw GGUFError.badTensorShape(name) }
                var dims: [Int] = []
                for _ in 0..<nDims {
                    let d = try r.u64("dimensions of '\(name)'")
                    guard d > 0 && d < 1 << 40 else { throw GGUFError.badTensorShape(name) }
                    dims.append(Int(d))
                }
                let type = try r.u32("type of '\(name)'")
                let offset = try r.u64("offset of '\(name)'")
                guard offset < UInt64(size) else { throw GGUFError.tensorOutOfBounds(name) }
                raw.append((name, dims.reversed(), type, Int(offset)))
            }
            // the data section starts at the next multiple of the alignment (align <= 2^20, offset <= size)
            let dataOffset = (r.offset + align - 1) / align * align
            self.dataOffset = dataOffset
            var infos: [GGUFTensorInfo] = []
            var index: [String: Int] = [:]
            for (name, shape, typeID, offset) in raw {
                guard let type = StorageType(rawValue: typeID) else {
                    throw GGUFError.unknownTensorType(typeID, tensor: name)
                }
                guard let rowLength = shape.last, rowLength % type.blockSize == 0 else { throw GGUFError.badTensorShape(name) }
                guard offset % align == 0 else { throw GGUFError.misalignedTensor(name, offset: offset, alignment: align) }
                guard let elements = GGUFFile.product(shape),
                      let bytes = GGUFFile.product([elements / type.blockSize, type.blockBytes])
                else { throw GGUFError.badTensorShape(name) }
                let (start, o1) = dataOffset.addingReportingOverflow(offset)
                let (end, o2) = start.addingReportingOverflow(bytes)
                guard !o1, !o2, end <= size else { throw GGUFError.tensorOutOfBounds(name) }
                guard index.updateValue(infos.count, forKey: name) == nil else { throw GGUFError.duplicateTensor(name) }
                infos.append(GGUFTensorInfo(name: name, shape: shape, type: type, fileOffset: start, byteCount: bytes))
            }
            // no two tensors share bytes: sorted by start, each must end before the next begins
            let byStart = infos.sorted { ($0.fileOffset, $0.byteCount) < ($1.fileOffset, $1.byteCount) }
            for (a, b) in zip(byStart, byStart.dropFirst()) where a.fileOffset + a.byteCount > b.fileOffset {
                throw GGUFError.overlappingTensors(a.name, b.name)
            }
            self.tensors = infos
            self.tensorIndex = index
        } catch {
            GGUFFile.release(p, size: size, storage: storage)
            throw error
        }
    }

    deinit { GGUFFile.release(base, size: fileSize, storage: storage) }

    private static func release(_ p: UnsafeRawPointer, size: Int, storage: Storage) {
        switch storage {
        case .mapped: munmap(UnsafeMutableRawPointer(mutating: p), size)
        case .allocated: UnsafeMutableRawPointer(mutating: p).deallocate()
        }
    }

    /// The product of `values`, or nil when it overflows `Int`.
    static func product(_ values: [Int]) -> Int? {
        var result = 1
        for v in values {
            let (m, overflow) = result.multipliedReportingOverflow(by: v)
            if overflow { return nil }
            result = m
        }
        return result
    }

    /// Most array levels in one metadata value: GGUF files use flat arrays, and recursion on a
    /// file's nesting must be bounded.
    public static let maximumNesting = 4
    /// Most items in one metadata array (the largest vocabularies and merge lists are under 10^6):
    /// a file of millions of one-byte items would otherwise take gigabytes as parsed values.
    public static let maximumArrayLength = 1 << 24

    /// The info of tensor `name`, if present.
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The bytes of tensor `name` in the mapping (valid while this file object lives).
    public func bytes(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + info.fileOffset, count: info.byteCount)
    }

    // MARK: typed metadata access

    public func int(_ key: String) throws -> Int {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let i = v.int else { throw GGUFError.wrongValueType(key: key, expected: "an integer") }
        return i
    }

    public func double(_ key: String) throws -> Double {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let d = v.double else { throw GGUFError.wrongValueType(key: key, expected: "a number") }
        return d
    }

    public func string(_ key: String) throws -> String {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let s = v.string else { throw GGUFError.wrongValueType(key: key, expected: "a string") }
        return s
    }

    public func stringArray(_ key: String) throws -> [String] {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let a = v.array else { throw GGUFError.wrongValueType(key: key, expected: "an array") }
        return try a.map {
            guard let s = $0.string else { throw GGUFError.wrongValueType(key: key, expected: "an array of strings") }
            return s
        }
    }

    public func intArray(_ key: String) throws -> [Int] {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let a = v.array else { throw GGUFError.wrongValueType(key: key, expected: "an array") }
        return try a.map {
            guard let i = $0.int else { throw GGUFError.wrongValueType(key: key, expected: "an array of integers") }
            return i
        }
    }
}

/// Bounds-checked little-endian reader over the mapping.
private struct Reader {
    let base: UnsafeRawPointer
    let size: Int
    var offset = 0

    mutating func take(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawPointer {
        guard n >= 0, offset <= size - n else { throw GGUFError.truncated(what: what(), offset: offset) }
        defer { offset += n }
        return base + offset
    }
    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
        UInt32(littleEndian: try take(4, what()).loadUnaligned(as: UInt32.self))
    }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
        UInt64(littleEndian: try take(8, what()).loadUnaligned(as: UInt64.self))
    }
    /// A count of items of at least `minimumItemBytes` each that must fit in the rest of the file.
    mutating func count(_ what: String, minimumItemBytes: Int) throws -> Int {
        let n = try u64(what)
        guard n <= UInt64(size - offset) / UInt64(minimumItemBytes) else {
            throw GGUFError.truncated(what: what, offset: offset)
        }
        return Int(n)
    }

    /// The fewest bytes one value of GGUF type `type` takes (nil for an unknown type).
    static func minimumBytes(of type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 8, 10, 11, 12: return 8
        case 9: return 12
        default: return nil
        }
    }
    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let n = try u64(what())
        guard n <= UInt64(size - offset) else { throw GGUFError.truncated(what: what(), offset: offset) }
        let p = try take(Int(n), what())
        return String(decoding: UnsafeRawBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }
    mutating func value(type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        let what = "value of '\(key)'"
        switch type {
        case 0: return .uint8(try take(1, what).load(as: UInt8.self))
        case 1: return .int8(try take(1, what).load(as: Int8.self))
        case 2: return .uint16(UInt16(littleEndian: try take(2, what).loadUnaligned(as: UInt16.self)))
        case 3: return .int16(Int16(littleEndian: try take(2, what).loadUnaligned(as: Int16.self)))
        case 4: return .uint32(try u32(what))
        case 5: return .int32(Int32(bitPattern: try u32(what)))
        case 6: return .float32(Float(bitPattern: try u32(what)))
        case 7: return .bool(try take(1, what).load(as: UInt8.self) != 0)
        case 8: return .string(try string(what))
        case 9:
            guard depth < GGUFFile.maximumNesting else {
                throw GGUFError.nestingTooDeep(key: key, limit: GGUFFile.maximumNesting)
            }
            let elementType = try u32(what)
            guard let itemBytes = Reader.minimumBytes(of: elementType) else {
                throw GGUFError.unknownValueType(elementType, key: key)
            }
            let n = try count(what, minimumItemBytes: itemBytes)
            guard n <= GGUFFile.maximumArrayLength else {
                throw GGUFError.badValue(key: key, reason: "is an array of \(n) items (at most \(GGUFFile.maximumArrayLength))")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        case 10: return .uint64(try u64(what))
        case 11: return .int64(Int64(bitPattern: try u64(what)))
        case 12: return .float64(Double(bitPattern: try u64(what)))
        default: throw GGUFError.unknownValueType(type, key: key)
        }
    }
}
