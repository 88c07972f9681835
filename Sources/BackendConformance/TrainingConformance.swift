import ThemisBackend

/// One backward op checked against central finite differences of its forward op on the
/// reference backend. With a seeded upstream gradient `r`, the scalar `L(x) = Σ r · forward(x)`;
/// the op's gradient for each differentiated input must equal `dL/dx` (NMSE below `tolerance`).
public struct GradientCase: Sendable, CustomStringConvertible {
    public let name: String
    /// Largest NMSE accepted.
    public let tolerance: Double
    /// The op's inputs, seeded.
    let inputs: [[Float]]
    /// Which inputs are differentiated.
    let differentiated: [Int]
    /// The upstream gradient (one value per output of `forward`).
    let upstream: [Float]
    /// The forward op on the reference backend.
    let forward: @Sendable (ReferenceBackend, [[Float]]) throws -> [Float]
    /// The backward op on a backend: the gradients of the differentiated inputs, concatenated.
    let backward: @Sendable (any TrainingBackend, [[Float]], [Float]) throws -> [Float]

    public var description: String { name }

    /// The gradients by central differences: each element moved by ±`step` (the step actually
    /// taken after rounding to f32 is the divisor).
    public func finiteDifferences(step: Float = 1e-2) throws -> [Float] {
        let reference = ReferenceBackend()
        func loss(_ x: [[Float]]) throws -> Double {
            let y = try forward(reference, x)
            precondition(y.count == upstream.count, "\(name): \(y.count) outputs, \(upstream.count) upstream values")
            return zip(y, upstream).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        var result: [Float] = []
        for a in differentiated {
            for e in inputs[a].indices {
                var plus = inputs, minus = inputs
                plus[a][e] += step
                minus[a][e] -= step
                let delta = Double(plus[a][e]) - Double(minus[a][e])
                result.append(Float((try loss(plus) - loss(minus)) / delta))
            }
        }
        return result
    }

    /// The NMSE of `backend`'s gradients against the finite differences.
    public func nmse(on backend: any TrainingBackend) throws -> Double {
        let expected = try finiteDifferences()
        let actual = try backward(backend, inputs, upstream)
        precondition(expected.count == actual.count, "\(name): gradient sizes differ")
        var num = 0.0, den = 0.0
        for (a, e) in zip(actual, expected) {
            num += (Double(a) - Double(e)) * (Double(a) - Double(e))
            den += Double(e) * Double(e)
        }
        if !num.isFinite { return .infinity }
        return den == 0 ? num : num / den
    }
}

/// The backward ops' cases: gradients against finite differences (small shapes), and backends
/// against the reference backward at the shapes the kernels tile (block and panel edges).
public enum TrainingConformance {
    /// Finite-difference checks of every backward op.
    public static var gradientCases: [GradientCase] {
        inputGradientCases + [weightGradientCase, rmsNormCase, swigluCase, crossEntropyCase] + ropeGradientCases
            + attentionGradientCases
    }

    /// Every backward op against the reference backend's at larger shapes.
    public static var cases: [ConformanceCase] { inputGradientConformance + otherConformance }

    static func tensor(_ b: any Backend, _ shape: [Int], _ values: [Float]) throws -> Tensor {
        try Conformance.tensor(b, shape, values)
    }

    static func training(_ b: any Backend) throws -> any TrainingBackend {
        guard let t = b as? any TrainingBackend else {
            throw BackendError.unsupportedType(.f32, op: "training (\(b.device.name) has no backward ops)")
        }
        return t
    }

    /// A weight of `type` whose dequantised values are `values` rounded to it: f32 and f16 hold
    /// them, and quantised types get seeded blocks instead (their values are what they are).
    static func weight(_ b: any Backend, _ type: StorageType, rows: Int, k: Int, seed: UInt64) throws -> (Tensor, ByteBox) {
        var r = Inputs(seed: seed)
        let box = ByteBox(r.weightBytes(type, rows: rows, k: k, scale: 0.5))
        return (try b.makeWeight(type: type, shape: [rows, k], bytes: UnsafeRawBufferPointer(box.bytes)), box)
    }

