import ThemisBackend

/// Folds a LoRA adapter into its model: every adapted weight `W` becomes `W + s · B A`.
public enum LoRAMerge {
    /// Writes `model` to `path` with `adapter` merged at `scale`: adapted weights in `type` (the
    /// adapter's sum is not representable in the base's quantised blocks without new rounding, so
    /// it is written in a float type), every other tensor and all metadata copied unchanged.
    /// `progress(done, total)` is called after each tensor.
    public static func merge(model: GGUFFile, adapter: LoRAAdapterFile, scale: Float, type: GGUFWriter.FloatType, to path: String,
                             progress: ((Int, Int) -> Void)? = nil) throws {
        var adapted: [String: LoRAAdapterFile.Entry] = [:]
        for e in adapter.entries {
            let name = e.target.weightName(block: e.block)
            guard let info = model.tensorInfo(name) else {
                throw LoRAError(adapter.file.path, "the model has no tensor '\(name)' to merge into (a fused projection?)")
            }
            let (outputs, inputs) = (info.shape.first ?? 0, info.shape.last ?? 0)
            guard info.shape.count == 2, e.a.shape[1] == inputs, e.b.shape[0] == outputs else {
                throw LoRAError(adapter.file.path, "'\(name)' is \(info.shape) in the model; the adapter's matrices do not fit it")
            }
            adapted[name] = e
        }
        var w = GGUFWriter()
        w.alignment = model.alignment
        for key in model.metadataKeys { w.set(key, model.metadata[key]!) }
        let total = model.tensors.count
        var done = 0
        for info in model.tensors {
            if let e = adapted[info.name] {
                let factor = adapter.factor(e, scale: scale)
                w.tensors.append(.init(name: info.name, shape: info.shape, type: type.storage) {
                    defer { done += 1; progress?(done, total) }
                    let merged = merged(info, in: model, a: adapter.values(e.a), b: adapter.values(e.b), rank: e.rank,
                                        factor: factor)
                    return type.bytes(of: merged)
                })
            } else {
                w.tensors.append(.init(name: info.name, shape: info.shape, type: info.type) {
                    defer { done += 1; progress?(done, total) }
                    return Array(model.bytes(of: info))
                })
            }
        }
        try w.write(to: path)
    }

    /// `W + factor · B A` of one weight, row by row (each row dequantised on its own).
    static func merged(_ info: GGUFTensorInfo, in model: GGUFFile, a: [Float], b: [Float], rank: Int, factor: Float)
        -> [Float]
    {
        let (outputs, inputs) = (info.shape[0], info.shape[1])
        let rowBytes = info.type.byteCount(elements: inputs)
        let bytes = model.bytes(of: info)
        var out = [Float](repeating: 0, count: outputs * inputs)
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<outputs {
                let row = o.baseAddress! + r * inputs
                Dequantize.row(info.type, bytes.baseAddress! + r * rowBytes, count: inputs, into: row)
                for j in 0..<rank {
                    let c = factor * b[r * rank + j]
                    for i in 0..<inputs { row[i] += c * a[j * inputs + i] }
                }
            }
        }
        return out
    }
}
