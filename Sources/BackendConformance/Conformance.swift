import ThemisBackend

/// The op cases every backend must pass: every op of the protocol, every weight type, and odd
/// shapes (lengths that are not a multiple of a block or a workgroup, one token, GQA 1, 3, 7).
public enum Conformance {
    public static var cases: [ConformanceCase] {
        matmulCases + getRowsCases + elementwiseCases + ropeCases + attentionCases + softmaxCases
    }

    static func tensor(_ b: any Backend, _ shape: [Int], _ values: [Float]) throws -> Tensor {
        let t = try b.makeTensor(shape: shape)
        b.write(values, to: t)
        return t
    }

    /// Row length used for a weight type: whole blocks, not a multiple of 64 where possible.
    static func inner(_ type: StorageType) -> Int {
        switch type.blockSize {
        case 256: return 512
        case 32: return 96
        default: return 45
        }
    }

    static var matmulCases: [ConformanceCase] {
        StorageType.allCases.flatMap { type in
            [(1, 37), (3, 33), (5, 29), (8, 64), (13, 70)].map { n, m in
                let k = inner(type)
                // Matmuls on quantised weights may quantise the activations to 8 bits (as
                // llama.cpp does, for one token and for prompts), which costs about 1e-5 of NMSE;
                // ggml allows 5e-4.
                let tolerance = type.blockSize > 1 ? 2e-4 : 1e-9
                return ConformanceCase(name: "matmul \(type) n=\(n) k=\(k) m=\(m)", tolerance: tolerance) { b in
                    var r = Inputs(seed: UInt64(n * 1000 + m) &+ UInt64(type.rawValue))
                    let box = ByteBox(r.weightBytes(type, rows: m, k: k))
                    let x = try tensor(b, [n, k], r.floats(n * k))
                    let w = try b.makeWeight(type: type, shape: [m, k], bytes: UnsafeRawBufferPointer(box.bytes))
                    let y = try b.makeTensor(shape: [n, m])
                    b.matmul(x, weight: w, into: y)
                    let out = try b.read(y)
                    withExtendedLifetime(box) {}
                    return out
                }
            }
        } + [1, 3].map { n in
            // one input through weights of different formats and heights (Q/K/V, gate/up)
            ConformanceCase(name: "matmul several weights n=\(n)", tolerance: 2e-4) { b in
                var r = Inputs(seed: 51 &+ UInt64(n))
                let k = 256
                let shapes: [(StorageType, Int)] = [(.q5_0, 40), (.q6K, 9), (.q8_0, 33)]
                let boxes = shapes.map { ByteBox(r.weightBytes($0.0, rows: $0.1, k: k)) }
                let x = try tensor(b, [n, k], r.floats(n * k))
                let ws = try zip(shapes, boxes).map { shape, box in
                    try b.makeWeight(type: shape.0, shape: [shape.1, k], bytes: UnsafeRawBufferPointer(box.bytes))
                }
                let ys = try shapes.map { try b.makeTensor(shape: [n, $0.1]) }
                b.matmul(x, weights: ws, into: ys)
                let out = try ys.flatMap { try b.read($0) }
                withExtendedLifetime(boxes) {}
                return out
            }
        } + [ConformanceCase(name: "matmul f32 on row views", tolerance: 2e-4) { b in  // 3 tokens on Q8_0
            var r = Inputs(seed: 7)
            let box = ByteBox(r.weightBytes(.q8_0, rows: 40, k: 64))
            let x = try tensor(b, [6, 64], r.floats(6 * 64))
            let w = try b.makeWeight(type: .q8_0, shape: [40, 64], bytes: UnsafeRawBufferPointer(box.bytes))
            let y = try b.makeTensor(shape: [6, 40])
            b.matmul(x.rows(2..<5), weight: w, into: y.rows(1..<4))
            let out = try b.read(y)
            withExtendedLifetime(box) {}
            return out
        }]
    }

    static var getRowsCases: [ConformanceCase] {
        StorageType.allCases.map { type in
            ConformanceCase(name: "getRows \(type)", tolerance: 0) { b in
                let k = inner(type)
                var r = Inputs(seed: 11 &+ UInt64(type.rawValue))
                let box = ByteBox(r.weightBytes(type, rows: 9, k: k))
                let table = try b.makeWeight(type: type, shape: [9, k], bytes: UnsafeRawBufferPointer(box.bytes))
                let out = try b.makeTensor(shape: [4, k])
                b.getRows(table, ids: [8, 0, 3, 3], into: out)
                let result = try b.read(out)
                withExtendedLifetime(box) {}
                return result
            }
        }
    }

