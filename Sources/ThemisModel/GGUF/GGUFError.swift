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
        }
    }
}
