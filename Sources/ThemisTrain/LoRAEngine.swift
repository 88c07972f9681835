import ThemisBackend
import ThemisModel

/// A token sequence to train on: the rows whose next token is trained, each with its weight
/// (the paper's objective: score tokens and explanation tokens weighted apart; the prompt is not
/// trained).
public struct TokenizedSample: Sendable, Codable, Equatable {
    public struct Target: Sendable, Codable, Equatable {
        /// Row `row` predicts `tokens[row + 1]`.
        public var row: Int
        public var weight: Float
        public init(row: Int, weight: Float) {
            self.row = row
            self.weight = weight
        }
    }
    public var id: String
    public var tokens: [Int32]
    public var targets: [Target]

    public init(id: String, tokens: [Int32], targets: [Target]) {
        self.id = id
        self.tokens = tokens
        self.targets = targets
    }

    /// The pair the sample belongs to: its id up to a `#` (`distill import` names a pair's two
    /// orders `<pair>#ab` and `<pair>#ba`).
    public var pair: Substring { id.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? Substring(id) }

    /// The sum of the targets' weights.
    public var totalWeight: Double { targets.reduce(0) { $0 + Double($1.weight) } }
}

/// The forward and backward passes of a decoder with a trainable LoRA adapter, written against
/// `TrainingBackend` alone. Per sequence: the forward pass keeps each block's input (and, unless
/// recomputing, its activations); the loss rows go through the head in chunks; then each block,
/// last first, is differentiated, after running it forward again from its input when recomputing
/// (which bounds memory by one block's activations, for a third more compute). The base weights
/// stay frozen: gradients reach only the adapter's `A` and `B`.
///
/// Sequences that begin with the same tokens (judge prompts share their long instructions; the
/// two orders of a pair share its conversation too) run over a tree of shared beginnings
/// (`PrefixNode`): a node's rows run forward once, the rows after them (deeper nodes, each
/// sequence's own) attend to their keys and values, the gradients those rows send to the keys and
/// values are summed per block, and the node's rows run backward once with them. The gradient is
/// the one of running every sequence whole (up to the order of float additions).
public final class LoRAEngine {
    public let config: ModelConfig
    public let backend: any TrainingBackend
    public let lora: TrainableLoRA
    /// Longest sequence a pass takes.
    public let maxTokens: Int
    private let decoder: Decoder

    // the input of every block, and the last block's output
    private let inputs: [Tensor]
    private let final: Tensor
    // every block's keys (after RoPE) and values, kept in both modes: a shared node's are read
    // by every row that runs after it
    private let keys, values: [Tensor]
    // per block, the gradients that rows send to the keys and values of shared rows before them
    private let keyGradientSums, valueGradientSums: [Tensor]
    /// Whether blocks run forward again in the backward pass (one set of activations) rather than
    /// keep their activations (one set per block).
    public let recomputes: Bool
    private let activations: [BlockActivations]
    private let proj: Tensor
    // one block's gradients
    private let dx, dh, dq, dk, dv, dattn, dgate, dup, dact: Tensor
    // the adapter's scratch
    private let mid, dmid, delta, dropped: Tensor
    // the head, `headRows` rows at a time
    private static let headRows = 64
    private let headIn, logits, dHead, losses: Tensor

    /// The activations of one block that its backward pass reads (besides keys and values).
    struct BlockActivations {
        let h1, q, attn, x2, h2, gate, up, act: Tensor

        init(_ backend: any Backend, _ c: ModelConfig, rows n: Int) throws {
            func make(_ width: Int) throws -> Tensor { try backend.makeTensor(shape: [n, width]) }
            let d = c.embeddingLength, f = c.feedForwardLength
            (h1, q, attn) = (try make(d), try make(c.qWidth), try make(c.qWidth))
            (x2, h2, gate, up, act) = (try make(d), try make(d), try make(f), try make(f), try make(f))
        }

        /// Bytes of one block's activations per token, keys and values included.
        static func bytesPerToken(_ c: ModelConfig) -> Int {
            4 * (3 * c.embeddingLength + 2 * c.qWidth + 2 * c.kvWidth + 3 * c.feedForwardLength)
        }

        func rows(_ r: Range<Int>) -> BlockActivations { BlockActivations(self, rows: r) }

        private init(_ a: BlockActivations, rows r: Range<Int>) {
            (h1, q, attn) = (a.h1.rows(r), a.q.rows(r), a.attn.rows(r))
            (x2, h2, gate, up, act) = (a.x2.rows(r), a.h2.rows(r), a.gate.rows(r), a.up.rows(r), a.act.rows(r))
        }
    }