    static var elementwiseCases: [ConformanceCase] {
        var cases: [ConformanceCase] = []
        for (rows, width) in [(1, 45), (5, 576), (3, 17)] {
            cases.append(ConformanceCase(name: "add \(rows)x\(width)", tolerance: 1e-14) { b in
                var r = Inputs(seed: 21)
                let a = try tensor(b, [rows, width], r.floats(rows * width))
                let c = try tensor(b, [rows, width], r.floats(rows * width))
                b.add(a, c, into: a)
                return try b.read(a)
            })
            cases.append(ConformanceCase(name: "add bias \(rows)x\(width)", tolerance: 1e-14) { b in
                var r = Inputs(seed: 22)
                let a = try tensor(b, [rows, width], r.floats(rows * width))
                let bias = try tensor(b, [1, width], r.floats(width))
                let out = try b.makeTensor(shape: [rows, width])
                b.add(a, bias, into: out)
                return try b.read(out)
            })
            cases.append(ConformanceCase(name: "rmsNorm \(rows)x\(width)", tolerance: 1e-11) { b in
                var r = Inputs(seed: 23)
                let x = try tensor(b, [rows, width], r.floats(rows * width, scale: 3))
                let w = try tensor(b, [1, width], r.floats(width))
                let out = try b.makeTensor(shape: [rows, width])
                b.rmsNorm(x, weight: w, epsilon: 1e-5, into: out)
                return try b.read(out)
            })
            cases.append(ConformanceCase(name: "swiglu \(rows)x\(width)", tolerance: 1e-11) { b in
                var r = Inputs(seed: 24)
                let g = try tensor(b, [rows, width], r.floats(rows * width, scale: 8))
                let u = try tensor(b, [rows, width], r.floats(rows * width))
                b.swiglu(gate: g, up: u, into: g)
                return try b.read(g)
            })
            cases.append(ConformanceCase(name: "geglu \(rows)x\(width)", tolerance: 1e-11) { b in
                var r = Inputs(seed: 26)
                let g = try tensor(b, [rows, width], r.floats(rows * width, scale: 8))
                let u = try tensor(b, [rows, width], r.floats(rows * width))
                b.geglu(gate: g, up: u, into: g)
                return try b.read(g)
            })
            cases.append(ConformanceCase(name: "scale \(rows)x\(width)", tolerance: 1e-14) { b in
                var r = Inputs(seed: 27)
                let x = try tensor(b, [rows, width], r.floats(rows * width, scale: 3))
                let out = try b.makeTensor(shape: [rows, width])
                b.scale(x, by: 25.298_221, into: out)
                return try b.read(out)
            })
            cases.append(ConformanceCase(name: "softcap \(rows)x\(width)", tolerance: 1e-11) { b in
                var r = Inputs(seed: 28)
                // beyond the cap on both sides, and near 0
                let x = try tensor(b, [rows, width], r.floats(rows * width, scale: 90))
                b.softcap(x, cap: 30, into: x)
                return try b.read(x)
            })
            cases.append(ConformanceCase(name: "rmsNorm per head \(rows)x\(width)", tolerance: 1e-11) { b in
                // Q/K norms (qwen3, gemma3): the heads of each row as rows of their own
                var r = Inputs(seed: 29)
                let x = try tensor(b, [rows + 2, 4 * width], r.floats((rows + 2) * 4 * width, scale: 3))
                let w = try tensor(b, [1, width], r.floats(width))
                let heads = x.rows(1..<rows + 1).reshaped(rowLength: width)
                b.rmsNorm(heads, weight: w, epsilon: 1e-6, into: heads)
                return try b.read(x)
            })
            cases.append(ConformanceCase(name: "copyRows \(rows)x\(width)", tolerance: 0) { b in
                var r = Inputs(seed: 25)
                let src = try tensor(b, [rows, width], r.floats(rows * width))
                let dst = try tensor(b, [rows + 7, width], r.floats((rows + 7) * width))
                b.copyRows(src, into: dst, atRow: 4)
                return try b.read(dst)
            })
        }
        return cases
    }

