#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Where RoPE pairs its rotated elements within a head.
public enum RoPELayout: String, Sendable, CaseIterable {
    /// Element `2i` rotates with `2i+1` (GGUF llama: Q/K weights are permuted for this).
    case adjacentPairs
    /// Element `i` rotates with `i + ropeDim/2` (GPT-NeoX, qwen2).
    case halfSplit
}

/// How RoPE's angles and magnitudes are scaled beyond the plain `position · base^(-2j/ropeDim)`:
/// Llama 3's and Phi-3's per-pair frequency factors, linear position scaling (Gemma 3's global
/// layers), long-RoPE's magnitude correction. `.none` leaves RoPE plain.
public struct RoPEScaling: Sendable, Equatable {
    /// Positions are multiplied by this (linear scaling by a factor f is `1 / f`).
    public var positionScale: Float
    /// Cosine and sine are multiplied by this (Phi-3 long-RoPE's attention factor).
    public var magnitude: Float
    /// Pair `j`'s angle is divided by `frequencyFactors[j]` (`ropeDim / 2` of them) when present.
    public var frequencyFactors: [Float]?

    public init(positionScale: Float = 1, magnitude: Float = 1, frequencyFactors: [Float]? = nil) {
        self.positionScale = positionScale
        self.magnitude = magnitude
        self.frequencyFactors = frequencyFactors
    }

    /// Plain RoPE.
    public static let none = RoPEScaling()

    /// The angle per position of each pair `j` (of `ropeDim / 2`): pair `j` at position `p` turns
    /// by `p * frequencies[j]`. In double: positions reach tens of thousands of radians, where a
    /// float angle would lose the digits the sine depends on.
    public func frequencies(ropeDim: Int, freqBase: Float) -> [Double] {
        (0..<ropeDim / 2).map { j in
            var f = Double(positionScale) * pow(Double(freqBase), -2 * Double(j) / Double(ropeDim))
            if let factors = frequencyFactors { f /= Double(factors[j]) }
            return f
        }
    }
}

/// Which positions a query row may attend to beyond causality, and how scores are bounded.
public struct AttentionMask: Sendable, Equatable {
    /// When above 0, a query at position `P` sees only keys at `P - window + 1 ... P` (sliding
    /// window attention: Mistral, Gemma's local layers).
    public var window: Int
    /// When above 0, scores become `softcap · tanh(score / softcap)` before the softmax (Gemma 2).
    public var softcap: Float

    public init(window: Int = 0, softcap: Float = 0) {
        self.window = window
        self.softcap = softcap
    }

    /// Plain causal attention.
    public static let causal = AttentionMask()

    /// The first position a query at `position` sees.
    @inlinable public func firstVisible(from position: Int) -> Int {
        window > 0 ? max(0, position - window + 1) : 0
    }
}

/// A compute device that runs the ops of a transformer forward pass.
///
/// Contract:
/// - Ops are recorded in call order and may run later; `read(_:)` and `synchronize()` block until
///   every op recorded before them is done, so results are visible. An eager backend may run each
///   op at once.
/// - Activations are `f32`. Weights keep their GGUF storage type and are never dequantised as a
///   whole; `supports(_:)` tells which types `matmul` and `getRows` accept.
/// - Shapes: activations `[n, width]`; a weight `[m, k]` has `m` output rows of `k` inputs.
///   An op's output must not alias its inputs unless the op says it works in place.
/// - A backend is used from one task at a time; it need not be re-entrant.
/// - Ops do not throw: a device failure while recording or running them (a lost device,
///   exhausted memory) is kept and thrown by the next `read` or `synchronize`, so a caller learns
///   of it before using any result.
public protocol Backend: AnyObject, Sendable {
    /// The device this backend runs on.
    var device: DeviceInfo { get }

    /// Whether `matmul` and `getRows` accept weights of this storage type.
    func supports(_ type: StorageType) -> Bool

    /// A weight tensor of GGUF storage `type` whose rows are `bytes` (row-major, `shape[0]` rows).
    /// The backend may use the bytes in place: the caller keeps them alive and unchanged for the
    /// tensor's lifetime (they are usually a memory-mapped model file).
    func makeWeight(type: StorageType, shape: [Int], bytes: UnsafeRawBufferPointer) throws -> Tensor

    /// A zero-filled `f32` tensor.
    func makeTensor(shape: [Int]) throws -> Tensor

    /// Copies `values` (row-major, exactly `tensor.count` of them) into an `f32` tensor.
    func write(_ values: [Float], to tensor: Tensor)

    /// The values of an `f32` tensor; blocks until recorded work is done. Throws
    /// `BackendError.deviceFailed` when the device failed while running it (device lost, memory
    /// exhausted): the backend is then unusable and every later read or synchronize throws too.
    func read(_ tensor: Tensor) throws -> [Float]

    /// `out[i] = dequantise(table[ids[i]])`; `out` is `[ids.count, table.shape[1]]` f32.
    func getRows(_ table: Tensor, ids: [Int32], into out: Tensor)

    /// `y[n, m] = x[n, k] · wᵀ` with `w` `[m, k]` in any supported storage type.
    func matmul(_ x: Tensor, weight w: Tensor, into y: Tensor)

