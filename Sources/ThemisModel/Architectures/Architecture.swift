import ThemisBackend

/// One decoder architecture, keyed by `general.architecture`: its own hyper-parameters and tensor
/// names (read in `init`) and its forward pass per block, built from the shared blocks of
/// `ForwardPass`. Adding an architecture is one file with a type conforming to this, listed in
/// `Architectures.all`.
public protocol DecoderArchitecture: Sendable {
    /// The `general.architecture` values this type reads.
    static var names: [String] { get }

    /// Reads the hyper-parameters beyond `config` through `parameters` and loads every tensor
    /// through `weights` (each must be taken or ignored). `contextLength` is the context the model
    /// runs with (Phi-3 picks its RoPE factors by it).
    init(config: ModelConfig, parameters: HyperParameters, weights: WeightLoader, contextLength: Int) throws

    /// The token embedding.
    var embedding: Embedding { get }
    /// The final norm and classifier.
    var head: OutputHead { get }
    /// Runs block `layer` on the residual stream `pass.x`.
    func block(_ layer: Int, _ pass: ForwardPass)
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
    static func load(file: GGUFFile, config: ModelConfig, backend: any Backend, contextLength: Int) throws
        -> any DecoderArchitecture
    {
        guard let type = type(named: config.architecture) else {
            throw ModelError.unsupportedArchitecture(config.architecture)
        }
        let weights = WeightLoader(file: file, backend: backend, architecture: config.architecture)
        let model = try type.init(
            config: config, parameters: HyperParameters(file: file, architecture: config.architecture),
            weights: weights, contextLength: contextLength)
        try weights.finish()
        return model
    }
}