    static var ropeCases: [ConformanceCase] {
        RoPELayout.allCases.flatMap { layout in
            [(1, 64, 64, 0), (5, 64, 64, 17), (3, 64, 32, 1000), (2, 128, 128, 30000)].map { n, headDim, ropeDim, start in
                ConformanceCase(name: "rope \(layout) n=\(n) head=\(headDim) rot=\(ropeDim) at \(start)", tolerance: 1e-10) { b in
                    var r = Inputs(seed: 31)
                    let width = 3 * headDim
                    let x = try tensor(b, [n, width], r.floats(n * width))
                    b.rope(x, headDim: headDim, ropeDim: ropeDim, startPosition: start, freqBase: 10_000, layout: layout)
                    return try b.read(x)
                }
            }
        } + RoPELayout.allCases.flatMap { layout in
            // frequency factors (Llama 3, Phi-3 long-RoPE), linear position scaling, a magnitude
            [(4, 64, 64, 5), (3, 96, 64, 2000)].map { n, headDim, ropeDim, start in
                ConformanceCase(name: "rope scaled \(layout) n=\(n) head=\(headDim) rot=\(ropeDim) at \(start)", tolerance: 1e-10) { b in
                    var r = Inputs(seed: 32)
                    let width = 2 * headDim
                    let x = try tensor(b, [n, width], r.floats(n * width))
                    let factors = (0..<ropeDim / 2).map { 1 + Float($0 % 7) * 1.5 }
                    let scaling = RoPEScaling(positionScale: 0.125, magnitude: 1.19, frequencyFactors: factors)
                    b.rope(x, headDim: headDim, ropeDim: ropeDim, startPosition: start, freqBase: 1e6, layout: layout,
                           scaling: scaling)
                    return try b.read(x)
                }
            }
        }
    }

    static var attentionCases: [ConformanceCase] {
        var cases: [ConformanceCase] = []
        for (heads, kvHeads) in [(2, 2), (3, 1), (14, 2)] {  // GQA ratios 1, 3, 7
            for (n, start, headDim) in [(1, 0, 64), (1, 40, 64), (5, 0, 64), (6, 11, 16), (9, 3, 24)] {
                let name = "attention heads=\(heads)/\(kvHeads) n=\(n) start=\(start) dim=\(headDim)"
                cases.append(ConformanceCase(name: name, tolerance: 1e-10) { b in
                    var r = Inputs(seed: UInt64(heads * 100 + n * 10 + start))
                    let ctx = start + n + 5
                    let q = try tensor(b, [n, heads * headDim], r.floats(n * heads * headDim, scale: 2))
                    let k = try tensor(b, [ctx, kvHeads * headDim], r.floats(ctx * kvHeads * headDim, scale: 2))
                    let v = try tensor(b, [ctx, kvHeads * headDim], r.floats(ctx * kvHeads * headDim))
                    let out = try b.makeTensor(shape: [n, heads * headDim])
                    b.attention(q: q, keys: k, values: v, headCount: heads, headCountKV: kvHeads, startPosition: start,
                                scale: 1 / Float(headDim).squareRoot(), into: out)
                    return try b.read(out)
                })
            }
        }
        // sliding windows (shorter and longer than the rows, one position) and soft-capped scores
        for (window, softcap) in [(4, Float(0)), (1, 0), (40, 0), (0, 50), (6, 20)] {
            for (heads, kvHeads, n, start, headDim) in [(4, 2, 1, 30, 64), (4, 2, 9, 3, 32), (3, 1, 20, 0, 24), (2, 1, 3, 70, 256)] {
                let name = "attention window=\(window) softcap=\(softcap) heads=\(heads)/\(kvHeads) n=\(n) start=\(start) dim=\(headDim)"
                cases.append(ConformanceCase(name: name, tolerance: 1e-10) { b in
                    var r = Inputs(seed: UInt64(window * 1000 + n * 10 + start))
                    let ctx = start + n + 3
                    let q = try tensor(b, [n, heads * headDim], r.floats(n * heads * headDim, scale: 3))
                    let k = try tensor(b, [ctx, kvHeads * headDim], r.floats(ctx * kvHeads * headDim, scale: 3))
                    let v = try tensor(b, [ctx, kvHeads * headDim], r.floats(ctx * kvHeads * headDim))
                    let out = try b.makeTensor(shape: [n, heads * headDim])
                    b.attention(q: q, keys: k, values: v, headCount: heads, headCountKV: kvHeads, startPosition: start,
                                scale: 1 / Float(headDim).squareRoot(), mask: AttentionMask(window: window, softcap: softcap),
                                into: out)
                    return try b.read(out)
                })
            }
        }
        return cases
    }

    static var softmaxCases: [ConformanceCase] {
        [(1, 17), (3, 1000), (2, 49152)].flatMap { rows, width in
            [
                ConformanceCase(name: "softmax \(rows)x\(width)", tolerance: 1e-11) { b in
                    var r = Inputs(seed: 41)
                    let x = try tensor(b, [rows, width], r.floats(rows * width, scale: 20))
                    b.softmax(x, into: x)
                    return try b.read(x)
                },
                ConformanceCase(name: "logSoftmax \(rows)x\(width)", tolerance: 1e-11) { b in
                    var r = Inputs(seed: 42)
                    let x = try tensor(b, [rows, width], r.floats(rows * width, scale: 20))
                    let out = try b.makeTensor(shape: [rows, width])
                    b.logSoftmax(x, into: out)
                    return try b.read(out)
                },
            ]
        }
    }
}
