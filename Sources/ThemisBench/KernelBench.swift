import BackendConformance
import Foundation
import ThemisBackend

/// Kernel speed on one backend: GFLOP/s and GB/s of matmul (the decode and prefill shapes of the
/// two default models, and every weight type), attention over 128 / 512 / 2048 positions, and
/// the small ops. Written against the Backend protocol, so it runs on every backend.
public struct KernelBench {
    /// One measured kernel.
    public struct Result: Sendable, Codable, Equatable {
        public var op: String
        /// Shape and model, e.g. `qwen2.5 ffn_down 896x4864 n=1`.
        public var shape: String
        public var type: String
        /// Median seconds per call.
        public var seconds: Double
        public var flops: Double
        public var bytes: Double
        public var gflops: Double { flops / seconds / 1e9 }
        public var gigabytesPerSecond: Double { bytes / seconds / 1e9 }
    }

    /// A matmul shape of a default model: `m` output rows of `k` inputs, in the model's type.
    public struct MatmulShape: Sendable {
        public var model: String, name: String, m: Int, k: Int, type: StorageType
    }

    /// The per-layer and classifier shapes of SmolLM2-135M (Q4_1) and Qwen2.5-0.5B (Q4_K_M).
    public static let modelShapes: [MatmulShape] = [
        .init(model: "smollm2", name: "attn_q", m: 576, k: 576, type: .q4_1),
        .init(model: "smollm2", name: "attn_k", m: 192, k: 576, type: .q4_1),
        .init(model: "smollm2", name: "ffn_up", m: 1536, k: 576, type: .q4_1),
        .init(model: "smollm2", name: "ffn_down", m: 576, k: 1536, type: .q4_1),
        .init(model: "smollm2", name: "output", m: 49152, k: 576, type: .q8_0),
        .init(model: "qwen2.5", name: "attn_q", m: 896, k: 896, type: .q5_0),
        .init(model: "qwen2.5", name: "attn_v", m: 128, k: 896, type: .q8_0),
        .init(model: "qwen2.5", name: "ffn_up", m: 4864, k: 896, type: .q5_0),
        .init(model: "qwen2.5", name: "ffn_down", m: 896, k: 4864, type: .q6K),
        .init(model: "qwen2.5", name: "output", m: 151936, k: 896, type: .q8_0),
    ]

    public let backend: any Backend
    /// Tokens of the prefill shapes.
    public var prefillTokens: Int
    /// Timed repetitions (the median is reported) and the time each should take.
    public var repetitions: Int
    public var targetSeconds: Double

    public init(backend: any Backend, prefillTokens: Int = 512, repetitions: Int = 3, targetSeconds: Double = 0.2) {
        self.backend = backend
        self.prefillTokens = prefillTokens
        self.repetitions = max(1, repetitions)
        self.targetSeconds = targetSeconds
    }

    /// A kernel call ready to measure: `prepare` makes its tensors and returns the call.
    public struct Case {
        public let name: String
        public let prepare: () throws -> Prepared
    }

    /// A prepared call and what one call computes and moves.
    public struct Prepared {
        public let op: String, shape: String, type: String
        public let flops: Double, bytes: Double
        public let call: () -> Void
        /// Keeps inputs alive (weight bytes a backend may use in place).
        let keepAlive: [AnyObject]
    }

    /// Every case, in the order `run` measures them.
    public func cases() -> [Case] {
        var cases: [Case] = []
        for s in Self.modelShapes {
            // the classifier only ever runs on the rows whose logits are wanted
            for n in s.name == "output" ? [1] : [1, prefillTokens] {
                cases.append(Case(name: "matmul \(s.model) \(s.name) n=\(n)") {
                    try self.matmul(s.type, m: s.m, k: s.k, n: n, label: "\(s.model) \(s.name)")
                })
            }
        }
        for type in StorageType.allCases {
            for n in [1, prefillTokens] {
                cases.append(Case(name: "matmul types \(type) n=\(n)") {
                    try self.matmul(type, m: 896, k: 4864, n: n, label: "qwen2.5 ffn_down")
                })
            }
        }
        // the read bandwidth decode is bound by: a 256 MiB f32 weight (far past the caches),
        // streamed once per call with one multiply-add per 4 bytes
        cases.append(Case(name: "matmul read bandwidth n=1") {
            try self.matmul(.f32, m: 65536, k: 1024, n: 1, label: "read bandwidth")
        })
        for (model, heads, kvHeads) in [("smollm2", 9, 3), ("qwen2.5", 14, 2)] {
            for context in [128, 512, 2048] {
                cases.append(Case(name: "attention \(model) ctx=\(context)") {
                    try self.attention(model: model, heads: heads, kvHeads: kvHeads, headDim: 64, context: context)
                })
            }
        }
        return cases + smallOps() + trainingCases()
    }