    // MARK: finite differences

    static var inputGradientCases: [GradientCase] {
        [StorageType.f32, .f16, .q8_0, .q4_1, .q4K].map { type in
            let n = 3, m = 5, k = type.blockSize == 256 ? 256 : 64
            var r = Inputs(seed: 61 &+ UInt64(type.rawValue))
            let seed = 70 &+ UInt64(type.rawValue)
            return GradientCase(
                name: "matmul input gradient \(type)", tolerance: 1e-6, inputs: [r.floats(n * k)], differentiated: [0],
                upstream: r.floats(n * m),
                forward: { b, x in
                    let (w, box) = try weight(b, type, rows: m, k: k, seed: seed)
                    let xt = try tensor(b, [n, k], x[0]), y = try b.makeTensor(shape: [n, m])
                    b.matmul(xt, weight: w, into: y)
                    return try withExtendedLifetime(box) { try b.read(y) }
                },
                backward: { b, _, dy in
                    let (w, box) = try weight(b, type, rows: m, k: k, seed: seed)
                    let g = try tensor(b, [n, m], dy), dx = try b.makeTensor(shape: [n, k])
                    b.matmulInputGradient(g, weight: w, into: dx, accumulate: false)
                    return try withExtendedLifetime(box) { try b.read(dx) }
                })
        }
    }

    static var weightGradientCase: GradientCase {
        let n = 5, m = 4, k = 7
        var r = Inputs(seed: 62)
        let stale = r.floats(m * k)
        return GradientCase(
            name: "matmul weight gradient", tolerance: 1e-6, inputs: [r.floats(n * k), r.floats(m * k)], differentiated: [1],
            upstream: r.floats(n * m),
            forward: { b, v in
                let x = try tensor(b, [n, k], v[0]), w = try tensor(b, [m, k], v[1]), y = try b.makeTensor(shape: [n, m])
                b.matmul(x, weight: w, into: y)
                return try b.read(y)
            },
            backward: { b, v, dy in
                let x = try tensor(b, [n, k], v[0]), g = try tensor(b, [n, m], dy)
                let dw = try tensor(b, [m, k], stale)  // overwritten: accumulate is off
                b.matmulWeightGradient(g, input: x, into: dw, accumulate: false)
                return try b.read(dw)
            })
    }

    static var rmsNormCase: GradientCase {
        let n = 3, width = 40
        var r = Inputs(seed: 63)
        let weights = r.floats(width, scale: 2)
        return GradientCase(
            name: "rmsNorm backward", tolerance: 1e-6, inputs: [r.floats(n * width, scale: 2)], differentiated: [0],
            upstream: r.floats(n * width),
            forward: { b, v in
                let x = try tensor(b, [n, width], v[0]), w = try tensor(b, [1, width], weights)
                let y = try b.makeTensor(shape: [n, width])
                b.rmsNorm(x, weight: w, epsilon: 1e-5, into: y)
                return try b.read(y)
            },
            backward: { b, v, dy in
                let x = try tensor(b, [n, width], v[0]), w = try tensor(b, [1, width], weights)
                let g = try tensor(b, [n, width], dy), dx = try b.makeTensor(shape: [n, width])
                b.rmsNormBackward(x, weight: w, epsilon: 1e-5, gradient: g, into: dx)
                return try b.read(dx)
            })
    }

    static var swigluCase: GradientCase {
        let n = 2, width = 37
        var r = Inputs(seed: 64)
        return GradientCase(
            name: "swiglu backward", tolerance: 1e-6, inputs: [r.floats(n * width, scale: 4), r.floats(n * width)],
            differentiated: [0, 1], upstream: r.floats(n * width),
            forward: { b, v in
                let g = try tensor(b, [n, width], v[0]), u = try tensor(b, [n, width], v[1])
                let y = try b.makeTensor(shape: [n, width])
                b.swiglu(gate: g, up: u, into: y)
                return try b.read(y)
            },
            backward: { b, v, dy in
                let g = try tensor(b, [n, width], v[0]), u = try tensor(b, [n, width], v[1])
                let d = try tensor(b, [n, width], dy)
                b.swigluBackward(gate: g, up: u, gradient: d, gateGradient: g, upGradient: u)  // in place
                return try b.read(g) + b.read(u)
            })
    }

