import ThemisBackend

/// A decoder-only transformer, as a sequence of backend ops.
///
/// Reads like llama2.c's `forward`: embedding; each block as its architecture defines it (see
/// `DecoderArchitecture` and `Decoder`); final norm; classifier on the rows asked for. Scratch is allocated
/// once for `maxBatch` rows.
public final class Transformer: @unchecked Sendable {
    // Used by one task at a time (the backend contract); scratch tensors are reused per call.
    public let config: ModelConfig
    public let backend: any Backend
    /// The architecture's weights, blocks and attention layouts.
    public let architecture: Decoder
    /// Most tokens per forward call; longer inputs are split by `forward`.
    public let maxBatch: Int
    /// Most rows of logits per forward call.
    public let maxLogitRows: Int

    private let x: Tensor       // [maxBatch, dim] residual stream
    private let h: Tensor       // [maxBatch, dim] normed input
    private let q: Tensor       // [maxBatch, qWidth]
    private let k: Tensor       // [maxBatch, kvWidth]
    private let v: Tensor       // [maxBatch, kvWidth]
    private let attn: Tensor    // [maxBatch, qWidth]
    private let proj: Tensor    // [maxBatch, dim]
    private let gate: Tensor    // [maxBatch, ffn]
    private let up: Tensor      // [maxBatch, ffn]
    private let logits: Tensor  // [maxLogitRows, vocab]
    private let lora: LoRAScratch?

    /// Loads the weights of `file` onto `backend` for a context of `contextLength` tokens (which
    /// some architectures' RoPE depends on; default: the file's training context), with `adapter`
    /// applied on the fly when given.
    public init(file: GGUFFile, backend: any Backend, contextLength: Int? = nil, maxBatch: Int = 512,
                maxLogitRows: Int = 64, adapter: LoRAAdapter? = nil) throws {
        let c = try ModelConfig(file: file)
        config = c
        self.backend = backend
        self.maxBatch = maxBatch
        self.maxLogitRows = maxLogitRows
        architecture = try Architectures.load(file: file, config: c, backend: backend,
                                              contextLength: contextLength ?? c.contextLength)
        x = try backend.makeTensor(shape: [maxBatch, c.embeddingLength])
        h = try backend.makeTensor(shape: [maxBatch, c.embeddingLength])
        q = try backend.makeTensor(shape: [maxBatch, c.qWidth])
        k = try backend.makeTensor(shape: [maxBatch, c.kvWidth])
        v = try backend.makeTensor(shape: [maxBatch, c.kvWidth])
        attn = try backend.makeTensor(shape: [maxBatch, c.qWidth])
        proj = try backend.makeTensor(shape: [maxBatch, c.embeddingLength])
        gate = try backend.makeTensor(shape: [maxBatch, c.feedForwardLength])
        up = try backend.makeTensor(shape: [maxBatch, c.feedForwardLength])
        logits = try backend.makeTensor(shape: [maxLogitRows, c.vocabularySize])
        if let adapter {
            precondition(adapter.blocks.count == c.blockCount, "adapter of \(adapter.blocks.count) blocks")
            let widest = [c.qWidth, c.kvWidth, c.embeddingLength, c.feedForwardLength].max()!
            lora = LoRAScratch(adapter: adapter, mid: try backend.makeTensor(shape: [maxBatch, max(1, adapter.maxRank)]),
                               out: try backend.makeTensor(shape: [maxBatch, widest]))
        } else {
            lora = nil
        }
    }

    /// Runs `tokens` at positions `startPosition...` through the model, writing their keys and
    /// values into `cache`, and returns the logits of the rows `outputs` (indices into `tokens`)
    /// as `[outputs.count, vocab]` floats, row-major. Blocks until done; throws the backend's
    /// `deviceFailed` when the device failed on the way.
    ///
    /// Precondition: `startPosition + tokens.count <= cache.contextLength`,
    /// `outputs.count <= maxLogitRows`.
    public func forward(_ tokens: [Int32], startPosition: Int, cache: KVCache, outputs: Range<Int>) throws -> [Float] {
        precondition(startPosition + tokens.count <= cache.contextLength, "context overflow")
        precondition(outputs.count <= maxLogitRows && outputs.lowerBound >= 0 && outputs.upperBound <= tokens.count)
        var result: [Float] = []
        var begin = 0
        while begin < tokens.count {
            let end = min(tokens.count, begin + maxBatch)
            // the asked-for rows that fall in this chunk (none when they lie in another)
            let lo = max(outputs.lowerBound, begin), hi = min(outputs.upperBound, end)
            let local = lo < hi ? (lo - begin)..<(hi - begin) : 0..<0
            step(Array(tokens[begin..<end]), startPosition: startPosition + begin, cache: cache, outputs: local)
            if !local.isEmpty {
                // the common case (one chunk) hands the read array over without another copy
                let rows = try backend.read(logits.rows(0..<local.count))
                if result.isEmpty { result = rows } else { result += rows }
            }
            begin = end
        }
        try backend.synchronize()
        return result
    }