    /// The backward ops' cases (backends with a `TrainingBackend`): attention over a whole
    /// sequence forward and backward, and the input gradient through a quantised weight.
    private func trainingCases() -> [Case] {
        guard let training = backend as? any TrainingBackend else { return [] }
        let n = prefillTokens
        var cases: [Case] = []
        for (model, heads, kvHeads) in [("smollm2", 9, 3), ("qwen2.5", 14, 2)] {
            let qw = heads * 64, kw = kvHeads * 64
            // causal: about n²/2 scores per head; 2 products forward, 5 backward, each 2·d flops
            let pairs = Double(heads * n * (n + 1) / 2)
            func make() throws -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor) {
                var r = Inputs(seed: 7)
                return (try tensor([n, qw], &r), try tensor([n, kw], &r), try tensor([n, kw], &r), try tensor([n, qw], &r),
                        try backend.makeTensor(shape: [n, qw]), try backend.makeTensor(shape: [n, kw]),
                        try backend.makeTensor(shape: [n, kw]), try backend.makeTensor(shape: [n, qw]))
            }
            cases.append(Case(name: "attention prefill \(model) n=\(n)") {
                let (q, k, v, _, _, _, _, out) = try make()
                return Prepared(op: "attention prefill", shape: "\(model) \(heads)/\(kvHeads) heads n=\(n)", type: "f32",
                                flops: pairs * 4 * 64, bytes: Double(4 * n * (2 * qw + 2 * kw)), call: {
                                    backend.attention(q: q, keys: k, values: v, headCount: heads, headCountKV: kvHeads,
                                                      startPosition: 0, scale: 0.125, into: out)
                                }, keepAlive: [])
            })
            cases.append(Case(name: "attention backward \(model) n=\(n)") {
                let (q, k, v, g, dq, dk, dv, _) = try make()
                return Prepared(op: "attention backward", shape: "\(model) \(heads)/\(kvHeads) heads n=\(n)", type: "f32",
                                flops: pairs * 10 * 64, bytes: Double(4 * n * (4 * qw + 4 * kw)), call: {
                                    training.attentionBackward(q: q, keys: k, values: v, gradient: g, headCount: heads,
                                                               headCountKV: kvHeads, startPosition: 0, scale: 0.125,
                                                               mask: .causal,
                                                               queryGradient: dq, keyGradient: dk, valueGradient: dv)
                                }, keepAlive: [])
            })
        }
        for s in Self.modelShapes where s.name != "output" {
            cases.append(Case(name: "matmul input gradient \(s.model) \(s.name) n=\(n)") {
                var inputs = Inputs(seed: UInt64(s.m * 31 + s.k))
                let (w, box) = try weight(s.type, rows: s.m, k: s.k, &inputs)
                let dy = try tensor([n, s.m], &inputs), dx = try backend.makeTensor(shape: [n, s.k])
                return Prepared(op: "matmul input gradient", shape: "\(s.model) \(s.name) \(s.m)x\(s.k) n=\(n)",
                                type: "\(s.type)", flops: 2 * Double(n * s.m * s.k),
                                bytes: Double(s.type.byteCount(elements: s.m * s.k) + 4 * n * (s.k + s.m)),
                                call: { training.matmulInputGradient(dy, weight: w, into: dx, accumulate: false) }, keepAlive: [box])
            })
        }
        return cases
    }

    /// Every case whose name contains `filter` (all when nil), measured in order; `progress`
    /// sees each result as it comes.
    public func run(filter: String? = nil, progress: (Result) -> Void = { _ in }) throws -> [Result] {
        var results: [Result] = []
        for c in cases() where filter.map({ c.name.contains($0) }) ?? true {
            let p = try c.prepare()
            let seconds = try time(p.call)
            withExtendedLifetime(p.keepAlive) {}
            let r = Result(op: p.op, shape: p.shape, type: p.type, seconds: seconds, flops: p.flops, bytes: p.bytes)
            progress(r)
            results.append(r)
        }
        return results
    }

    /// Median seconds per call of `body`, called enough times per repetition to take about
    /// `targetSeconds` (a backend may queue the calls: the time runs until `synchronize()`).
    private func time(_ body: () -> Void) throws -> Double {
        body()
        try backend.synchronize()
        var t0 = DispatchTime.now().uptimeNanoseconds
        body()
        try backend.synchronize()
        let once = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let calls = max(1, min(200, Int(targetSeconds / max(once, 1e-6))))
        var samples: [Double] = []
        for _ in 0..<repetitions {
            t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<calls { body() }
            try backend.synchronize()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(calls))
        }
        return samples.sorted()[samples.count / 2]
    }

    private func tensor(_ shape: [Int], _ inputs: inout Inputs, scale: Float = 1) throws -> Tensor {
        let t = try backend.makeTensor(shape: shape)
        backend.write(inputs.floats(shape.reduce(1, *), scale: scale), to: t)
        return t
    }

    /// A seeded weight of `type` and the bytes it was made from (kept alive while it is used).
    private func weight(_ type: StorageType, rows: Int, k: Int, _ inputs: inout Inputs) throws -> (Tensor, ByteBox) {
        let box = ByteBox(inputs.weightBytes(type, rows: rows, k: k))
        return (try backend.makeWeight(type: type, shape: [rows, k], bytes: UnsafeRawBufferPointer(box.bytes)), box)
    }

    public func matmul(_ type: StorageType, m: Int, k: Int, n: Int, label: String) throws -> Prepared {
        var inputs = Inputs(seed: UInt64(m * 31 + k))
        let (w, box) = try weight(type, rows: m, k: k, &inputs)
        let x = try tensor([n, k], &inputs)
        let y = try backend.makeTensor(shape: [n, m])
        return Prepared(op: "matmul", shape: "\(label) \(m)x\(k) n=\(n)", type: "\(type)",
                        flops: 2 * Double(n * m * k), bytes: Double(type.byteCount(elements: m * k) + 4 * n * (k + m)),
                        call: { backend.matmul(x, weight: w, into: y) }, keepAlive: [box])
    }

    public func attention(model: String, heads: Int, kvHeads: Int, headDim: Int, context: Int) throws -> Prepared {
        var inputs = Inputs(seed: UInt64(context))
        let q = try tensor([1, heads * headDim], &inputs)
        let keys = try tensor([context, kvHeads * headDim], &inputs)
        let values = try tensor([context, kvHeads * headDim], &inputs)
        let out = try backend.makeTensor(shape: [1, heads * headDim])
        return Prepared(
            op: "attention", shape: "\(model) \(heads)/\(kvHeads) heads ctx=\(context) n=1", type: "f32",
            flops: 4 * Double(heads * context * headDim), bytes: Double(8 * context * kvHeads * headDim + 8 * heads * headDim),
            call: {
                backend.attention(q: q, keys: keys, values: values, headCount: heads, headCountKV: kvHeads,
                                  startPosition: context - 1, scale: 0.125, into: out)
            }, keepAlive: [])
    }

    /// RMSNorm, RoPE, SwiGLU, add, softmax and the embedding gather at Qwen2.5's widths.
    private func smallOps() -> [Case] {
        let n = prefillTokens, dim = 896, ffn = 4864
        func prepared(_ op: String, _ shape: String, _ flops: Int, _ bytes: Int, keep: [AnyObject] = [],
                      _ call: @escaping () -> Void) -> Prepared {
            Prepared(op: op, shape: shape, type: "f32", flops: Double(flops), bytes: Double(bytes), call: call, keepAlive: keep)
        }
        return [
            Case(name: "rmsNorm") {
                var r = Inputs(seed: 1)
                let x = try tensor([n, dim], &r), w = try tensor([1, dim], &r), out = try backend.makeTensor(shape: [n, dim])
                return prepared("rmsNorm", "\(n)x\(dim)", 4 * n * dim, 8 * n * dim) {
                    backend.rmsNorm(x, weight: w, epsilon: 1e-6, into: out)
                }
            },
            Case(name: "rope") {
                var r = Inputs(seed: 2)
                let x = try tensor([n, dim], &r)
                return prepared("rope", "\(n)x\(dim) head 64", 3 * n * dim, 8 * n * dim) {
                    backend.rope(x, headDim: 64, ropeDim: 64, startPosition: 0, freqBase: 1e6, layout: .halfSplit)
                }
            },
            Case(name: "swiglu") {
                var r = Inputs(seed: 3)
                let g = try tensor([n, ffn], &r), u = try tensor([n, ffn], &r), out = try backend.makeTensor(shape: [n, ffn])
                return prepared("swiglu", "\(n)x\(ffn)", 6 * n * ffn, 12 * n * ffn) { backend.swiglu(gate: g, up: u, into: out) }
            },
            Case(name: "add") {
                var r = Inputs(seed: 4)
                let a = try tensor([n, dim], &r), b = try tensor([n, dim], &r), out = try backend.makeTensor(shape: [n, dim])
                return prepared("add", "\(n)x\(dim)", n * dim, 12 * n * dim) { backend.add(a, b, into: out) }
            },
            Case(name: "softmax") {
                var r = Inputs(seed: 5)
                let rows = 16, vocab = 151_936
                let x = try tensor([rows, vocab], &r, scale: 10), out = try backend.makeTensor(shape: [rows, vocab])
                return prepared("logSoftmax", "\(rows)x\(vocab)", 4 * rows * vocab, 8 * rows * vocab) {
                    backend.logSoftmax(x, into: out)
                }
            },
            Case(name: "getRows") {
                var r = Inputs(seed: 6)
                let rows = 4096
                let (table, box) = try weight(.q5_0, rows: rows, k: dim, &r)
                let ids = (0..<n).map { Int32(($0 * 7919) % rows) }
                let out = try backend.makeTensor(shape: [n, dim])
                return prepared("getRows", "\(n) of \(rows)x\(dim) q5_0", n * dim,
                                n * (StorageType.q5_0.byteCount(elements: dim) + 4 * dim), keep: [box]) {
                    backend.getRows(table, ids: ids, into: out)
                }
            },
        ]
    }
}
