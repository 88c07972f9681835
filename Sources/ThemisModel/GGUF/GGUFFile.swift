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

    /// Opens and parses `path`; throws `GGUFError` for anything missing, truncated or malformed.
    public init(path: String) throws {
        self.path = path
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
        self.base = UnsafeRawPointer(p)
        self.fileSize = size
        var r = Reader(base: UnsafeRawPointer(p), size: size)
        do {
            let magic = try r.u32("magic")
            guard magic == 0x4655_4747 else { throw GGUFError.badMagic(path) }
            let version = try r.u32("version")
            guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
            self.version = version
            let tensorCount = try r.count("tensor count")
            let kvCount = try r.count("metadata count")
            var meta: [String: GGUFValue] = [:]
            var keys: [String] = []
            for _ in 0..<kvCount {
                let key = try r.string("metadata key")
                let type = try r.u32("value type of '\(key)'")
                meta[key] = try r.value(type: type, key: key)
                keys.append(key)
            }
            self.metadata = meta
            self.metadataKeys = keys
            let align = meta["general.alignment"]?.int ?? 32
            guard align > 0 && align & (align - 1) == 0 else {
                throw GGUFError.wrongValueType(key: "general.alignment", expected: "a power of two")
            }
            self.alignment = align
            var raw: [(String, [Int], UInt32, Int)] = []
            for _ in 0..<tensorCount {
                let name = try r.string("tensor name")
                let nDims = Int(try r.u32("dimension count of '\(name)'"))
                guard nDims >= 1 && nDims <= 4 else { throw GGUFError.badTensorShape(name) }
                var dims: [Int] = []
                for _ in 0..<nDims {
                    let d = try r.u64("dimensions of '\(name)'")
                    guard d > 0 && d < 1 << 40 else { throw GGUFError.badTensorShape(name) }
                    dims.append(Int(d))
                }
                let type = try r.u32("type of '\(name)'")
                let offset = try r.u64("offset of '\(name)'")
                guard offset < 1 << 50 else { throw GGUFError.tensorOutOfBounds(name) }
                raw.append((name, dims.reversed(), type, Int(offset)))
            }
            let dataOffset = (r.offset + align - 1) / align * align
            self.dataOffset = dataOffset
            var infos: [GGUFTensorInfo] = []
            var index: [String: Int] = [:]
            for (name, shape, typeID, offset) in raw {
                guard let type = StorageType(rawValue: typeID) else {
                    throw GGUFError.unknownTensorType(typeID, tensor: name)
                }
                guard shape.last! % type.blockSize == 0 else { throw GGUFError.badTensorShape(name) }
                let (elements, overflow) = shape.reduce((1, false)) { acc, d in
                    let m = acc.0.multipliedReportingOverflow(by: d); return (m.partialValue, acc.1 || m.overflow)
                }
                guard !overflow else { throw GGUFError.badTensorShape(name) }
                let bytes = type.byteCount(elements: elements)
                let start = dataOffset + offset
                guard start + bytes <= size else { throw GGUFError.tensorOutOfBounds(name) }
                index[name] = infos.count
                infos.append(GGUFTensorInfo(name: name, shape: shape, type: type, fileOffset: start, byteCount: bytes))
            }
            self.tensors = infos
            self.tensorIndex = index
        } catch {
            munmap(p, size)
            throw error
        }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), fileSize) }

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
    /// A count that must fit in the rest of the file (each counted item takes at least one byte).
    mutating func count(_ what: String) throws -> Int {
        let n = try u64(what)
        guard n <= UInt64(size - offset) else { throw GGUFError.truncated(what: what, offset: offset) }
        return Int(n)
    }
    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let n = try u64(what())
        guard n <= UInt64(size - offset) else { throw GGUFError.truncated(what: what(), offset: offset) }
        let p = try take(Int(n), what())
        return String(decoding: UnsafeRawBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }
    mutating func value(type: UInt32, key: String) throws -> GGUFValue {
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
            let elementType = try u32(what)
            let n = try count(what)
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key)) }
            return .array(items)
        case 10: return .uint64(try u64(what))
        case 11: return .int64(Int64(bitPattern: try u64(what)))
        case 12: return .float64(Double(bitPattern: try u64(what)))
        default: throw GGUFError.unknownValueType(type, key: key)
        }
    }
}