    /// Bytes the per-block activations of sequences of `tokens` take when kept (not recomputed).
    public static func keptActivationBytes(config c: ModelConfig, tokens: Int) -> Int {
        BlockActivations.bytesPerToken(c) * tokens * c.blockCount
    }

    /// An engine over `model`'s decoder on its backend (which must run the backward ops);
    /// `recompute` trades a third more compute for one block's activations instead of all.
    public init(model: LanguageModel, lora: TrainableLoRA, maxTokens: Int, recompute: Bool = true) throws {
        guard let backend = model.backend as? any TrainingBackend else {
            throw TrainError.unsupported("the \(model.backend.device.name) backend has no backward ops")
        }
        let c = model.config
        let decoder = model.transformer.architecture
        try Self.checkTrainable(decoder, config: c)
        guard maxTokens >= 2 else { throw TrainError.settings("sequences of at least 2 tokens") }
        self.config = c
        self.backend = backend
        self.lora = lora
        self.maxTokens = maxTokens
        self.decoder = decoder
        let n = maxTokens, d = c.embeddingLength, f = c.feedForwardLength
        func make(_ width: Int, rows: Int = n) throws -> Tensor { try backend.makeTensor(shape: [rows, width]) }
        func perBlock(_ width: Int) throws -> [Tensor] { try (0..<c.blockCount).map { _ in try make(width) } }
        inputs = try perBlock(d)
        final = try make(d)
        (keys, values) = (try perBlock(c.kvWidth), try perBlock(c.kvWidth))
        (keyGradientSums, valueGradientSums) = (try perBlock(c.kvWidth), try perBlock(c.kvWidth))
        recomputes = recompute
        activations = try (0..<(recompute ? 1 : c.blockCount)).map { _ in try BlockActivations(backend, c, rows: n) }
        proj = try make(d)
        (dx, dh, dq, dk, dv, dattn) = (try make(d), try make(d), try make(c.qWidth), try make(c.kvWidth), try make(c.kvWidth),
                                       try make(c.qWidth))
        (dgate, dup, dact) = (try make(f), try make(f), try make(f))
        let rank = lora.settings.rank, widest = max(c.qWidth, c.kvWidth, d, f)
        (mid, dmid, delta, dropped) = (try make(rank), try make(rank), try make(widest), try make(widest))
        let r = Self.headRows
        (headIn, logits, dHead, losses) = (try make(d, rows: r), try make(c.vocabularySize, rows: r), try make(d, rows: r),
                                           try make(1, rows: r))
    }

    /// Refuses the block kinds whose backward ops this version lacks (they would train wrongly).
    static func checkTrainable(_ decoder: Decoder, config c: ModelConfig) throws {
        let name = c.architecture
        if decoder.embedding.scale != nil || decoder.head.softcap != nil {
            throw TrainError.unsupported("\(name): embedding scaling and logit soft-capping have no backward ops here")
        }
        for (i, block) in decoder.blocks.enumerated() {
            if block.postAttentionNorm != nil || block.postFeedForwardNorm != nil || block.attention.qNorm != nil
                || block.feedForward.activation != .silu || decoder.layouts[i].mask.softcap != 0 {
                throw TrainError.unsupported("\(name) block \(i): post-norms, per-head norms, GELU and soft-capping have no backward ops here (llama, mistral and qwen2 models train)")
            }
        }
    }

    /// Runs `sample` forward and returns its summed weighted cross-entropy; with `backward`, adds
    /// `lossFactor` times its gradient to the adapter's gradients. `dropoutSeed` draws the
    /// adapter's dropout masks (none without `backward`).
    public func run(_ sample: TokenizedSample, lossFactor: Float, backward: Bool, dropoutSeed: UInt64) throws -> Double {
        try run([sample], plan: .flat(1), lossFactor: lossFactor, backward: backward, dropoutSeeds: [dropoutSeed])[0]
    }

