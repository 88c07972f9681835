import Foundation

/// The SPIR-V modules compiled from `Shaders/` at build time (see `Plugins/CompileShaders`).
public enum ShaderLibrary {
    /// Names of every embedded module (`matvec_q4_0_subgroup1`, `attention`, ...).
    public static var names: [String] { EmbeddedShaders.base64.keys.sorted() }

    /// The SPIR-V words of module `name`.
    public static func words(_ name: String) -> [UInt32]? {
        guard let text = EmbeddedShaders.base64[name], let data = Data(base64Encoded: text),
              data.count % 4 == 0
        else { return nil }
        return data.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
    }
}
