import ThemisBackend

/// One decoder architecture, keyed by `general.architecture`: its own hyper-parameters, tensor
/// names and blocks, built from the shared ones (`Blocks.swift`) into a `Decoder`. Adding an
/// architecture is one file with a type conforming to this, listed in `Architectures.all`.
public protocol DecoderArchitecture {
    /// The `general.architecture` values this type reads.
    static var names: [String] { get }

    /// Reads the hyper-parameters beyond `config` through `parameters` and loads every tensor
    /// through `weights` (each must be taken or ignored). `contextLength` is the context the model
    /// runs with (Phi-3 picks its RoPE factors by it).
    static func load(config: ModelConfig, parameters: HyperParameters, weights: WeightLoader, contextLength: Int)
        throws -> Decoder
}

/// A loaded decoder: the embedding, one block of weights and one attention layout per layer, the
/// output head. Every architecture here is made of these blocks (`ForwardPass.decoderBlock`).
public struct Decoder: Sendable {
    public let embedding: Embedding
    public let head: OutputHead
    public let blocks: [DecoderBlockWeights]
    public let layouts: [AttentionLayout]

    /// The token embedding (rows times `embeddingScale`), the output head (soft-capped at
    /// `softcap`), and the blocks `block` loads, one per layer of `layouts`.
    public init(_ weights: WeightLoader, config c: ModelConfig, embeddingScale: Float? = nil, softcap: Float? = nil,
                layouts: [AttentionLayout], block: (Int) throws -> DecoderBlockWeights) throws {
        precondition(layouts.count == c.blockCount, "\(layouts.count) layouts for \(c.blockCount) blocks")
        embedding = try Embedding(weights, config: c, scale: embeddingScale)
        head = try OutputHead(weights, config: c, embedding: embedding, softcap: softcap)
        blocks = try (0..<c.blockCount).map(block)
        self.layouts = layouts
    }

    /// Runs block `layer` on the residual stream `pass.x`.
    public func block(_ layer: Int, _ pass: ForwardPass) {
        pass.decoderBlock(layer, blocks[layer], layouts[layer])
    }
}

/// The architectures this engine runs.
public enum Architectures {
    /// Every implemented architecture, one file each.
    public static let all: [any DecoderArchitecture.Type] = [
        Llama.self, Qwen2.self, Qwen3.self, Phi3.self, Gemma2.self, Gemma3.self,
    ]

    /// Every `general.architecture` value that loads.
    public static var names: [String] { all.flatMap { $0.names } }

    /// The architecture reading `general.architecture` value `name`.
    public static func type(named name: String) -> (any DecoderArchitecture.Type)? {
        all.first { $0.names.contains(name) }
    }

    /// Loads the architecture of `file` with every weight on `backend`.
    static func load(file: GGUFFile, config: ModelConfig, backend: any Backend, contextLength: Int) throws -> Decoder {
        guard let type = type(named: config.architecture) else {
            throw ModelError.unsupportedArchitecture(config.architecture)
        }
        let weights = WeightLoader(file: file, backend: backend, architecture: config.architecture)
        let model = try type.load(
            config: config, parameters: HyperParameters(file: file, architecture: config.architecture),
            weights: weights, contextLength: contextLength)
        try weights.finish()
        return model
    }
}