    /// Runs `samples` over `plan` (each node's shared rows once; see the type's note) and returns
    /// each one's summed weighted cross-entropy; with `backward`, adds `lossFactor` times their
    /// gradient to the adapter's. `dropoutSeeds[i]` draws the masks of sample `i`'s own rows; a
    /// node's come from the seed of its first sample and its end.
    public func run(_ samples: [TokenizedSample], plan: PrefixNode, lossFactor: Float, backward: Bool,
                    dropoutSeeds: [UInt64]) throws -> [Double] {
        guard dropoutSeeds.count == samples.count, !samples.isEmpty else {
            throw TrainError.settings("a batch of \(samples.count) samples with \(dropoutSeeds.count) dropout seeds")
        }
        guard plan.end == 0, plan.samples.sorted() == Array(samples.indices) else {
            throw TrainError.settings("a plan that does not run each of the \(samples.count) samples once from its start")
        }
        for sample in samples {
            let n = sample.tokens.count
            guard n >= 2 && n <= maxTokens else {
                throw TrainError.data("sample \(sample.id): \(n) tokens, this engine takes 2...\(maxTokens)")
            }
            guard sample.targets.allSatisfy({ $0.row < n - 1 }) else {
                throw TrainError.data("sample \(sample.id): a target row outside the sequence")
            }
        }
        try check(plan, samples)
        var pass = Pass(samples: samples, lossFactor: lossFactor, backward: backward, seeds: dropoutSeeds,
                        dropout: backward ? lora.settings.dropout : 0, losses: samples.map { _ in 0 })
        try run(plan, from: 0, &pass)
        try backend.synchronize()
        return pass.losses
    }

    /// Refuses a plan whose node is longer than a sample below it, holds one of its trained rows,
    /// or covers tokens the samples below it do not share.
    private func check(_ node: PrefixNode, _ samples: [TokenizedSample], start: Int = 0) throws {
        guard node.end >= start else { throw TrainError.settings("a plan node ends at \(node.end), before its parent's \(start)") }
        let below = node.samples
        guard let first = below.first else { return }
        for i in below {
            let s = samples[i]
            guard node.end < s.tokens.count, s.targets.allSatisfy({ $0.row >= node.end }) else {
                throw TrainError.data("sample \(s.id): a target row inside the shared prefix of \(node.end), or no row after it")
            }
            guard s.tokens[start..<node.end] == samples[first].tokens[start..<node.end] else {
                throw TrainError.data("sample \(s.id) does not begin with its group's \(node.end) shared tokens")
            }
        }
        for case .node(let child) in node.items { try check(child, samples, start: node.end) }
    }

    /// What a pass over a batch carries from node to node.
    private struct Pass {
        let samples: [TokenizedSample]
        let lossFactor: Float
        let backward: Bool
        let seeds: [UInt64]
        let dropout: Float
        var losses: [Double]
    }

    /// `node`'s rows (`start..<node.end`) forward, its items, then its rows backward with the key
    /// and value gradients its items sent them.
    private func run(_ node: PrefixNode, from start: Int, _ pass: inout Pass) throws {
        let rows = start..<node.end, c = config
        guard let first = node.samples.first else { return }
        let seed = pass.seeds[first] ^ (0x9E37_79B9_7F4A_7C15 &* UInt64(node.end + 1))
        if !rows.isEmpty {
            forward(pass.samples[first].tokens, rows: rows, dropout: pass.dropout, seed: seed)
            if pass.backward {
                for l in 0..<c.blockCount { zero(keyGradientSums[l].rows(rows)); zero(valueGradientSums[l].rows(rows)) }
            }
        }
        for item in node.items {
            switch item {
            case .node(let child): try run(child, from: node.end, &pass)
            case .sample(let i):
                let sample = pass.samples[i], own = node.end..<sample.tokens.count
                forward(sample.tokens, rows: own, dropout: pass.dropout, seed: pass.seeds[i])
                if pass.backward { zero(dx.rows(own)) }
                pass.losses[i] = try head(sample, lossFactor: pass.lossFactor, backward: pass.backward)
                guard pass.backward else { continue }
                for l in stride(from: c.blockCount - 1, through: 0, by: -1) {
                    blockBackward(l, rows: own, receives: false, dropout: pass.dropout, seed: pass.seeds[i])
                }
            }
        }
        if pass.backward && !rows.isEmpty {
            // no loss on a node's rows: only the key and value gradients of the rows after reach it
            zero(dx.rows(rows))
            for l in stride(from: c.blockCount - 1, through: 0, by: -1) {
                blockBackward(l, rows: rows, receives: true, dropout: pass.dropout, seed: seed)
            }
        }
    }

    private func zero(_ t: Tensor) { backend.write([Float](repeating: 0, count: t.count), to: t) }

    // MARK: forward

