import ThemisBackend

/// Loads an architecture's tensors from a GGUF file onto a backend, checking each name, shape and
/// storage type, and remembering which tensors were taken so that `finish()` can refuse a file
/// holding tensors the architecture does not know (a variant it would run wrongly).
public final class WeightLoader {
    // Used by one architecture's init at a time; not shared.
    public let file: GGUFFile
    public let backend: any Backend
    private let architecture: String
    private var taken: Set<String> = []

    init(file: GGUFFile, backend: any Backend, architecture: String) {
        self.file = file
        self.backend = backend
        self.architecture = architecture
    }

    /// Tensor `name` of `shape` (`[out, in]` for a matrix, `[n]` for a vector), uploaded.
    /// 1-D tensors (norms, biases) become one f32 row.
    public func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
        let info = try info(name, shape)
        let want = shape.count == 1 ? [1, shape[0]] : shape
        guard backend.supports(info.type) else { throw BackendError.unsupportedType(info.type, op: "weights") }
        // Norm weights and biases are read as f32 vectors by every op that takes them.
        if shape.count == 1 && info.type != .f32 {
            throw GGUFError.wrongTensorType(name, type: info.type, allowed: [.f32])
        }
        if info.type == .f32 && want[0] == 1 {
            // Small f32 vectors become activation-format tensors so every backend can read them.
            let t = try backend.makeTensor(shape: want)
            backend.write(Array(file.bytes(of: info).bindMemory(to: Float.self)), to: t)
            return t
        }
        return try backend.makeWeight(type: info.type, shape: want, bytes: file.bytes(of: info))
    }

    /// `tensor(name, shape)` when the file has it, else nil.
    public func optional(_ name: String, _ shape: [Int]) throws -> Tensor? {
        file.tensorInfo(name) == nil ? nil : try tensor(name, shape)
    }

    /// A matrix stored as several stacked ones (Phi-3's fused QKV and gate/up), split into one
    /// weight per part: `rows[i]` output rows each, of `inputs` inputs. Quantised rows are whole
    /// blocks, so each part is a contiguous run of the file's bytes.
    public func split(_ name: String, rows: [Int], inputs: Int) throws -> [Tensor] {
        let info = try info(name, [rows.reduce(0, +), inputs])
        guard backend.supports(info.type) else { throw BackendError.unsupportedType(info.type, op: "weights") }
        let bytes = file.bytes(of: info)
        let rowBytes = info.type.byteCount(elements: inputs)
        var start = 0
        return try rows.map { count in
            defer { start += count }
            let part = UnsafeRawBufferPointer(rebasing: bytes[start * rowBytes..<(start + count) * rowBytes])
            return try backend.makeWeight(type: info.type, shape: [count, inputs], bytes: part)
        }
    }

    /// An f32 vector of `count` values kept on the host (RoPE frequency factors), or nil when the
    /// file lacks it.
    public func hostVector(_ name: String, count: Int) throws -> [Float]? {
        guard file.tensorInfo(name) != nil else { return nil }
        let info = try info(name, [count])
        guard info.type == .f32 else { throw GGUFError.wrongTensorType(name, type: info.type, allowed: [.f32]) }
        let values = Array(file.bytes(of: info).bindMemory(to: Float.self).prefix(count))
        guard values.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw ModelError.badHyperParameter("tensor \(name) holds a value that is not a finite number above 0")
        }
        return values
    }

    /// Marks `name` as known but unused (a tensor llama.cpp also ignores).
    public func ignore(_ name: String) { taken.insert(name) }

    /// Throws for the first tensor of the file no one took.
    func finish() throws {
        if let stray = file.tensors.first(where: { !taken.contains($0.name) })?.name {
            throw GGUFError.unusedTensor(stray, architecture: architecture)
        }
    }

    private func info(_ name: String, _ shape: [Int]) throws -> GGUFTensorInfo {
        guard let info = file.tensorInfo(name) else { throw GGUFError.missingTensor(name) }
        let want = shape.count == 1 ? [1, shape[0]] : shape
        let have = info.shape.count == 1 ? [1, info.shape[0]] : info.shape
        guard have == want else {
            throw ModelError.badHyperParameter("tensor \(name) has shape \(info.shape), expected \(shape)")
        }
        taken.insert(name)
        return info
    }
}
