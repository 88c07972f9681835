import ThemisBackend

/// Why a GGUF file could not be opened or used.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(String)
    case cannotOpen(String, reason: String)
    case badMagic(String)
    case unsupportedVersion(UInt32)
    case truncated(what: String, offset: Int)
    case unknownValueType(UInt32, key: String)
    case unknownTensorType(UInt32, tensor: String)
    case tensorOutOfBounds(String)
    case badTensorShape(String)
    case missingKey(String)
    case wrongValueType(key: String, expected: String)
    case missingTensor(String)
    case nestingTooDeep(key: String, limit: Int)
    case duplicateKey(String)
    case duplicateTensor(String)
    case misalignedTensor(String, offset: Int, alignment: Int)
    case overlappingTensors(String, String)
    case wrongTensorType(String, type: StorageType, allowed: [StorageType])
    case badValue(key: String, reason: String)
    /// A tensor the architecture's definition neither uses nor knowingly ignores.
    case unusedTensor(String, architecture: String)

    public var description: String {
        switch self {
        case .fileNotFound(let p): return "model file not found: \(p)"
        case .cannotOpen(let p, let r): return "cannot open model file \(p): \(r)"
        case .badMagic(let p): return "not a GGUF file (bad magic): \(p)"
        case .unsupportedVersion(let v): return "unsupported GGUF version \(v) (supported: 2, 3)"
        case .truncated(let w, let o): return "GGUF file is truncated: \(w) at byte \(o) runs past the end"
        case .unknownValueType(let t, let k): return "unknown GGUF metadata value type \(t) for key '\(k)'"
        case .unknownTensorType(let t, let n): return "tensor '\(n)' has unknown or unsupported type id \(t)"
        case .tensorOutOfBounds(let n): return "tensor '\(n)' data lies outside the file (truncated or corrupt file)"
        case .badTensorShape(let n): return "tensor '\(n)' has an invalid shape"
        case .missingKey(let k): return "GGUF metadata key '\(k)' is missing"
        case .wrongValueType(let k, let e): return "GGUF metadata key '\(k)' is not \(e)"
        case .missingTensor(let n): return "tensor '\(n)' is missing from the model file"
        case .nestingTooDeep(let k, let l): return "GGUF metadata '\(k)' nests arrays more than \(l) deep"
        case .duplicateKey(let k): return "GGUF metadata key '\(k)' appears twice"
        case .duplicateTensor(let n): return "tensor '\(n)' appears twice in the model file"
        case .misalignedTensor(let n, let o, let a):
            return "tensor '\(n)' data offset \(o) is not a multiple of the file's alignment \(a)"
        case .overlappingTensors(let a, let b): return "tensors '\(a)' and '\(b)' overlap in the model file"
        case .wrongTensorType(let n, let t, let allowed):
            return "tensor '\(n)' is stored as \(t); it must be one of \(allowed.map(\.description).joined(separator: ", "))"
        case .badValue(let k, let r): return "GGUF metadata key '\(k)' \(r)"
        case .unusedTensor(let n, let a):
            return "tensor '\(n)' is not part of the \(a) architecture as implemented (a variant this version cannot run)"
        }
    }
}