    static var crossEntropyCase: GradientCase {
        let n = 4, vocab = 29
        var r = Inputs(seed: 65)
        let targets: [Int32] = [3, 0, 28, 11], weights: [Float] = [1, 0, 0.5, 2]
        return GradientCase(
            name: "cross-entropy", tolerance: 1e-6, inputs: [r.floats(n * vocab, scale: 4)], differentiated: [0],
            upstream: Array(repeating: 1, count: n),
            forward: { b, v in
                let x = try tensor(b, [n, vocab], v[0]), losses = try b.makeTensor(shape: [n, 1])
                b.crossEntropy(x, targets: targets, weights: weights, factor: 1, losses: losses,
                               gradient: try b.makeTensor(shape: [n, vocab]))
                return try b.read(losses)
            },
            backward: { b, v, _ in
                let x = try tensor(b, [n, vocab], v[0]), losses = try b.makeTensor(shape: [n, 1])
                b.crossEntropy(x, targets: targets, weights: weights, factor: 1, losses: losses, gradient: x)  // in place
                return try b.read(x)
            })
    }

    static var ropeGradientCases: [GradientCase] {
        RoPELayout.allCases.flatMap { layout in
            [RoPEScaling.none, RoPEScaling(positionScale: 0.5, magnitude: 1.2, frequencyFactors: [1, 2.5, 4])].map { scaling in
                let n = 3, headDim = 8, ropeDim = 6, width = 2 * headDim
                var r = Inputs(seed: 66)
                return GradientCase(
                    name: "rope backward \(layout)\(scaling == .none ? "" : " scaled")", tolerance: 1e-6,
                    inputs: [r.floats(n * width)], differentiated: [0], upstream: r.floats(n * width),
                    forward: { b, v in
                        let x = try tensor(b, [n, width], v[0])
                        b.rope(x, headDim: headDim, ropeDim: ropeDim, startPosition: 5, freqBase: 100, layout: layout,
                               scaling: scaling)
                        return try b.read(x)
                    },
                    backward: { b, _, dy in
                        let g = try tensor(b, [n, width], dy)
                        b.ropeBackward(g, headDim: headDim, ropeDim: ropeDim, startPosition: 5, freqBase: 100, layout: layout,
                                       scaling: scaling)
                        return try b.read(g)
                    })
            }
        }
    }

    /// Attention over its own rows, and (`start` > 0) query rows after a prefix of keys: the
    /// prefix's keys and values get their gradient too.
    static var attentionGradientCases: [GradientCase] {
        [(4, 2, 0, 0), (3, 3, 0, 0), (4, 1, 3, 0), (4, 2, 0, 3), (2, 1, 3, 4)].map { heads, kvHeads, window, start in
            let n = 6 - start / 2, d = 4, keyCount = start + n
            var r = Inputs(seed: 67 &+ UInt64(heads * 10 + window + 100 * start))
            let mask = AttentionMask(window: window)
            let qw = heads * d, kw = kvHeads * d
            return GradientCase(
                name: "attention backward heads=\(heads) kv=\(kvHeads) window=\(window) start=\(start)", tolerance: 1e-6,
                inputs: [r.floats(n * qw, scale: 2), r.floats(keyCount * kw, scale: 2), r.floats(keyCount * kw)],
                differentiated: [0, 1, 2], upstream: r.floats(n * qw),
                forward: { b, v in
                    let q = try tensor(b, [n, qw], v[0]), k = try tensor(b, [keyCount, kw], v[1])
                    let vv = try tensor(b, [keyCount, kw], v[2])
                    let out = try b.makeTensor(shape: [n, qw])
                    b.attention(q: q, keys: k, values: vv, headCount: heads, headCountKV: kvHeads, startPosition: start,
                                scale: 0.5, mask: mask, into: out)
                    return try b.read(out)
                },
                backward: { b, v, dy in
                    let q = try tensor(b, [n, qw], v[0]), k = try tensor(b, [keyCount, kw], v[1])
                    let vv = try tensor(b, [keyCount, kw], v[2])
                    let g = try tensor(b, [n, qw], dy)
                    let dq = try b.makeTensor(shape: [n, qw]), dk = try b.makeTensor(shape: [keyCount, kw])
                    let dv = try b.makeTensor(shape: [keyCount, kw])
                    b.attentionBackward(q: q, keys: k, values: vv, gradient: g, headCount: heads, headCountKV: kvHeads,
                                        startPosition: start, scale: 0.5, mask: mask, queryGradient: dq, keyGradient: dk,
                                        valueGradient: dv)
                    return try b.read(dq) + b.read(dk) + b.read(dv)
                })
        }
    }