    /// Several sequences in one pass: their tokens share every matmul, norm and activation;
    /// RoPE, the cache write and attention run per sequence on its rows. Returns, per sequence,
    /// the logits after its last token (`[vocab]`), in order.
    ///
    /// Precondition: the tokens of all sequences fit in `maxBatch`, there are at most
    /// `maxLogitRows` sequences, none is empty, and each fits its cache.
    public func forward(sequences: [(tokens: [Int32], startPosition: Int, cache: KVCache)]) throws -> [[Float]] {
        let total = sequences.reduce(0) { $0 + $1.tokens.count }
        precondition(total <= maxBatch && sequences.count <= maxLogitRows, "batch of \(total) tokens in \(sequences.count) sequences")
        var ranges: [Range<Int>] = []
        for s in sequences {
            precondition(!s.tokens.isEmpty && s.startPosition + s.tokens.count <= s.cache.contextLength, "context overflow")
            let start = ranges.last?.upperBound ?? 0
            ranges.append(start..<start + s.tokens.count)
        }
        let c = config, b = backend
        layers(sequences.flatMap(\.tokens), segments: zip(sequences, ranges).map { ($1, $0.startPosition, $0.cache) })
        // the last row of each sequence, normed into consecutive rows, then one classifier matmul
        let head = architecture.head
        for (i, r) in ranges.enumerated() {
            b.rmsNorm(x.rows(r.upperBound - 1..<r.upperBound), weight: head.norm, epsilon: c.rmsEpsilon,
                      into: h.rows(i..<i + 1))
        }
        let m = sequences.count
        classify(h.rows(0..<m), into: logits.rows(0..<m))
        let all = try b.read(logits.rows(0..<m))
        let vocab = c.vocabularySize
        return (0..<m).map { Array(all[$0 * vocab..<($0 + 1) * vocab]) }
    }

    /// One batch of at most `maxBatch` tokens of one sequence, then the logits of `outputs`.
    private func step(_ tokens: [Int32], startPosition pos: Int, cache: KVCache, outputs: Range<Int>) {
        layers(tokens, segments: [(0..<tokens.count, pos, cache)])
        guard !outputs.isEmpty else { return }
        // final norm and classifier, only for the rows asked for
        let normed = h.rows(0..<outputs.count)
        backend.rmsNorm(x.rows(outputs), weight: architecture.head.norm, epsilon: config.rmsEpsilon, into: normed)
        classify(normed, into: logits.rows(0..<outputs.count))
    }

    /// The classifier on normed rows, soft-capped where the architecture says so.
    private func classify(_ normed: Tensor, into out: Tensor) {
        let head = architecture.head
        backend.matmul(normed, weight: head.weight, into: out)
        if let cap = head.softcap { backend.softcap(out, cap: cap, into: out) }
    }

    /// Embedding and every block for `tokens` (at most `maxBatch`), leaving the residual stream in
    /// `x`. The rows are split into `segments`, one per sequence, each at its own positions and
    /// with its own cache: matmuls, norms and activations run on all rows at once; RoPE, the
    /// cache write and attention per segment.
    private func layers(_ tokens: [Int32], segments: [(rows: Range<Int>, startPosition: Int, cache: KVCache)]) {
        let n = tokens.count
        let pass = ForwardPass(
            backend: backend, config: config, x: x.rows(0..<n), h: h.rows(0..<n), q: q.rows(0..<n), k: k.rows(0..<n),
            v: v.rows(0..<n), attn: attn.rows(0..<n), proj: proj.rows(0..<n), gate: gate.rows(0..<n),
            up: up.rows(0..<n), segments: segments, lora: lora)
        let embedding = architecture.embedding
        backend.getRows(embedding.table, ids: tokens, into: pass.x)
        if let factor = embedding.scale { backend.scale(pass.x, by: factor, into: pass.x) }
        for layer in 0..<config.blockCount {
            architecture.block(layer, pass)
        }
    }
}