    /// Rows `rows` of `tokens` through every block (rows before them already ran: their keys and
    /// values are in place).
    private func forward(_ tokens: [Int32], rows: Range<Int>, dropout: Float, seed: UInt64) {
        backend.getRows(decoder.embedding.table, ids: Array(tokens[rows]), into: inputs[0].rows(rows))
        for l in 0..<config.blockCount {
            let out = l + 1 < config.blockCount ? inputs[l + 1] : final
            block(l, rows: rows, output: out.rows(rows), dropout: dropout, seed: seed)
        }
    }

    /// Block `l`'s activations of rows `rows` (of their only set when recomputing).
    private func saved(_ l: Int, rows: Range<Int>) -> BlockActivations { activations[recomputes ? 0 : l].rows(rows) }

    /// Block `l` on rows `rows` of its input into `output`, leaving its activations in its set;
    /// the rows attend to every row before them.
    private func block(_ l: Int, rows: Range<Int>, output: Tensor, dropout: Float, seed: UInt64) {
        let b = backend, c = config, n = rows.count, start = rows.lowerBound
        let w = decoder.blocks[l], a = decoder.layouts[l]
        let x = inputs[l].rows(rows), s = saved(l, rows: rows), proj = proj.rows(0..<n)
        let (h1, q, k, v, attn) = (s.h1, s.q, keys[l].rows(rows), values[l].rows(rows), s.attn)
        let (x2, h2, gate, up, act) = (s.x2, s.h2, s.gate, s.up, s.act)
        b.rmsNorm(x, weight: w.attentionNorm, epsilon: c.rmsEpsilon, into: h1)
        b.matmul(h1, weights: [w.attention.q, w.attention.k, w.attention.v], into: [q, k, v])
        adapt(l, .q, h1, q, dropout: dropout, seed: seed)
        adapt(l, .k, h1, k, dropout: dropout, seed: seed)
        adapt(l, .v, h1, v, dropout: dropout, seed: seed)
        if let bias = w.attention.qBias { b.add(q, bias, into: q) }
        if let bias = w.attention.kBias { b.add(k, bias, into: k) }
        if let bias = w.attention.vBias { b.add(v, bias, into: v) }
        b.rope(q, headDim: c.headDim, ropeDim: a.ropeDim, startPosition: start, freqBase: a.freqBase, layout: a.ropeLayout,
               scaling: a.ropeScaling)
        b.rope(k, headDim: c.headDim, ropeDim: a.ropeDim, startPosition: start, freqBase: a.freqBase, layout: a.ropeLayout,
               scaling: a.ropeScaling)
        b.attention(q: q, keys: keys[l].rows(0..<rows.upperBound), values: values[l].rows(0..<rows.upperBound),
                    headCount: c.headCount, headCountKV: c.headCountKV, startPosition: start, scale: a.scale, mask: a.mask,
                    into: attn)
        b.matmul(attn, weight: w.attention.output, into: proj)
        adapt(l, .o, attn, proj, dropout: dropout, seed: seed)
        if let bias = w.attention.outputBias { b.add(proj, bias, into: proj) }
        b.add(x, proj, into: x2)
        b.rmsNorm(x2, weight: w.feedForwardNorm, epsilon: c.rmsEpsilon, into: h2)
        b.matmul(h2, weights: [w.feedForward.gate, w.feedForward.up], into: [gate, up])
        adapt(l, .gate, h2, gate, dropout: dropout, seed: seed)
        adapt(l, .up, h2, up, dropout: dropout, seed: seed)
        b.swiglu(gate: gate, up: up, into: act)
        b.matmul(act, weight: w.feedForward.down, into: proj)
        adapt(l, .down, act, proj, dropout: dropout, seed: seed)
        b.add(x2, proj, into: output)
    }

    /// The seed of one projection's dropout mask.
    private func maskSeed(_ seed: UInt64, _ l: Int, _ target: LoRATarget) -> UInt64 {
        var g = SplitMix64(seed: seed ^ (UInt64(l) << 8 | UInt64(LoRATarget.allCases.firstIndex(of: target)!)))
        return g.next()
    }

    /// The adapter's input: `x`, or `x` with dropout into scratch.
    private func adapterInput(_ x: Tensor, _ l: Int, _ target: LoRATarget, dropout: Float, seed: UInt64) -> Tensor {
        guard dropout > 0 else { return x }
        let out = dropped.leading(rows: x.rowCount, rowLength: x.rowLength)
        backend.dropout(x, probability: dropout, seed: maskSeed(seed, l, target), into: out)
        return out
    }