    /// Matmuls of at most this many rows run the decode kernels, whose numbers differ slightly
    /// from those of the larger passes' kernels (another summation order, 8-bit activations on
    /// the CPU): a prompt evaluated in pieces keeps each piece above it (`PromptFill`).
    var decodeKernelRows: Int { get }

    /// `outputs[i] = x · weights[i]ᵀ` for several weights that share one input (Q/K/V, gate/up),
    /// so a backend can prepare `x` once and run them in one dispatch. A default runs `matmul`
    /// for each.
    func matmul(_ x: Tensor, weights: [Tensor], into outputs: [Tensor])

    /// `out = a + b`; `b` has the shape of `a` or is a single row broadcast over `a`'s rows
    /// (a bias). `out` may be `a`.
    func add(_ a: Tensor, _ b: Tensor, into out: Tensor)

    /// Per row: `out = x / sqrt(mean(x²) + epsilon) * weight`. `out` may be `x`.
    func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float, into out: Tensor)

    /// Rotary position embedding, in place, on `x` `[n, heads * headDim]`: row `i` is at position
    /// `startPosition + i`; the first `ropeDim` elements of each head rotate with
    /// `theta_j = position * scaling.frequencies(...)[j]` (plainly `position * freqBase^(-2j/ropeDim)`), and are
    /// multiplied by `scaling.magnitude`.
    func rope(_ x: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float, layout: RoPELayout,
              scaling: RoPEScaling)

    /// `out = silu(gate) * up`, element-wise. `out` may be `gate`.
    func swiglu(gate: Tensor, up: Tensor, into out: Tensor)

    /// `out = gelu(gate) * up` with GELU's tanh approximation
    /// (`0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))`), element-wise (Gemma). `out` may be `gate`.
    func geglu(gate: Tensor, up: Tensor, into out: Tensor)

    /// `out = x * factor`, element-wise (Gemma's embedding scale). `out` may be `x`.
    func scale(_ x: Tensor, by factor: Float, into out: Tensor)

    /// `out = cap * tanh(x / cap)`, element-wise (Gemma 2's final-logit soft-capping). `out` may be `x`.
    func softcap(_ x: Tensor, cap: Float, into out: Tensor)

    /// Copies all rows of `source` into `destination` starting at row `row` (a KV-cache write).
    func copyRows(_ source: Tensor, into destination: Tensor, atRow row: Int)

    /// Causal grouped-query attention over a KV cache.
    ///
    /// `q` is `[n, headCount * headDim]` for positions `startPosition ..< startPosition + n`;
    /// `keys` and `values` are `[contextLength, headCountKV * headDim]` with rows
    /// `0 ..< startPosition + n` written. Query head `h` uses KV head `h / (headCount / headCountKV)`.
    /// Row `i` attends to positions `mask.firstVisible(from: startPosition + i) ... startPosition + i`
    /// with scores `scale * q·k` (soft-capped when `mask.softcap > 0`). `out` is
    /// `[n, headCount * headDim]`.
    func attention(q: Tensor, keys: Tensor, values: Tensor, headCount: Int, headCountKV: Int,
                   startPosition: Int, scale: Float, mask: AttentionMask, into out: Tensor)

    /// Per row: `out = softmax(x)`. `out` may be `x`.
    func softmax(_ x: Tensor, into out: Tensor)

    /// Per row: `out = log(softmax(x))`. `out` may be `x`.
    func logSoftmax(_ x: Tensor, into out: Tensor)

    /// Blocks until every recorded op has finished; throws as `read` does.
    func synchronize() throws
}

extension Backend {
    /// Plain RoPE.
    public func rope(_ x: Tensor, headDim: Int, ropeDim: Int, startPosition: Int, freqBase: Float, layout: RoPELayout) {
        rope(x, headDim: headDim, ropeDim: ropeDim, startPosition: startPosition, freqBase: freqBase, layout: layout,
             scaling: .none)
    }

    /// Plain causal attention.
    public func attention(q: Tensor, keys: Tensor, values: Tensor, headCount: Int, headCountKV: Int,
                          startPosition: Int, scale: Float, into out: Tensor) {
        attention(q: q, keys: keys, values: values, headCount: headCount, headCountKV: headCountKV,
                  startPosition: startPosition, scale: scale, mask: .causal, into: out)
    }

    /// One row (a single token) unless a backend says otherwise.
    public var decodeKernelRows: Int { 1 }

    public func matmul(_ x: Tensor, weights: [Tensor], into outputs: [Tensor]) {
        precondition(weights.count == outputs.count, "matmul: \(weights.count) weights, \(outputs.count) outputs")
        for (w, y) in zip(weights, outputs) { matmul(x, weight: w, into: y) }
    }
}

/// One backend technology (CPU, Vulkan, ...): lists its devices and opens backends on them.
public protocol BackendProvider: Sendable {
    /// The device-name prefix on the command line (`cpu`, `vulkan`).
    var name: String { get }
    /// The devices this provider can use now; empty when its driver or loader is missing.
    /// `diagnostic` explains an empty list (for the fall-back message).
    func devices() -> (devices: [DeviceInfo], diagnostic: String?)
    /// Opens a backend on one of this provider's devices.
    func makeBackend(on device: DeviceInfo) throws -> any Backend
}
