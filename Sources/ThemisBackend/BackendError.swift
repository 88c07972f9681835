/// Errors a backend reports; the CLI turns them into messages and exit codes.
public enum BackendError: Error, CustomStringConvertible, Equatable {
    case unsupportedType(StorageType, op: String)
    case shapeMismatch(String)
    case outOfMemory(requested: Int, detail: String)
    case deviceNotFound(String, available: [String])
    case unavailable(String)
    /// The device failed while running recorded work (device lost, memory exhausted).
    case deviceFailed(String)

    public var description: String {
        switch self {
        case .unsupportedType(let t, let op): return "the backend does not support \(t) for \(op)"
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .outOfMemory(let n, let d): return "out of device memory allocating \(n) bytes: \(d)"
        case .deviceNotFound(let name, let avail):
            return "no device '\(name)'; available: \(avail.joined(separator: ", "))"
        case .unavailable(let s): return s
        case .deviceFailed(let s): return "the device failed: \(s)"
        }
    }
}