    /// `y += factor · B (A drop(x))` when `target` of block `l` is adapted.
    private func adapt(_ l: Int, _ target: LoRATarget, _ x: Tensor, _ y: Tensor, dropout: Float, seed: UInt64) {
        guard let p = lora.parameter(l, target) else { return }
        let n = x.rowCount
        let t = mid.rows(0..<n), out = delta.leading(rows: n, rowLength: y.rowLength)
        backend.matmul(adapterInput(x, l, target, dropout: dropout, seed: seed), weight: p.a, into: t)
        backend.scale(t, by: lora.settings.factor, into: t)
        backend.matmul(t, weight: p.b, into: out)
        backend.add(y, out, into: y)
    }

    // MARK: head and loss

    /// The weighted cross-entropy of the sample's targets, through the final norm and classifier
    /// in chunks of rows; with `backward`, their gradient is added to `dx`'s rows.
    private func head(_ sample: TokenizedSample, lossFactor: Float, backward: Bool) throws -> Double {
        let b = backend, c = config, head = decoder.head
        let targets = sample.targets.sorted { $0.row < $1.row }
        var total = 0.0
        var start = 0
        while start < targets.count {
            // a run of consecutive rows, at most `headRows` long
            var end = start + 1
            while end < targets.count && end - start < Self.headRows && targets[end].row == targets[end - 1].row + 1 { end += 1 }
            let rows = targets[start].row..<targets[end - 1].row + 1
            let m = rows.count
            let xr = final.rows(rows), hn = headIn.rows(0..<m), z = logits.rows(0..<m), lr = losses.rows(0..<m)
            b.rmsNorm(xr, weight: head.norm, epsilon: c.rmsEpsilon, into: hn)
            b.matmul(hn, weight: head.weight, into: z)
            b.crossEntropy(z, targets: rows.map { sample.tokens[$0 + 1] }, weights: targets[start..<end].map(\.weight),
                           factor: lossFactor, losses: lr, gradient: z)
            total += try b.read(lr).reduce(0.0) { $0 + Double($1) }
            if backward {
                let g = dHead.rows(0..<m)
                b.matmulInputGradient(z, weight: head.weight, into: g, accumulate: false)
                b.rmsNormBackward(xr, weight: head.norm, epsilon: c.rmsEpsilon, gradient: g, into: g)
                b.add(dx.rows(rows), g, into: dx.rows(rows))
            }
            start = end
        }
        return total
    }

    // MARK: backward