    // MARK: against the reference backward

    static var inputGradientConformance: [ConformanceCase] {
        StorageType.allCases.flatMap { type in
            [(1, 37, false), (9, 70, true), (20, 33, false)].map { n, m, accumulate in
                let k = Conformance.inner(type) * (type.blockSize == 32 ? 3 : 1)
                return ConformanceCase(name: "matmul input gradient \(type) n=\(n) m=\(m) k=\(k)\(accumulate ? " accumulating" : "")",
                                       tolerance: 1e-10) { backend in
                    let b = try training(backend)
                    var r = Inputs(seed: UInt64(n * 100 + m) &+ UInt64(type.rawValue))
                    let (w, box) = try weight(b, type, rows: m, k: k, seed: 80 &+ UInt64(type.rawValue))
                    let dy = try tensor(b, [n, m], r.floats(n * m)), dx = try tensor(b, [n, k], r.floats(n * k))
                    b.matmulInputGradient(dy, weight: w, into: dx, accumulate: accumulate)
                    return try withExtendedLifetime(box) { try b.read(dx) }
                }
            }
        }
    }

    static var otherConformance: [ConformanceCase] {
        var cases: [ConformanceCase] = []
        for (n, m, k) in [(33, 8, 96), (40, 96, 8), (1, 5, 3)] {
            for accumulate in [false, true] {
                cases.append(ConformanceCase(name: "matmul weight gradient n=\(n) m=\(m) k=\(k)\(accumulate ? " accumulating" : "")",
                                             tolerance: 1e-10) { backend in
                    let b = try training(backend)
                    var r = Inputs(seed: UInt64(n + m + k))
                    let dy = try tensor(b, [n, m], r.floats(n * m)), x = try tensor(b, [n, k], r.floats(n * k))
                    let dw = try tensor(b, [m, k], r.floats(m * k))
                    b.matmulWeightGradient(dy, input: x, into: dw, accumulate: accumulate)
                    return try b.read(dw)
                })
            }
        }
        for (n, width) in [(1, 64), (7, 576), (3, 45)] {
            cases.append(ConformanceCase(name: "rmsNorm backward \(n)x\(width)", tolerance: 1e-10) { backend in
                let b = try training(backend)
                var r = Inputs(seed: 90)
                let x = try tensor(b, [n, width], r.floats(n * width, scale: 3)), w = try tensor(b, [1, width], r.floats(width))
                let g = try tensor(b, [n, width], r.floats(n * width))
                b.rmsNormBackward(x, weight: w, epsilon: 1e-6, gradient: g, into: g)
                return try b.read(g)
            })
            cases.append(ConformanceCase(name: "swiglu backward \(n)x\(width)", tolerance: 1e-10) { backend in
                let b = try training(backend)
                var r = Inputs(seed: 91)
                let g = try tensor(b, [n, width], r.floats(n * width, scale: 8)), u = try tensor(b, [n, width], r.floats(n * width))
                let d = try tensor(b, [n, width], r.floats(n * width))
                let dg = try b.makeTensor(shape: [n, width]), du = try b.makeTensor(shape: [n, width])
                b.swigluBackward(gate: g, up: u, gradient: d, gateGradient: dg, upGradient: du)
                return try b.read(dg) + b.read(du)
            })
            // the same mask everywhere (one element dropped or kept differently would cost ~1e-2)
            cases.append(ConformanceCase(name: "dropout \(n)x\(width)", tolerance: 1e-13) { backend in
                let b = try training(backend)
                var r = Inputs(seed: 92)
                let x = try tensor(b, [n, width], r.floats(n * width))
                b.dropout(x, probability: 0.3, seed: 0x1234_5678_9ABC_DEF0, into: x)
                return try b.read(x)
            })
        }
        for layout in RoPELayout.allCases {
            cases.append(ConformanceCase(name: "rope backward \(layout) n=5 at 300", tolerance: 1e-10) { backend in
                let b = try training(backend)
                var r = Inputs(seed: 93)
                let g = try tensor(b, [5, 3 * 64], r.floats(5 * 3 * 64))
                b.ropeBackward(g, headDim: 64, ropeDim: 64, startPosition: 300, freqBase: 10_000, layout: layout,
                               scaling: RoPEScaling(positionScale: 1, magnitude: 1.1, frequencyFactors: nil))
                return try b.read(g)
            })
        }
        // start > 0: rows after a shared prefix (a window that ends before some rows' keys, rows
        // of one key block, prefix longer than the rows)
        for (n, heads, kvHeads, d, window, start) in [
            (1, 2, 1, 64, 0, 0), (37, 9, 3, 64, 0, 0), (70, 14, 2, 64, 0, 0), (20, 4, 4, 32, 7, 0), (50, 4, 2, 16, 5, 0),
            (1, 2, 1, 64, 0, 40), (29, 9, 3, 64, 0, 51), (20, 4, 4, 32, 7, 45), (33, 4, 2, 16, 5, 17), (5, 6, 2, 64, 0, 3),
        ] {
            cases.append(ConformanceCase(
                name: "attention backward n=\(n) heads=\(heads)/\(kvHeads) d=\(d) window=\(window) start=\(start)",
                tolerance: 1e-9) { backend in
                let b = try training(backend)
                var r = Inputs(seed: UInt64(94 + n + start))
                let qw = heads * d, kw = kvHeads * d, keyCount = start + n
                let q = try tensor(b, [n, qw], r.floats(n * qw)), k = try tensor(b, [keyCount, kw], r.floats(keyCount * kw))
                let v = try tensor(b, [keyCount, kw], r.floats(keyCount * kw)), g = try tensor(b, [n, qw], r.floats(n * qw))
                let dq = try b.makeTensor(shape: [n, qw]), dk = try b.makeTensor(shape: [keyCount, kw])
                let dv = try b.makeTensor(shape: [keyCount, kw])
                b.attentionBackward(q: q, keys: k, values: v, gradient: g, headCount: heads, headCountKV: kvHeads,
                                    startPosition: start, scale: 1 / Float(d).squareRoot(), mask: AttentionMask(window: window),
                                    queryGradient: dq, keyGradient: dk, valueGradient: dv)
                return try b.read(dq) + b.read(dk) + b.read(dv)
            })
        }
        for (n, vocab) in [(3, 49_152), (17, 100)] {
            cases.append(ConformanceCase(name: "cross-entropy n=\(n) vocab=\(vocab)", tolerance: 1e-10) { backend in
                let b = try training(backend)
                var r = Inputs(seed: 96)
                let x = try tensor(b, [n, vocab], r.floats(n * vocab, scale: 10))
                let targets = (0..<n).map { Int32(($0 * 7919) % vocab) }
                let weights = (0..<n).map { [1, 0, 0.25][$0 % 3] as Float }
                let losses = try b.makeTensor(shape: [n, 1]), g = try b.makeTensor(shape: [n, vocab])
                b.crossEntropy(x, targets: targets, weights: weights, factor: 0.1, losses: losses, gradient: g)
                return try b.read(losses) + b.read(g)
            })
        }
        return cases
    }
}
