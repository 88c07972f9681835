import Foundation
import PackagePlugin

/// Compiles `Shaders/*.comp` (as listed in `Shaders/manifest`) to SPIR-V with glslangValidator and
/// embeds the modules in the target as a generated Swift file.
@main
struct CompileShaders: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let shaders = context.package.directoryURL.appending(path: "Shaders")
        let inputs = try FileManager.default.contentsOfDirectory(atPath: shaders.path)
            .filter { $0.hasSuffix(".comp") || $0.hasSuffix(".glsl") || $0 == "manifest" }
            .sorted()
            .map { shaders.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedShaders.swift")
        return [
            .buildCommand(
                displayName: "Compiling \(inputs.count) shader files to SPIR-V",
                executable: try context.tool(named: "shader-embed").url,
                arguments: [
                    try glslangValidator(context).path, shaders.path, output.path,
                    context.pluginWorkDirectoryURL.appending(path: "spv").path,
                ],
                inputFiles: inputs,
                outputFiles: [output])
        ]
    }

    /// glslangValidator from the toolchain's search path or `PATH` (Debian: glslang-tools).
    private func glslangValidator(_ context: PluginContext) throws -> URL {
        if let tool = try? context.tool(named: "glslangValidator") { return tool.url }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"] {
            let candidate = URL(fileURLWithPath: dir).appending(path: "glslangValidator")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        Diagnostics.error("glslangValidator not found: install glslang-tools (`make deps`)")
        throw CocoaError(.fileNoSuchFile)
    }
}