    /// Block `l`'s backward on rows `rows` (its forward run again first when recomputing): `dx`,
    /// the gradient of its output rows, becomes the gradient of its input rows, and the adapter's
    /// gradients grow. The gradients of the keys and values of the rows before them are added to
    /// the sums of those rows; with `receives`, the sums of these rows (what the rows after them
    /// sent) join their own.
    private func blockBackward(_ l: Int, rows: Range<Int>, receives: Bool, dropout: Float, seed: UInt64) {
        let b = backend, c = config, n = rows.count, start = rows.lowerBound, seen = 0..<rows.upperBound
        let w = decoder.blocks[l], a = decoder.layouts[l]
        if recomputes {
            // the output is not needed again: scratch holds it for a moment
            block(l, rows: rows, output: delta.leading(rows: n, rowLength: c.embeddingLength), dropout: dropout, seed: seed)
        }
        let x = inputs[l].rows(rows), s = saved(l, rows: rows)
        let (h1, q, attn) = (s.h1, s.q, s.attn)
        let (x2, h2, gate, up, act) = (s.x2, s.h2, s.gate, s.up, s.act)
        let (dx, dh, dq, dattn) = (dx.rows(rows), dh.rows(0..<n), dq.rows(0..<n), dattn.rows(0..<n))
        let (dgate, dup, dact) = (dgate.rows(0..<n), dup.rows(0..<n), dact.rows(0..<n))
        // feed-forward: x3 = x2 + down(swiglu(gate(h2), up(h2))), h2 = norm(x2)
        linearBackward(l, .down, w.feedForward.down, input: act, gradient: dx, into: dact, accumulate: false,
                       dropout: dropout, seed: seed)
        b.swigluBackward(gate: gate, up: up, gradient: dact, gateGradient: dgate, upGradient: dup)
        linearBackward(l, .gate, w.feedForward.gate, input: h2, gradient: dgate, into: dh, accumulate: false,
                       dropout: dropout, seed: seed)
        linearBackward(l, .up, w.feedForward.up, input: h2, gradient: dup, into: dh, accumulate: true,
                       dropout: dropout, seed: seed)
        b.rmsNormBackward(x2, weight: w.feedForwardNorm, epsilon: c.rmsEpsilon, gradient: dh, into: dh)
        b.add(dx, dh, into: dx)
        // attention: x2 = x + o(attention(rope(q(h1)), rope(k(h1)), v(h1))), h1 = norm(x), over
        // the keys and values of every row up to these
        linearBackward(l, .o, w.attention.output, input: attn, gradient: dx, into: dattn, accumulate: false,
                       dropout: dropout, seed: seed)
        b.attentionBackward(q: q, keys: keys[l].rows(seen), values: values[l].rows(seen), gradient: dattn,
                            headCount: c.headCount, headCountKV: c.headCountKV, startPosition: start, scale: a.scale,
                            mask: a.mask, queryGradient: dq, keyGradient: self.dk.rows(seen),
                            valueGradient: self.dv.rows(seen))
        let before = 0..<start, dk = self.dk.rows(rows), dv = self.dv.rows(rows)
        if start > 0 {
            b.add(keyGradientSums[l].rows(before), self.dk.rows(before), into: keyGradientSums[l].rows(before))
            b.add(valueGradientSums[l].rows(before), self.dv.rows(before), into: valueGradientSums[l].rows(before))
        }
        if receives {
            b.add(dk, keyGradientSums[l].rows(rows), into: dk)
            b.add(dv, valueGradientSums[l].rows(rows), into: dv)
        }
        b.ropeBackward(dq, headDim: c.headDim, ropeDim: a.ropeDim, startPosition: start, freqBase: a.freqBase,
                       layout: a.ropeLayout, scaling: a.ropeScaling)
        b.ropeBackward(dk, headDim: c.headDim, ropeDim: a.ropeDim, startPosition: start, freqBase: a.freqBase,
                       layout: a.ropeLayout, scaling: a.ropeScaling)
        linearBackward(l, .q, w.attention.q, input: h1, gradient: dq, into: dh, accumulate: false, dropout: dropout, seed: seed)
        linearBackward(l, .k, w.attention.k, input: h1, gradient: dk, into: dh, accumulate: true, dropout: dropout, seed: seed)
        linearBackward(l, .v, w.attention.v, input: h1, gradient: dv, into: dh, accumulate: true, dropout: dropout, seed: seed)
        b.rmsNormBackward(x, weight: w.attentionNorm, epsilon: c.rmsEpsilon, gradient: dh, into: dh)
        b.add(dx, dh, into: dx)
    }

    /// The backward of `y = W x (+ factor · B (A drop(x)))`: the input gradient into `dxOut`
    /// (added when `accumulate`), and the adapter's gradients `dB += factor · dyᵀ (A drop(x))`,
    /// `dA += (factor · dy B)ᵀ drop(x)`.
    private func linearBackward(_ l: Int, _ target: LoRATarget, _ weight: Tensor, input x: Tensor, gradient dy: Tensor,
                                into dxOut: Tensor, accumulate: Bool, dropout: Float, seed: UInt64) {
        let b = backend, n = x.rowCount
        b.matmulInputGradient(dy, weight: weight, into: dxOut, accumulate: accumulate)
        guard let p = lora.parameter(l, target) else { return }
        let factor = lora.settings.factor
        let xin = adapterInput(x, l, target, dropout: dropout, seed: seed)
        let t = mid.rows(0..<n), dt = dmid.rows(0..<n)
        b.matmul(xin, weight: p.a, into: t)
        b.scale(t, by: factor, into: t)
        b.matmulWeightGradient(dy, input: t, into: p.gradB, accumulate: true)
        b.matmulInputGradient(dy, weight: p.b, into: dt, accumulate: false)
        b.scale(dt, by: factor, into: dt)
        b.matmulWeightGradient(dt, input: xin, into: p.gradA, accumulate: true)
        if dropout > 0 {
            let g = delta.leading(rows: n, rowLength: x.rowLength)
            b.matmulInputGradient(dt, weight: p.a, into: g, accumulate: false)
            b.dropout(g, probability: dropout, seed: maskSeed(seed, l, target), into: g)
            b.add(dxOut, g, into: dxOut)
        } else {
            b.matmulInputGradient(dt, weight: p.a, into: dxOut, accumulate: true)
        }
    }
}
